#include "features/entity_windows.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace vigil::features {

namespace {

constexpr int64_t kHourMs = 3'600'000;
constexpr char kChunkMagic[8] = {'V', 'G', 'L', 'F', 'C', 'H', 'K', '2'};

// a - b for b >= 0, saturating at INT64_MIN.
int64_t minus(int64_t a, int64_t b) {
  return a < INT64_MIN + b ? INT64_MIN : a - b;
}

// a - b, saturating at the ends of int64 (event times are whatever a record says).
int64_t difference(int64_t a, int64_t b) {
  int64_t d = 0;
  if (__builtin_sub_overflow(a, b, &d)) return b < 0 ? INT64_MAX : INT64_MIN;
  return d;
}

int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

template <typename T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// Reads a T from `in` at `pos`; false when too short.
template <typename T>
bool get(std::string_view in, size_t& pos, T& v) {
  if (in.size() - pos < sizeof v) return false;
  std::memcpy(&v, in.data() + pos, sizeof v);
  pos += sizeof v;
  return true;
}

}  // namespace

EntityWindows::EntityWindows(FeatureSpec spec)
    : spec_(std::move(spec)),
      width_(spec_.entity_feature_count()),
      lateness_ms_(spec_.allowed_lateness_ms),
      longest_ms_(spec_.longest_window_ms()),
      spec_hash_(spec_.hash()),
      shards_(kShards) {
  if (lateness_ms_ < 0 || longest_ms_ + lateness_ms_ > FeatureSpec::kMaxHistorySpanMs) {
    throw std::invalid_argument(
        "feature spec: the longest window plus the allowed lateness is "
        "outside [0, FeatureSpec::kMaxHistorySpanMs]");
  }
  for (int d : spec_.windows_days) windows_ms_.push_back(static_cast<int64_t>(d) * kDayMs);
}

uint64_t EntityWindows::fnv1a(std::string_view id) {
  uint64_t h = 14695981039346656037ULL;  // FNV-1a 64
  for (const char c : id) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

bool EntityWindows::during_weekend(int64_t time_ms) {
  // 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday = 0.
  const int64_t weekday = utc_day(time_ms) + 3;
  const int64_t from_monday = weekday - floor_div(weekday, 7) * 7;
  return from_monday >= 5;
}

bool EntityWindows::during_night(int64_t time_ms) {
  const int64_t in_day = time_ms - utc_day(time_ms) * kDayMs;
  return in_day < 6 * kHourMs;
}

void EntityWindows::trim(Entity& e, int64_t horizon) {
  if (horizon < e.base_ms) return;
  const int64_t limit = horizon - e.base_ms;  // dt_ms <= limit: at or before the horizon
  const size_t before = e.events.size() - e.head;
  while (e.head < e.events.size() && static_cast<int64_t>(e.events[e.head].dt_ms) <= limit) {
    ++e.head;
  }
  events_ -= before - (e.events.size() - e.head);
  // Compact once a few events or an eighth of the buffer are dropped: memory stays close to
  // what is kept, for an amortised O(1) move per event.
  if (e.head >= 4 && e.head * 8 >= e.events.size()) {
    e.events.erase(e.events.begin(), e.events.begin() + e.head);
    e.head = 0;
  }
}

void EntityWindows::sweep(Map& shard, int64_t horizon) {
  const size_t dropped = shard.erase_if([&](const Map::Node& n) {
    if (n.value.newest_ms > horizon) return false;
    events_ -= n.value.events.size() - n.value.head;
    return true;
  });
  entity_count_ -= dropped;
  counters_.dropped_idle += dropped;
}

void EntityWindows::drop_above_cap() {
  const size_t target = spec_.max_entities_per_partition - spec_.max_entities_per_partition / 10;
  if (entity_count_ <= target) return;
  // The (newest event time, id) below which entities go: decided by the state alone, never by
  // the table's layout, so that a replay drops the same ones.
  std::vector<std::pair<int64_t, std::string_view>> order;
  order.reserve(entity_count_);
  for (const Map& shard : shards_) {
    shard.for_each([&](const Map::Node& n) { order.emplace_back(n.value.newest_ms, n.id); });
  }
  const size_t drop = entity_count_ - target;
  std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(drop - 1),
                   order.end());
  std::vector<std::string> gone;
  gone.reserve(drop);
  for (size_t i = 0; i < drop; ++i) gone.emplace_back(order[i].second);
  for (const auto& id : gone) {
    const uint64_t h = fnv1a(id);
    Map& shard = shards_[shard_of_hash(h)];
    const Entity& e = shard.find(id, h)->value;
    events_ -= e.events.size() - e.head;
    shard.erase(id, h);
  }
  entity_count_ -= drop;
  counters_.dropped_cap += drop;
  // Their events are at or before the watermark: outside every window of a transaction a
  // longest window later.
  capped_until_ms_ =
      std::max(capped_until_ms_,
               watermark_ > INT64_MAX - longest_ms_ ? INT64_MAX : watermark_ + longest_ms_);
}

bool EntityWindows::observe(const Transaction& tx, double* out) {
  ++counters_.observed;
  bool partial = false;
  if (watermark_ != INT64_MIN && tx.time_ms < minus(watermark_, lateness_ms_)) {
    partial = true;
    ++counters_.late;
  }
  watermark_ = std::max(watermark_, tx.time_ms);

  const uint64_t hash = fnv1a(tx.entity);
  Map& shard = shards_[shard_of_hash(hash)];
  Map::Node* node = shard.find(tx.entity, hash);
  if (node == nullptr) {
    node = shard.insert(std::string(tx.entity), hash);
    ++entity_count_;
    node->value.newest_ms = tx.time_ms;
    // It may be an entity the cap dropped, whose history could still be in its windows.
    if (tx.time_ms < capped_until_ms_) partial = true;
  } else {
    node->value.newest_ms = std::max(node->value.newest_ms, tx.time_ms);
  }
  Entity& e = node->value;
  // Nothing at or before the horizon is inside the window of a transaction that is not late.
  const int64_t horizon = minus(minus(watermark_, longest_ms_), lateness_ms_);

  if (e.head == e.events.size()) restart(e, tx.time_ms);
  const int64_t rel = difference(tx.time_ms, e.base_ms);
  if ((rel < 0 || rel > int64_t{UINT32_MAX}) && !make_room(e, tx.time_ms, horizon)) {
    // At or before the horizon (late): kept by no window of a later transaction.
    write_alone(tx.time_ms, tx.amount, out);
  } else {
    // Insert after every event with the same or an earlier time (ties in log order), found
    // from the newest end: an event in time order goes there at once. Scans, not binary
    // searches: at a million entities each buffer is cold, and a descending walk over
    // adjacent cache lines costs far fewer misses than probes across the buffer.
    // Grow by a quarter, not double: the buffer is most of an entity's memory.
    const auto dt = static_cast<uint32_t>(tx.time_ms - e.base_ms);
    if (e.events.size() == e.events.capacity()) e.events.reserve(e.events.size() * 5 / 4 + 2);
    size_t at = e.events.size();
    while (at > e.head && e.events[at - 1].dt_ms > dt) --at;
    e.events.insert(e.events.begin() + static_cast<std::ptrdiff_t>(at),
                    Event{dt, static_cast<float>(tx.amount)});
    ++events_;
    write_features(e, at + 1, tx.time_ms, out);  // at + 1: every kept event with time <= t
  }
  trim(e, horizon);
  if (entity_count_ > spec_.max_entities_per_partition) {
    for (Map& s : shards_) sweep(s, horizon);
    drop_above_cap();
  } else if (++since_sweep_ * kShards >= std::max<uint64_t>(entity_count_, 65536)) {
    since_sweep_ = 0;
    sweep(shards_[sweep_cursor_], horizon);
    sweep_cursor_ = (sweep_cursor_ + 1) % kShards;
  }
  if (partial) ++counters_.partial;
  return !partial;
}

void EntityWindows::prefetch(std::string_view entity) {
  const uint64_t hash = fnv1a(entity);
  __builtin_prefetch(shards_[shard_of_hash(hash)].slot_address(hash));
  // The slot of the id hinted kPrefetchLag calls ago is in the cache by now: its entity next.
  const uint64_t lagged = prefetch_ring_[(prefetch_pos_ + kPrefetchLag) % prefetch_ring_.size()];
  if (lagged != 0) {
    if (const Map::Node* n = shards_[shard_of_hash(lagged)].find_by_hash(lagged)) {
      __builtin_prefetch(n);
      __builtin_prefetch(reinterpret_cast<const char*>(n) + sizeof(Map::Node) - 1);
    }
  }
  // The entity of the one hinted 2 * kPrefetchLag calls ago is too: its newest events (where
  // the transaction goes and the windows are summed from) and its oldest (trimmed).
  const uint64_t oldest = prefetch_ring_[prefetch_pos_];
  if (oldest != 0) {
    if (const Map::Node* n = shards_[shard_of_hash(oldest)].find_by_hash(oldest)) {
      const Entity& e = n->value;
      if (e.head < e.events.size()) {
        __builtin_prefetch(e.events.data() + e.events.size() - 1);
        __builtin_prefetch(e.events.data() + e.head);
      }
    }
  }
  prefetch_ring_[prefetch_pos_] = hash;
  prefetch_pos_ = (prefetch_pos_ + 1) % prefetch_ring_.size();
}

void EntityWindows::restart(Entity& e, int64_t time_ms) {
  e.events.clear();
  e.head = 0;
  e.base_ms = time_ms;
}

bool EntityWindows::make_room(Entity& e, int64_t time_ms, int64_t horizon) {
  // `from` is at most `time_ms` (the earlier of it and the oldest kept event).
  auto span_fits = [&](int64_t from) {
    const int64_t newest = e.base_ms + e.events.back().dt_ms;
    return difference(std::max(newest, time_ms), from) <= int64_t{UINT32_MAX};
  };
  int64_t base = std::min(time_ms, e.base_ms + e.events[e.head].dt_ms);
  if (!span_fits(base)) {
    // Only events at or before the horizon can be this far from the time (the kept span is
    // under kMaxHistorySpanMs): dropped now rather than after this transaction.
    trim(e, horizon);
    if (e.head == e.events.size()) {
      restart(e, time_ms);
      return true;
    }
    base = std::min(time_ms, e.base_ms + e.events[e.head].dt_ms);
    if (!span_fits(base)) return false;
  }
  // Rebased and compacted: the kept events move to the front, their offsets from `base`.
  size_t k = 0;
  for (size_t i = e.head; i < e.events.size(); ++i) {
    const int64_t t = e.base_ms + e.events[i].dt_ms;
    e.events[k++] = Event{static_cast<uint32_t>(t - base), e.events[i].amount};
  }
  e.events.resize(k);
  e.head = 0;
  e.base_ms = base;
  return true;
}

void EntityWindows::write_alone(int64_t time_ms, double amount, double* out) const {
  Entity alone;
  alone.base_ms = time_ms;
  alone.events.push_back(Event{0, static_cast<float>(amount)});
  write_features(alone, 1, time_ms, out);
}

void EntityWindows::write_features(const Entity& e, size_t hi, int64_t time_ms, double* out) const {
  double* o = out;
  *o++ = e.events[hi - 1].amount;  // as kept: the same value whether read now or from a snapshot
  if (spec_.calendar) {
    *o++ = during_weekend(time_ms) ? 1.0 : 0.0;
    *o++ = during_night(time_ms) ? 1.0 : 0.0;
  }
  // Windows increase: each one's events extend the previous one's, summed from the newest
  // side back (a longer window continues the shorter one's sum).
  size_t lo = hi;
  double sum = 0.0;
  const int64_t rel = difference(time_ms, e.base_ms);
  for (int64_t w : windows_ms_) {
    const int64_t start = rel - w;  // the window is (start, t], from the entity's base
    while (lo > e.head && static_cast<int64_t>(e.events[lo - 1].dt_ms) > start) {
      sum += e.events[--lo].amount;
    }
    const auto count = static_cast<double>(hi - lo);
    *o++ = count;
    *o++ = sum / count;
  }
}

void EntityWindows::features_again(const Transaction& tx, double* out) const {
  const uint64_t hash = fnv1a(tx.entity);
  if (const Map::Node* node = shards_[shard_of_hash(hash)].find(tx.entity, hash)) {
    const Entity& e = node->value;
    // The last kept event at or before its time (the transaction itself, when its time is
    // unique).
    const int64_t rel = difference(tx.time_ms, e.base_ms);
    size_t hi = e.events.size();
    while (hi > e.head && static_cast<int64_t>(e.events[hi - 1].dt_ms) > rel) --hi;
    if (hi > e.head) {
      write_features(e, hi, tx.time_ms, out);
      out[0] = static_cast<float>(tx.amount);
      return;
    }
  }
  // Gone from memory: as if it were its entity's only transaction.
  write_alone(tx.time_ms, tx.amount, out);
}

EntityWindows::Figures EntityWindows::figures() const {
  Figures f = counters_;
  f.entities = entity_count_;
  f.events = events_;
  return f;
}

// A chunk: magic, shard, shard count, offset, watermark, capped-until, spec hash (length first),
// then the entity count and each entity: id (length first), newest event time, base time,
// event count and the events as kept (8 bytes each: ms after the base time, float32 amount).
// Native byte order.
std::string EntityWindows::snapshot_shard(uint32_t shard_index, int64_t offset) const {
  const Map& shard = shards_.at(shard_index);
  size_t events = 0;
  shard.for_each([&](const Map::Node& n) { events += n.value.events.size() - n.value.head; });
  std::string out;
  out.reserve(kChunkHeaderBytes + events * sizeof(Event) + shard.size() * 32);
  out.append(kChunkMagic, sizeof kChunkMagic);
  put(out, shard_index);
  put(out, kShards);
  put(out, offset);
  put(out, watermark_);
  put(out, capped_until_ms_);
  put(out, static_cast<uint32_t>(spec_hash_.size()));
  out += spec_hash_;
  put(out, static_cast<uint64_t>(shard.size()));
  shard.for_each([&](const Map::Node& n) {
    const Entity& e = n.value;
    put(out, static_cast<uint32_t>(n.id.size()));
    out += n.id;
    put(out, e.newest_ms);
    put(out, e.base_ms);
    put(out, static_cast<uint32_t>(e.events.size() - e.head));
    out.append(reinterpret_cast<const char*>(e.events.data() + e.head),
               (e.events.size() - e.head) * sizeof(Event));
  });
  return out;
}

namespace {

Status bad_chunk(const std::string& why) {
  return Status::Error(StatusCode::kInvalidArgument, "feature snapshot: " + why);
}

// Reads the header; `pos` ends after it.
Result<EntityWindows::ChunkHeader> parse_header(std::string_view in, size_t& pos) {
  EntityWindows::ChunkHeader h;
  if (in.size() < sizeof kChunkMagic || std::memcmp(in.data(), kChunkMagic, sizeof kChunkMagic)) {
    return bad_chunk("not a chunk of this format");
  }
  pos = sizeof kChunkMagic;
  uint32_t shards = 0, hash_len = 0;
  if (!get(in, pos, h.shard) || !get(in, pos, shards) || !get(in, pos, h.offset) ||
      !get(in, pos, h.watermark_ms) || !get(in, pos, h.capped_until_ms) ||
      !get(in, pos, hash_len) || in.size() - pos < hash_len || hash_len > 64) {
    return bad_chunk("truncated");
  }
  if (shards != EntityWindows::kShards || h.shard >= shards) {
    return bad_chunk("shard " + std::to_string(h.shard) + " of " + std::to_string(shards) +
                     ", not of " + std::to_string(EntityWindows::kShards));
  }
  h.spec_hash.assign(in.substr(pos, hash_len));
  pos += hash_len;
  return h;
}

}  // namespace

Result<EntityWindows::ChunkHeader> EntityWindows::read_chunk_header(std::string_view bytes) {
  size_t pos = 0;
  return parse_header(bytes, pos);
}

EntityWindows::Restorer::Restorer(EntityWindows& into)
    : into_(into), shards_(kShards), seen_(kShards, false) {}

Status EntityWindows::Restorer::add(std::string_view in) {
  size_t pos = 0;
  auto header = parse_header(in, pos);
  if (!header) return header.status();
  const ChunkHeader& h = header.value();
  if (h.spec_hash != into_.spec_hash_) {
    return bad_chunk("taken under feature spec " + h.spec_hash + ", not the running " +
                     into_.spec_hash_);
  }
  if (seen_[h.shard]) return bad_chunk("shard " + std::to_string(h.shard) + " appears twice");
  seen_[h.shard] = true;
  ++added_;
  watermark_ = std::min(watermark_, h.watermark_ms);
  capped_until_ = std::max(capped_until_, h.capped_until_ms);
  uint64_t n = 0;
  if (!get(in, pos, n)) return bad_chunk("truncated");
  Map& shard = shards_[h.shard];
  shard.reserve(std::min<uint64_t>(n, in.size() / 16));
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t key_len = 0, count = 0;
    int64_t newest_ms = 0, base_ms = 0;
    if (!get(in, pos, key_len) || in.size() - pos < key_len) return bad_chunk("truncated");
    std::string key(in.substr(pos, key_len));
    pos += key_len;
    if (!get(in, pos, newest_ms) || !get(in, pos, base_ms) || !get(in, pos, count) ||
        (in.size() - pos) / sizeof(Event) < count) {
      return bad_chunk("truncated");
    }
    const uint64_t hash = fnv1a(key);
    if (shard_of_hash(hash) != h.shard) {
      return bad_chunk("entity '" + key + "' is not of shard " + std::to_string(h.shard));
    }
    if (shard.find(key, hash) != nullptr) return bad_chunk("entity '" + key + "' appears twice");
    Entity& e = shard.insert(std::move(key), hash)->value;
    e.events.resize(count);
    std::memcpy(e.events.data(), in.data() + pos, count * sizeof(Event));
    pos += count * sizeof(Event);
    for (uint32_t k = 1; k < count; ++k) {
      if (e.events[k].dt_ms < e.events[k - 1].dt_ms) return bad_chunk("events out of order");
    }
    e.newest_ms = newest_ms;
    e.base_ms = base_ms;
    events_ += count;
  }
  if (pos != in.size()) return bad_chunk("trailing bytes");
  entities_ += shard.size();
  return Status::Ok();
}

Status EntityWindows::Restorer::commit() {
  if (added_ != kShards) {
    return bad_chunk(std::to_string(added_) + " chunks, not one per shard (" +
                     std::to_string(kShards) + ")");
  }
  into_.shards_ = std::move(shards_);
  into_.entity_count_ = entities_;
  into_.events_ = events_;
  into_.watermark_ = watermark_;
  into_.capped_until_ms_ = capped_until_;
  into_.since_sweep_ = 0;
  return Status::Ok();
}

Status EntityWindows::restore(const std::vector<std::string_view>& chunks) {
  Restorer r(*this);
  for (std::string_view chunk : chunks) {
    if (Status st = r.add(chunk); !st.ok()) return st;
  }
  return r.commit();
}

}  // namespace vigil::features

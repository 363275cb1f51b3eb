#include "features/entity_windows.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <utility>

namespace vigil::features {

namespace {

constexpr int64_t kDayMs = 86'400'000;
constexpr int64_t kHourMs = 3'600'000;
constexpr char kSnapshotMagic[8] = {'V', 'G', 'L', 'F', 'W', 'N', 'D', '1'};

// a - b for b >= 0, saturating at INT64_MIN.
int64_t minus(int64_t a, int64_t b) {
  return a < INT64_MIN + b ? INT64_MIN : a - b;
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
      width_(spec_.output_names().size()),
      lateness_ms_(spec_.allowed_lateness_ms),
      longest_ms_(spec_.longest_window_ms()) {
  for (int d : spec_.windows_days) windows_ms_.push_back(static_cast<int64_t>(d) * kDayMs);
}

bool EntityWindows::during_weekend(int64_t time_ms) {
  // 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday = 0.
  const int64_t weekday = floor_div(time_ms, kDayMs) + 3;
  const int64_t from_monday = weekday - floor_div(weekday, 7) * 7;
  return from_monday >= 5;
}

bool EntityWindows::during_night(int64_t time_ms) {
  const int64_t in_day = time_ms - floor_div(time_ms, kDayMs) * kDayMs;
  return in_day < 6 * kHourMs;
}

void EntityWindows::trim(Entity& e, int64_t horizon) {
  const size_t before = e.events.size() - e.head;
  while (e.head < e.events.size() && e.events[e.head].time_ms <= horizon) ++e.head;
  events_ -= before - (e.events.size() - e.head);
  // Compact once a few events or an eighth of the buffer are dropped: memory stays close to
  // what is kept, for an amortised O(1) move per event.
  if (e.head >= 4 && e.head * 8 >= e.events.size()) {
    e.events.erase(e.events.begin(), e.events.begin() + e.head);
    e.head = 0;
  }
}

void EntityWindows::sweep(int64_t horizon) {
  since_sweep_ = 0;
  counters_.dropped_idle += boost::unordered::erase_if(entities_, [&](const auto& kv) {
    if (kv.second.newest_ms > horizon) return false;
    events_ -= kv.second.events.size() - kv.second.head;
    return true;
  });
}

void EntityWindows::drop_above_cap() {
  const size_t target = spec_.max_entities_per_partition - spec_.max_entities_per_partition / 10;
  if (entities_.size() <= target) return;
  // The (newest event time, id) below which entities go: decided by the state alone, never by
  // the table's layout, so that a replay drops the same ones.
  std::vector<std::pair<int64_t, std::string_view>> order;
  order.reserve(entities_.size());
  for (const auto& [id, e] : entities_) order.emplace_back(e.newest_ms, id);
  const size_t drop = entities_.size() - target;
  std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(drop - 1),
                   order.end());
  std::vector<std::string> gone;
  gone.reserve(drop);
  for (size_t i = 0; i < drop; ++i) gone.emplace_back(order[i].second);
  for (const auto& id : gone) {
    auto it = entities_.find(id);
    events_ -= it->second.events.size() - it->second.head;
    entities_.erase(it);
  }
  counters_.dropped_cap += drop;
  capped_ = true;
}

bool EntityWindows::observe(const Transaction& tx, double* out) {
  ++counters_.observed;
  bool partial = false;
  if (watermark_ != INT64_MIN && tx.time_ms < minus(watermark_, lateness_ms_)) {
    partial = true;
    ++counters_.late;
  }
  watermark_ = std::max(watermark_, tx.time_ms);

  auto it = entities_.find(tx.entity);
  if (it == entities_.end()) {
    it = entities_.emplace(std::string(tx.entity), Entity{}).first;
    it->second.newest_ms = tx.time_ms;
    if (capped_) partial = true;  // may be an entity the cap dropped
  } else {
    it->second.newest_ms = std::max(it->second.newest_ms, tx.time_ms);
  }
  Entity& e = it->second;

  // Insert after every event with the same or an earlier time (ties in log order).
  const auto later = [](int64_t t, const Event& ev) { return t < ev.time_ms; };
  // Grow by a quarter, not double: the buffer is most of an entity's memory.
  if (e.events.size() == e.events.capacity()) e.events.reserve(e.events.size() * 5 / 4 + 2);
  auto pos = std::upper_bound(e.events.begin() + e.head, e.events.end(), tx.time_ms, later);
  pos = e.events.insert(pos, Event{tx.time_ms, static_cast<float>(tx.amount)});
  ++events_;
  const auto hi = pos + 1;  // one past the current: every kept event with time <= t

  double* o = out;
  *o++ = pos->amount;  // as kept: the same value whether read now or from a snapshot
  if (spec_.calendar) {
    *o++ = during_weekend(tx.time_ms) ? 1.0 : 0.0;
    *o++ = during_night(tx.time_ms) ? 1.0 : 0.0;
  }
  const auto first = e.events.begin() + e.head;
  auto lo = hi;  // windows increase: each one's start is at or before the previous one's
  double sum = 0.0;
  for (int64_t w : windows_ms_) {
    const auto new_lo = std::upper_bound(first, lo, minus(tx.time_ms, w), later);
    // Sum from the newest side back, so that a longer window extends the shorter one's sum.
    for (auto k = lo; k != new_lo;) sum += (--k)->amount;
    lo = new_lo;
    const auto count = static_cast<double>(hi - lo);
    *o++ = count;
    *o++ = sum / count;
  }

  // Nothing at or before the horizon is inside the window of a transaction that is not late.
  const int64_t horizon = minus(minus(watermark_, longest_ms_), lateness_ms_);
  trim(e, horizon);
  if (entities_.size() > spec_.max_entities_per_partition) {
    sweep(horizon);
    drop_above_cap();
  } else if (++since_sweep_ >= std::max<uint64_t>(entities_.size(), 65536)) {
    sweep(horizon);
  }
  if (partial) ++counters_.partial;
  return !partial;
}

EntityWindows::Figures EntityWindows::figures() const {
  Figures f = counters_;
  f.entities = entities_.size();
  f.events = events_;
  return f;
}

std::string EntityWindows::snapshot() const {
  std::string out;
  out.reserve(64 + events_ * sizeof(Event) + entities_.size() * 32);
  out.append(kSnapshotMagic, sizeof kSnapshotMagic);
  const std::string hash = spec_.hash();
  put(out, static_cast<uint32_t>(hash.size()));
  out += hash;
  put(out, watermark_);
  put(out, static_cast<uint8_t>(capped_ ? 1 : 0));
  put(out, since_sweep_);
  put(out, static_cast<uint64_t>(entities_.size()));
  for (const auto& [id, e] : entities_) {
    put(out, static_cast<uint32_t>(id.size()));
    out += id;
    put(out, e.newest_ms);
    put(out, static_cast<uint32_t>(e.events.size() - e.head));
    for (size_t i = e.head; i < e.events.size(); ++i) {
      const int64_t t = e.events[i].time_ms;
      const float a = e.events[i].amount;
      put(out, t);
      put(out, a);
    }
  }
  return out;
}

Status EntityWindows::restore(std::string_view in) {
  auto bad = [](const std::string& why) {
    return Status::Error(StatusCode::kInvalidArgument, "feature snapshot: " + why);
  };
  size_t pos = 0;
  if (in.size() < sizeof kSnapshotMagic ||
      std::memcmp(in.data(), kSnapshotMagic, sizeof kSnapshotMagic) != 0) {
    return bad("not a snapshot of this format");
  }
  pos = sizeof kSnapshotMagic;
  uint32_t hash_len = 0;
  if (!get(in, pos, hash_len) || in.size() - pos < hash_len) return bad("truncated");
  const std::string hash(in.substr(pos, hash_len));
  pos += hash_len;
  if (hash != spec_.hash()) {
    return bad("taken under feature spec " + hash + ", not the running " + spec_.hash());
  }
  int64_t watermark = 0;
  uint8_t capped = 0;
  uint64_t since_sweep = 0, n = 0;
  if (!get(in, pos, watermark) || !get(in, pos, capped) || !get(in, pos, since_sweep) ||
      !get(in, pos, n)) {
    return bad("truncated");
  }
  Map entities;
  entities.reserve(std::min<uint64_t>(n, in.size() / 16));
  size_t events = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t key_len = 0, count = 0;
    int64_t newest_ms = 0;
    if (!get(in, pos, key_len) || in.size() - pos < key_len) return bad("truncated");
    std::string key(in.substr(pos, key_len));
    pos += key_len;
    if (!get(in, pos, newest_ms) || !get(in, pos, count) ||
        (in.size() - pos) / sizeof(Event) < count) {
      return bad("truncated");
    }
    auto [it, inserted] = entities.try_emplace(std::move(key));
    if (!inserted) return bad("entity '" + it->first + "' appears twice");
    Entity& e = it->second;
    e.events.resize(count);
    for (uint32_t k = 0; k < count; ++k) {
      int64_t t = 0;
      float a = 0;
      get(in, pos, t);
      get(in, pos, a);
      e.events[k] = Event{t, a};
      if (k > 0 && e.events[k].time_ms < e.events[k - 1].time_ms) return bad("events out of order");
    }
    e.newest_ms = newest_ms;
    events += count;
  }
  if (pos != in.size()) return bad("trailing bytes");
  entities_ = std::move(entities);
  since_sweep_ = since_sweep;
  watermark_ = watermark;
  capped_ = capped != 0;
  events_ = events;
  return Status::Ok();
}

}  // namespace vigil::features

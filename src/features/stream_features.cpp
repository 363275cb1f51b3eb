#include "features/stream_features.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <ctime>
#include <future>
#include <thread>
#include <utility>

#include "common/log.h"

namespace vigil::features {

namespace {

// The steady clock, coarse (a few ms; a fraction of the cost of now() per record): enough for
// a copy's age against its refresh interval. The same clock as steady_clock (CLOCK_MONOTONIC).
std::chrono::steady_clock::time_point coarse_now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

// Today's UTC day by the wall clock (coarse).
int64_t wall_day() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return utc_day(static_cast<int64_t>(ts.tv_sec) * 1000);
}

metrics::Counter& load_counter(metrics::Registry& registry, const char* outcome) {
  return registry.counter("vigil_features_snapshot_loads_total",
                          "Feature-state snapshot loads on assignment, by outcome (restored, "
                          "none: no snapshot, unusable: see the log and /ready, failed: Redis "
                          "unreachable)",
                          {{"outcome", outcome}});
}

}  // namespace

StreamFeatures::StreamFeatures(FeatureSpec spec, size_t max_event_bytes,
                               metrics::Registry& registry, SnapshotStore* snapshots,
                               std::chrono::steady_clock::duration snapshot_interval)
    : spec_(std::move(spec)),
      snapshots_(snapshots),
      snapshot_interval_(snapshot_interval),
      decoder_({spec_.entity, spec_.time, spec_.amount, spec_.terminal.has_value()},
               max_event_bytes),
      scratch_(spec_.output_names().size()),
      replayed_(registry.counter("vigil_features_replayed_total",
                                 "Records replayed to rebuild feature state after an assignment "
                                 "(not scored)")),
      partial_(registry.counter("vigil_features_partial_total",
                                "Transactions scored with features over partial history")),
      entities_(
          registry.gauge("vigil_features_entities", "Entities (customers) with history in memory")),
      events_(registry.gauge("vigil_features_events", "Transactions kept in entity histories")),
      replaying_partitions_(registry.gauge("vigil_features_replaying_partitions",
                                           "Partitions rebuilding their feature state")),
      incomplete_partitions_(registry.gauge(
          "vigil_features_history_incomplete_partitions",
          "Partitions whose log no longer holds all the history their windows need")),
      dropped_idle_(registry.counter("vigil_features_entities_dropped_total",
                                     "Entities dropped from memory, by reason",
                                     {{"reason", "idle"}})),
      dropped_cap_(registry.counter("vigil_features_entities_dropped_total",
                                    "Entities dropped from memory, by reason",
                                    {{"reason", "cap"}})),
      late_(registry.counter("vigil_features_late_total",
                             "Transactions older than their partition's newest by more than the "
                             "allowed lateness")),
      reread_(registry.counter("vigil_features_reread_total",
                               "Records read again after the consumer's position moved back: "
                               "scored over the history as it is, marked partial, not added "
                               "twice")),
      rounds_(registry.counter("vigil_features_snapshot_rounds_total",
                               "Snapshot rounds completed (every shard of a partition saved)")),
      loads_restored_(load_counter(registry, "restored")),
      loads_none_(load_counter(registry, "none")),
      loads_unusable_(load_counter(registry, "unusable")),
      loads_failed_(load_counter(registry, "failed")),
      ready_seconds_(registry.histogram(
          "vigil_features_ready_seconds",
          "Seconds from a partition's assignment to its velocity-feature history being ready "
          "(snapshot loaded and the log replayed up to the committed offset)",
          {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300})),
      registry_(registry) {}

void StreamFeatures::set_terminal_state(TerminalState* state,
                                        std::chrono::milliseconds refresh_interval,
                                        std::chrono::milliseconds max_age) {
  if (!spec_.terminal) return;
  terminals_ = state;
  terminal_refresh_ = refresh_interval;
  terminal_max_age_ = max_age;
  auto lookups = [&](const char* copy) -> metrics::Counter* {
    return &registry_.counter(
        "vigil_features_terminal_lookups_total",
        "Terminal-feature lookups by the local copy's age (fresh; stale: older than twice "
        "features.shared.refresh_ms; missing: none, older than features.shared.max_age_ms or "
        "without the transaction's days, scored as partial)",
        {{"copy", copy}});
  };
  lookups_fresh_ = lookups("fresh");
  lookups_stale_ = lookups("stale");
  lookups_missing_ = lookups("missing");
  read_through_ = &registry_.counter(
      "vigil_features_terminal_read_through_total",
      "Reads of the shared terminal state on the consumer thread, for a transaction whose days "
      "the local copy lacked (at start, or a new day before the refresher read it)");
}

int64_t StreamFeatures::assign(int32_t partition, int64_t log_start, int64_t score_from,
                               bool log_complete) {
  return assign({{partition, log_start, score_from, log_complete}}).front();
}

std::vector<int64_t> StreamFeatures::assign(const std::vector<PartitionStart>& parts) {
  const auto assigned_at = std::chrono::steady_clock::now();
  std::vector<Partition*> states;
  std::vector<int64_t> replay_from;
  for (const PartitionStart& s : parts) {
    revoke(s.partition);
    Partition& p = partitions_.emplace(s.partition, Partition(spec_)).first->second;
    p.assigned_at = assigned_at;
    p.score_from = std::max(s.log_start, s.score_from);
    p.log_complete = s.log_complete;
    states.push_back(&p);
    replay_from.push_back(s.log_start);
  }
  // Each load touches only its own partition's state (and the store, which reads on a
  // connection per call), so they run side by side; all are joined before this returns.
  std::atomic<size_t> next{0};
  auto load = [&] {
    for (size_t i = next++; i < parts.size(); i = next++) {
      Partition& p = *states[i];
      if (snapshots_ != nullptr && snapshot_interval_.count() > 0 && parts[i].score_from > 0) {
        if (auto from = load_snapshot(parts[i].partition, p, parts[i].log_start)) {
          replay_from[i] = *from;
          p.log_complete = true;  // the snapshot holds what the log no longer does
        }
      }
      p.load_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - assigned_at)
              .count();
    }
  };
  std::vector<std::thread> loaders;
  for (size_t k = 1; k < std::min(kParallelLoads, parts.size()); ++k) loaders.emplace_back(load);
  load();
  for (std::thread& t : loaders) t.join();
  Result<std::vector<int64_t>> counted = std::vector<int64_t>{};
  if (terminals_ != nullptr) {
    std::vector<int32_t> ids;
    for (const auto& part : parts) ids.push_back(part.partition);
    counted = terminals_->counted_until(ids);
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    Partition& p = *states[i];
    p.count_from = replay_from[i];
    if (terminals_ != nullptr) {
      // Counting goes on where the shared state says: the records from there are read again
      // (replayed for the windows only where their shard's chunk does not hold them).
      if (!counted) {
        // Every record read is handed over: the shared state drops what it counted already.
        // (Without Redis the snapshot did not load either: the log is replayed from its start.)
        p.count_from = parts[i].log_start;
        logger("features")
            ->warn(
                "partition {}: the shared terminal state's position is unknown ({}); every "
                "record read from offset {} is handed over to it",
                parts[i].partition, counted.error(), replay_from[i]);
      } else if ((*counted)[i] >= 0) {
        p.count_from = std::max((*counted)[i], parts[i].log_start);
        replay_from[i] = std::min(replay_from[i], p.count_from);
      }
    }
    p.replay_done = replay_from[i] >= p.score_from;
    if (p.replay_done) history_ready(parts[i].partition, p);
  }
  update_notes();
  return replay_from;
}

void StreamFeatures::history_ready(int32_t partition, Partition& p) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - p.assigned_at).count();
  ready_seconds_.observe(seconds);
  // A partition with nothing to load or replay (a fresh log) says so only at debug level.
  const bool rebuilt = !p.restore_note.empty() || p.replayed > 0;
  logger("features")
      ->log(rebuilt ? spdlog::level::info : spdlog::level::debug,
            "partition {}: velocity-feature history ready {:.0f} ms after its assignment ({}: "
            "{:.0f} ms; {} records replayed), scoring from offset {}",
            partition, seconds * 1000, restore_note(partition), p.load_ms, p.replayed,
            p.score_from);
}

std::optional<int64_t> StreamFeatures::load_snapshot(int32_t partition, Partition& p,
                                                     int64_t log_start) {
  constexpr uint32_t kShards = EntityWindows::kShards;
  constexpr uint32_t kSlots = SnapshotStore::kSlots;
  auto heads = snapshots_->read_heads(partition, kShards, EntityWindows::kChunkHeaderBytes);
  if (!heads) {
    loads_failed_.inc();
    p.restore_note = "snapshot not read (" + heads.error() + ")";
    return std::nullopt;
  }
  // Per shard, the newest chunk that can be used: taken under this spec, covering no more
  // than the committed offset (records after it are scored again) and no less than the log's
  // start (the records after it are replayed).
  std::vector<ChunkSlot> chosen;
  std::vector<int64_t> offsets;
  std::string why_not;
  size_t present = 0;
  const std::string running_hash = spec_.hash();
  for (uint32_t k = 0; k < kShards; ++k) {
    int64_t best = -1;
    uint32_t best_slot = 0;
    for (uint32_t slot = 0; slot < kSlots; ++slot) {
      const std::string& head = heads.value()[k * kSlots + slot];
      if (head.empty()) continue;
      ++present;
      auto h = EntityWindows::read_chunk_header(head);
      std::string bad;
      if (!h) {
        bad = h.error();
      } else if (h->spec_hash != running_hash) {
        bad = "taken under feature spec " + h->spec_hash + ", not the running " + running_hash;
      } else {
        p.slot_offset[k][slot] = h->offset;
        if (h->offset > p.score_from) {
          bad = "covers offsets up to " + std::to_string(h->offset) + ", beyond the committed " +
                std::to_string(p.score_from);
        } else if (h->offset < log_start) {
          bad = "covers offsets up to " + std::to_string(h->offset) + ", before the log's start " +
                std::to_string(log_start);
        } else if (h->offset > best) {
          best = h->offset;
          best_slot = slot;
        }
      }
      if (!bad.empty() && why_not.empty()) {
        why_not = "shard " + std::to_string(k) + " slot " + std::to_string(slot) + ": " + bad;
      }
    }
    if (best < 0) {
      if (why_not.empty()) why_not = "shard " + std::to_string(k) + " has no chunk";
      chosen.clear();
      break;
    }
    chosen.push_back({k, best_slot});
    offsets.push_back(best);
  }
  if (present == 0) {
    loads_none_.inc();
    p.restore_note = "no snapshot";
    return std::nullopt;
  }
  auto unusable = [&](const std::string& why) -> std::optional<int64_t> {
    loads_unusable_.inc();
    p.restore_note = "snapshot unusable: " + why;
    return std::nullopt;
  };
  if (chosen.size() != kShards) return unusable(why_not);
  // Read and restored a batch at a time: the snapshot is never in memory whole beside the
  // state built from it. The next batch is read (on a thread of its own, joined before this
  // returns: a future from std::async waits for it) while this one is restored.
  static constexpr size_t kBatch = 32;
  auto read_at = [this, partition, &chosen](size_t first) {
    return snapshots_->read(
        partition, std::vector<ChunkSlot>(chosen.begin() + static_cast<std::ptrdiff_t>(first),
                                          chosen.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                               chosen.size(), first + kBatch))));
  };
  EntityWindows::Restorer restorer(p.windows);
  auto next = std::async(std::launch::async, read_at, size_t{0});
  for (size_t first = 0; first < chosen.size(); first += kBatch) {
    auto chunks = next.get();
    if (first + kBatch < chosen.size())
      next = std::async(std::launch::async, read_at, first + kBatch);
    if (!chunks) {
      loads_failed_.inc();
      p.restore_note = "snapshot not read (" + chunks.error() + ")";
      return std::nullopt;
    }
    for (size_t i = 0; i < chunks.value().size(); ++i) {
      // A slot replaced between the two reads (a previous owner's last writes) is not used.
      const std::string& chunk = chunks.value()[i];
      auto h = EntityWindows::read_chunk_header(chunk);
      if (!h || h->offset != offsets[first + i]) {
        return unusable("shard " + std::to_string(chosen[first + i].shard) +
                        " changed while it was read");
      }
      if (Status st = restorer.add(chunk); !st.ok()) return unusable(st.message());
    }
  }
  if (Status st = restorer.commit(); !st.ok()) return unusable(st.message());
  loads_restored_.inc();
  p.chunk_from = offsets;
  const int64_t from = *std::min_element(offsets.begin(), offsets.end());
  p.restore_note = "snapshot loaded, its chunks taken at offsets " + std::to_string(from) + ".." +
                   std::to_string(*std::max_element(offsets.begin(), offsets.end()));
  return from;
}

void StreamFeatures::revoke(int32_t partition) {
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) return;
  const auto f = it->second.windows.figures();
  gone_.observed += f.observed;
  gone_.dropped_idle += f.dropped_idle;
  gone_.dropped_cap += f.dropped_cap;
  gone_.late += f.late;
  flush_counts(partition, it->second);
  partitions_.erase(it);
  update_notes();
}

std::string StreamFeatures::restore_note(int32_t partition) const {
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) return "";
  return it->second.restore_note.empty() ? "no snapshot store" : it->second.restore_note;
}

bool StreamFeatures::replaying(int32_t partition, int64_t offset) const {
  auto it = partitions_.find(partition);
  return it != partitions_.end() && offset < it->second.score_from;
}

bool StreamFeatures::observe(Partition& p, double* out) {
  bool complete = p.windows.observe({tx_.entity, tx_.event_time_ms, tx_.amount}, out);
  if (!p.log_complete) {
    if (!p.partial_until_ms) {
      const int64_t reach = spec_.longest_window_ms() + spec_.allowed_lateness_ms;
      p.partial_until_ms =
          tx_.event_time_ms > INT64_MAX - reach ? INT64_MAX : tx_.event_time_ms + reach;
    }
    if (tx_.event_time_ms < *p.partial_until_ms) {
      complete = false;
    } else {
      p.log_complete = true;  // nothing the log lost can be inside a window any more
      update_notes();
    }
  }
  return complete;
}

void StreamFeatures::replay(int32_t partition, int64_t offset, std::string_view json,
                            int64_t record_time_ms) {
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) return;
  Partition& p = it->second;
  if (offset < p.next_offset) return;  // read before (the position moved back): applied
  replayed_.inc();
  ++p.replayed;
  p.next_offset = offset + 1;
  const bool decoded = decoder_.decode(json, record_time_ms, tx_).ok();
  count_terminal(p, offset, decoded);
  if (decoded) {
    if (!p.chunk_from.empty() && offset < p.chunk_from[EntityWindows::shard_of(tx_.entity)]) {
      p.windows.advance(tx_.event_time_ms);  // its shard's chunk holds it already
    } else {
      observe(p, scratch_.data());
    }
  }
  if (offset + 1 >= p.score_from && !p.replay_done) {
    p.replay_done = true;
    history_ready(partition, p);
    update_notes();
  }
}

void StreamFeatures::count_terminal(Partition& p, int64_t offset, bool decoded) {
  if (terminals_ == nullptr || offset < p.count_from) return;
  // A record without a Kafka timestamp skips the future-time check: the newest day seen is
  // capped at tomorrow, so that one far-future event time cannot move every copy away.
  if (decoded) terminals_->saw_day(std::min(utc_day(tx_.event_time_ms), wall_day() + 1));
  if (p.counts_from < 0) p.counts_from = offset;  // the first record since the assignment
  // Offsets without a record (transaction markers) count nothing; the range stays contiguous.
  const int64_t at = p.counts_from + static_cast<int64_t>(p.counts.size());
  if (offset < at) return;  // handed over already
  if (offset > at) p.counts.resize(p.counts.size() + static_cast<size_t>(offset - at));
  TerminalCount& c = p.counts.emplace_back();
  if (decoded) {
    c.terminal = tx_.terminal_id;
    c.day = utc_day(tx_.event_time_ms);
  }
}

void StreamFeatures::flush_counts(int32_t partition, Partition& p) {
  if (terminals_ == nullptr || p.counts.empty()) return;
  const int64_t from = p.counts_from;
  p.counts_from += static_cast<int64_t>(p.counts.size());
  const size_t n = p.counts.size();
  terminals_->count(partition, from, std::move(p.counts));
  p.counts = {};
  p.counts.reserve(n);  // as many next time, without growing
}

bool StreamFeatures::terminal_features(double* out) {
  const size_t n = 2 * spec_.terminal->windows.windows_days.size();
  std::fill(out, out + n, 0.0);
  if (terminals_ == nullptr) return false;
  const uint64_t version = terminals_->copy_version();
  if (version != terminal_version_ || terminal_copy_ == nullptr) {
    terminal_copy_ = terminals_->copy();
    terminal_version_ = version;
  }
  const int64_t day = utc_day(tx_.event_time_ms);
  // Reading again helps a transaction ahead of the copy, not one behind it (the copy follows
  // the newest day read).
  if (terminal_copy_ == nullptr || day > terminal_copy_->last_scoring_day()) {
    // Read through, at most once a refresh interval (ten after a failure).
    const auto now = coarse_now();
    const auto wait = read_through_failed_ ? 10 * terminal_refresh_ : terminal_refresh_;
    if (last_read_through_ == std::chrono::steady_clock::time_point{} ||
        now - last_read_through_ >= wait) {
      last_read_through_ = now;
      read_through_->inc();
      read_through_failed_ = !terminals_->refresh(day);
      shared_unreadable_.store(read_through_failed_, std::memory_order_relaxed);
      terminal_copy_ = terminals_->copy();
      terminal_version_ = terminals_->copy_version();
    }
  }
  const TerminalCopy* copy = terminal_copy_.get();
  // No copy, one too old, or one without the day (a transaction far behind or ahead of the
  // newest read): zeros, marked partial.
  const auto age =
      copy != nullptr ? coarse_now() - copy->read_at : std::chrono::steady_clock::duration::max();
  if (copy == nullptr || age > terminal_max_age_ || !copy->serves(day)) {
    lookups_missing_->inc();
    return false;
  }
  (age > 2 * terminal_refresh_ ? lookups_stale_ : lookups_fresh_)->inc();
  copy->features(tx_.terminal_id, day, out);
  return true;
}

bool StreamFeatures::snapshot_tick(std::chrono::steady_clock::time_point now,
                                   const std::function<int64_t(int32_t)>& committed) {
  for (auto& [n, p] : partitions_) flush_counts(n, p);
  if (snapshots_ == nullptr || snapshot_interval_.count() <= 0) return false;
  // A chunk is at most a few hundred microseconds at a million entities per partition; the
  // budget bounds how long records wait behind a tick.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(500);
  // Partitions take turns at the budget: the first served is the one after the last served.
  auto it = partitions_.upper_bound(last_snapshot_partition_);
  for (size_t visited = 0; visited < partitions_.size(); ++visited, ++it) {
    if (it == partitions_.end()) it = partitions_.begin();
    const int32_t n = it->first;
    Partition& p = it->second;
    // Only a state that is the log's whole history up to its offset is saved.
    if (!p.replay_done || !p.log_complete || p.next_offset < 0) continue;
    if (!p.in_round) {
      if (p.round_started != std::chrono::steady_clock::time_point{} &&
          now - p.round_started < snapshot_interval_) {
        continue;
      }
      p.in_round = true;
      p.cursor = 0;
      p.round_started = now;
    }
    last_snapshot_partition_ = n;
    const int64_t done = std::max(committed(n), p.score_from);
    bool blocked = false;
    while (p.cursor < EntityWindows::kShards) {
      if (!snapshot_next_shard(n, p, done)) {
        blocked = true;  // the store is full, or the commit has not passed the newer slot
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) break;
    }
    if (p.cursor == EntityWindows::kShards) {
      p.in_round = false;
      rounds_.inc();
    }
    if (std::chrono::steady_clock::now() >= deadline) return p.in_round && !blocked;
  }
  return false;
}

bool StreamFeatures::snapshot_next_shard(int32_t partition, Partition& p, int64_t committed) {
  auto& slots = p.slot_offset[p.cursor];
  // Replace the older slot once the commit has passed the newer one: a crash then still
  // finds a usable chunk of this shard (one covering no more than the committed offset).
  const uint32_t older = slots[0] <= slots[1] ? 0 : 1;
  if (slots[older] >= 0 && slots[1 - older] > committed) return false;
  if (!snapshots_->has_room()) return false;
  if (!snapshots_->save(partition, {p.cursor, older},
                        p.windows.snapshot_shard(p.cursor, p.next_offset))) {
    return false;
  }
  slots[older] = p.next_offset;
  ++p.cursor;
  return true;
}

codec::DecodeStatus StreamFeatures::compute(int32_t partition, int64_t offset,
                                            std::string_view json, int64_t record_time_ms,
                                            InlineString& id, FeatureVector& features,
                                            std::optional<int64_t>& event_time_ms, bool& partial) {
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) {  // not assigned through assign(): a fresh, complete log
    it = partitions_.emplace(partition, Partition(spec_)).first;
  }
  Partition& p = it->second;
  codec::DecodeStatus st = decoder_.decode(json, record_time_ms, tx_);
  if (offset < p.next_offset) {
    // Read before (the consumer's position moved back): already in the history, never added
    // twice; scored again over the history as it is, marked partial.
    if (!st.ok()) return st;
    p.windows.features_again({tx_.entity, tx_.event_time_ms, tx_.amount}, scratch_.data());
    partial = true;
    reread_.inc();
  } else {
    p.next_offset = offset + 1;
    count_terminal(p, offset, st.ok());
    if (!st.ok()) return st;
    partial = !observe(p, scratch_.data());
  }
  if (spec_.terminal && !terminal_features(scratch_.data() + spec_.entity_feature_count())) {
    partial = true;
  }
  if (!p.replay_done) {  // the first scored record: whatever was left to replay is not there
    p.replay_done = true;
    history_ready(partition, p);
    update_notes();
  }
  if (partial) partial_.inc();
  id.assign(tx_.transaction_id);
  event_time_ms = tx_.event_time_ms;
  features.resize(scratch_.size());
  for (size_t i = 0; i < scratch_.size(); ++i) features[i] = static_cast<float>(scratch_[i]);
  return st;
}

void StreamFeatures::refresh_gauges() {
  EntityWindows::Figures now = gone_;
  size_t entities = 0, events = 0;
  for (const auto& [n, p] : partitions_) {
    const auto f = p.windows.figures();
    entities += f.entities;
    events += f.events;
    now.dropped_idle += f.dropped_idle;
    now.dropped_cap += f.dropped_cap;
    now.late += f.late;
  }
  entities_.set(static_cast<double>(entities));
  events_.set(static_cast<double>(events));
  dropped_idle_.inc(now.dropped_idle - reported_.dropped_idle);
  dropped_cap_.inc(now.dropped_cap - reported_.dropped_cap);
  late_.inc(now.late - reported_.late);
  reported_ = now;
}

void StreamFeatures::update_notes() {
  std::vector<std::string> notes;
  size_t replaying = 0, incomplete = 0;
  for (const auto& [n, p] : partitions_) {
    if (!p.replay_done) {
      ++replaying;
      notes.push_back("features: partition " + std::to_string(n) + " rebuilding its history (" +
                      (p.restore_note.empty() ? std::string() : p.restore_note + "; ") +
                      "replaying the log up to offset " + std::to_string(p.score_from) + ")");
    }
    if (!p.log_complete) {
      ++incomplete;
      notes.push_back("features: partition " + std::to_string(n) +
                      " log no longer holds its full history" +
                      (p.restore_note.empty() ? std::string() : " (" + p.restore_note + ")") +
                      "; scores are marked \"history\":\"partial\" until the windows pass "
                      "its first record");
    }
  }
  replaying_partitions_.set(static_cast<double>(replaying));
  incomplete_partitions_.set(static_cast<double>(incomplete));
  std::lock_guard<std::mutex> lock(notes_mutex_);
  notes_ = std::move(notes);
}

std::vector<std::string> StreamFeatures::readiness_notes() const {
  std::vector<std::string> notes;
  {
    std::lock_guard<std::mutex> lock(notes_mutex_);
    notes = notes_;
  }
  if (terminals_ != nullptr) {
    const auto copy = terminals_->copy();
    if (copy == nullptr && shared_unreadable_.load(std::memory_order_relaxed)) {
      notes.emplace_back(
          "terminal features: the shared terminal state could not be read (Redis "
          "unreachable?): scores are marked partial");
    }
    if (copy != nullptr) {
      const auto age = coarse_now() - copy->read_at;  // the clock scores are judged by
      if (age > terminal_max_age_) {
        notes.push_back(
            "terminal features: the shared terminal state was last read " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(age).count()) +
            " s ago (features.shared.max_age_ms exceeded; Redis unreachable?): scores are "
            "marked partial");
      }
    }
  }
  return notes;
}

}  // namespace vigil::features

// StreamFeatures: velocity features for one Kafka consumer. One EntityWindows per assigned
// partition, fed every record of the partition in log order, on the consumer thread.
//
// Recovery. State is rebuilt on every assignment (start, restart, rebalance): the committed
// offset is the checkpoint, the log the changelog (docs/DESIGN: "keyed state"). With a
// SnapshotStore, each partition's state is also saved in rounds, one shard at a time between
// records (EntityWindows::snapshot_shard), each chunk tagged with the offset it covers and
// written by the store's own thread into the older of its two slots, and only once the other
// slot covers no more than the committed offset (so one usable chunk per shard always
// remains). On assignment the newest usable chunk of every shard is loaded (covering no
// more than the committed offset, no less than the log's start, taken under the same spec)
// and the log is replayed from the smallest of their offsets, each record applied only to
// shards whose chunk does not hold it. Without a usable snapshot, the log is replayed from
// its start. Replayed records are not scored or produced, and get exactly the features they
// had the first time (the computation is a function of the log), so after a crash the
// records consumed again are scored as before.
//
// When neither a snapshot nor the log holds the partition's whole history (retention deleted
// records), every transaction within the longest window plus the allowed lateness of the
// first one read is marked partial, /ready names the partition, and
// vigil_features_history_incomplete_partitions counts it until then.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codec/raw_transaction.h"
#include "common/feature_vector.h"
#include "common/inline_string.h"
#include "common/metrics.h"
#include "features/entity_windows.h"
#include "features/feature_spec.h"
#include "features/snapshot_store.h"
#include "features/terminal_state.h"

namespace vigil::features {

class StreamFeatures {
 public:
  // `snapshots` may be null (no snapshots); a round per partition starts at most every
  // `snapshot_interval` (0: none).
  StreamFeatures(FeatureSpec spec, size_t max_event_bytes, metrics::Registry& registry,
                 SnapshotStore* snapshots = nullptr,
                 std::chrono::steady_clock::duration snapshot_interval = std::chrono::seconds(30));

  const FeatureSpec& spec() const { return spec_; }

  // The shared terminal state (a spec with `terminal`): every transaction read is counted in
  // it, and the terminal features are computed from its local copy. A copy older than
  // twice `refresh_interval` is counted stale; one older than `max_age` (or none, or one
  // without the transaction's days) gives zeros marked partial, and /ready says why. Call
  // before the first assign(); `state` must outlive this.
  void set_terminal_state(TerminalState* state, std::chrono::milliseconds refresh_interval,
                          std::chrono::milliseconds max_age);
  // Whether the shared terminal state has as many records waiting to be written as it
  // takes: the consumer then pauses its partitions, until it is back to half of that.
  bool shared_backlogged(bool paused) const {
    if (terminals_ == nullptr) return false;
    const size_t max = terminals_->max_backlog();
    return paused ? terminals_->backlog() > max / 2 : terminals_->backlog() >= max;
  }

  // `partition` was assigned; its log starts at `log_start` and records from `score_from` are
  // scored. Loads its snapshot when there is one to use and returns the offset to consume
  // from: the records before `score_from` rebuild its state only. `log_complete` is false
  // when the log no longer holds the partition's first records.
  int64_t assign(int32_t partition, int64_t log_start, int64_t score_from, bool log_complete);
  // The partitions of one assignment at once, their readiness timed from this call: their
  // snapshots load kParallelLoads at a time (each into its own partition's state; 128
  // partitions one after another took 5.5 s). Returns each one's offset to consume from, in
  // the order of `parts`.
  struct PartitionStart {
    int32_t partition = 0;
    int64_t log_start = 0;
    int64_t score_from = 0;
    bool log_complete = false;
  };
  static constexpr size_t kParallelLoads = 4;
  std::vector<int64_t> assign(const std::vector<PartitionStart>& parts);
  void revoke(int32_t partition);
  // How `partition`'s history is being rebuilt (snapshot loaded, none, unusable and why).
  std::string restore_note(int32_t partition) const;

  // A hint that a transaction of `entity` (a record's key: the entity id, when producers key
  // by it) is replayed or computed EntityWindows::kPrefetchAhead records from now; see
  // EntityWindows::prefetch. Only ever a prefetch.
  void prefetch(int32_t partition, std::string_view entity) {
    auto it = partitions_.find(partition);
    if (it != partitions_.end()) it->second.windows.prefetch(entity);
  }
  static constexpr size_t kPrefetchAhead = EntityWindows::kPrefetchAhead;

  // Whether any partition is rebuilding its history (has records left to replay).
  bool replaying_any() const {
    for (const auto& [n, p] : partitions_) {
      if (!p.replay_done) return true;
    }
    return false;
  }
  // Whether `offset` of `partition` only rebuilds state (replayed, not scored).
  bool replaying(int32_t partition, int64_t offset) const;
  // Replays the record at `offset`: its transaction extends the history, nothing else. A
  // record that does not decode was dead-lettered the first time; it is skipped.
  void replay(int32_t partition, int64_t offset, std::string_view json, int64_t record_time_ms);

  // Takes the next shards of each partition's snapshot round, while they fit the store and a
  // small time budget. `committed(partition)` is the partition's committed offset (or the
  // one it was assigned with). Consumer thread, between records. Returns true when the budget
  // ran out with shards ready to take: the caller should tick again soon rather than wait
  // for records (an idle consumer ticks once per poll timeout, which held a round of 128
  // partitions after a burst for minutes).
  bool snapshot_tick(std::chrono::steady_clock::time_point now,
                     const std::function<int64_t(int32_t)>& committed);

  // Decodes a raw transaction and computes its features: the id, the features in the spec's
  // order and the event time go to the caller's storage; `partial` says whether they were
  // computed over partial history. `record_time_ms` is the record's Kafka timestamp (the
  // reference of the event-time future limit), INT64_MIN when it has none.
  codec::DecodeStatus compute(int32_t partition, int64_t offset, std::string_view json,
                              int64_t record_time_ms, InlineString& id, FeatureVector& features,
                              std::optional<int64_t>& event_time_ms, bool& partial);

  // Refreshes the gauges (entities, events, partitions replaying or incomplete). Consumer
  // thread, now and then.
  void refresh_gauges();
  // Why feature state is not ready: partitions replaying, logs missing history. Any thread.
  std::vector<std::string> readiness_notes() const;

 private:
  struct Partition {
    explicit Partition(const FeatureSpec& spec)
        : windows(spec), slot_offset(EntityWindows::kShards, {-1, -1}) {}
    EntityWindows windows;
    int64_t score_from = 0;  // records before it are replayed
    bool replay_done = true;
    bool log_complete = true;
    // With an incomplete log: transactions before this event time are partial (set by the
    // first one read: its time + the longest window + the allowed lateness).
    std::optional<int64_t> partial_until_ms;
    int64_t next_offset = -1;         // after the last record read; -1 before the first
    std::vector<int64_t> chunk_from;  // restored: per shard, the offset its chunk covers
    std::string restore_note;         // how the history is rebuilt, for /ready
    // Snapshot rounds: per shard, the offset each slot holds (-1: nothing usable).
    std::vector<std::array<int64_t, SnapshotStore::kSlots>> slot_offset;
    // Assignment to ready (replay done): when it began, how long the snapshot load took,
    // how many records were replayed since.
    std::chrono::steady_clock::time_point assigned_at{};
    double load_ms = 0;
    uint64_t replayed = 0;
    // Terminal counts: records from count_from on are counted in the shared state; `counts`
    // holds those of [counts_from, counts_from + counts.size()) not handed over yet.
    int64_t count_from = 0;
    int64_t counts_from = -1;
    std::vector<TerminalCount> counts;
    uint32_t cursor = 0;  // the next shard of the current round
    bool in_round = false;
    std::chrono::steady_clock::time_point round_started{};
  };
  // Loads the snapshot of `p`; returns the offset to replay from, or nothing (with the
  // reason in p.restore_note).
  std::optional<int64_t> load_snapshot(int32_t partition, Partition& p, int64_t log_start);
  // One shard of p's round; false when it must wait (store full, or the slot to replace is
  // the only one within the committed offset).
  bool snapshot_next_shard(int32_t partition, Partition& p, int64_t committed);
  // Feeds one decoded transaction; returns false when computed over partial history.
  bool observe(Partition& p, double* out);
  // `p` has its history (nothing, or nothing more, to replay): logged with how long it took
  // from the assignment, and observed in vigil_features_ready_seconds.
  void history_ready(int32_t partition, Partition& p);
  // The record at `offset` (decoded into tx_ when `decoded`) for the shared terminal counts.
  void count_terminal(Partition& p, int64_t offset, bool decoded);
  // Hands p's terminal counts to the shared state.
  void flush_counts(int32_t partition, Partition& p);
  // The terminal features of tx_ into `out`; false when they are not complete (see
  // set_terminal_state).
  bool terminal_features(double* out);
  void update_notes();

  const FeatureSpec spec_;
  SnapshotStore* const snapshots_;
  const std::chrono::steady_clock::duration snapshot_interval_;
  codec::RawTransactionDecoder decoder_;
  codec::RawTransaction tx_;
  std::vector<double> scratch_;
  std::map<int32_t, Partition> partitions_;
  int32_t last_snapshot_partition_ = -1;  // the partition whose round was served last

  metrics::Counter& replayed_;
  metrics::Counter& partial_;
  metrics::Gauge& entities_;
  metrics::Gauge& events_;
  metrics::Gauge& replaying_partitions_;
  metrics::Gauge& incomplete_partitions_;
  metrics::Counter& dropped_idle_;
  metrics::Counter& dropped_cap_;
  metrics::Counter& late_;
  metrics::Counter& reread_;
  metrics::Counter& rounds_;
  metrics::Counter& loads_restored_;
  metrics::Counter& loads_none_;
  metrics::Counter& loads_unusable_;
  metrics::Counter& loads_failed_;
  metrics::Histogram& ready_seconds_;
  // The shared terminal state, its copy in use and the lookups by the copy's age.
  TerminalState* terminals_ = nullptr;
  std::chrono::milliseconds terminal_refresh_{1000};
  std::chrono::milliseconds terminal_max_age_{60000};
  std::shared_ptr<const TerminalCopy> terminal_copy_;
  uint64_t terminal_version_ = 0;
  metrics::Counter* lookups_fresh_ = nullptr;
  metrics::Counter* lookups_stale_ = nullptr;
  metrics::Counter* lookups_missing_ = nullptr;
  metrics::Counter* read_through_ = nullptr;
  // The last read of the shared state on the consumer thread (a copy without the day), and
  // whether it failed: then the next waits ten refresh intervals.
  std::chrono::steady_clock::time_point last_read_through_{};
  bool read_through_failed_ = false;
  // Whether the last read-through failed (for /ready while there is no copy). Any thread.
  std::atomic<bool> shared_unreadable_{false};
  metrics::Registry& registry_;
  // Totals of the partitions revoked since, so the counters above only ever grow.
  EntityWindows::Figures gone_;
  EntityWindows::Figures reported_;

  mutable std::mutex notes_mutex_;
  std::vector<std::string> notes_;  // guarded by notes_mutex_
};

}  // namespace vigil::features

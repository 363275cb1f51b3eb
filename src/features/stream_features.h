// StreamFeatures: velocity features for one Kafka consumer. One EntityWindows per assigned
// partition, fed every record of the partition in log order, on the consumer thread.
//
// State is rebuilt on every assignment (start, restart, rebalance) by replaying the
// partition's log up to its committed offset without scoring or producing: the committed
// offset is the checkpoint, the log the changelog (docs/DESIGN: "keyed state"). Replayed
// records get exactly the features they had the first time (the computation is a function
// of the log), so after a crash the records consumed again are scored as before.
//
// When the log no longer starts at offset 0 (retention deleted records), the history it
// holds may miss older transactions: every transaction within the longest window plus the
// allowed lateness of the first one read is marked partial, /ready names the partition, and
// vigil_features_history_incomplete_partitions counts it until then.
#pragma once

#include <cstdint>
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

namespace vigil::features {

class StreamFeatures {
 public:
  StreamFeatures(FeatureSpec spec, size_t max_event_bytes, metrics::Registry& registry);

  const FeatureSpec& spec() const { return spec_; }

  // `partition` was assigned and is consumed from `replay_from`: the records before
  // `score_from` rebuild its state only. `log_complete` is false when the log no longer holds
  // the partition's first records. Starts from an empty state.
  void assign(int32_t partition, int64_t replay_from, int64_t score_from, bool log_complete);
  void revoke(int32_t partition);

  // Whether `offset` of `partition` only rebuilds state (replayed, not scored).
  bool replaying(int32_t partition, int64_t offset) const;
  // Replays the record at `offset`: its transaction extends the history, nothing else. A
  // record that does not decode was dead-lettered the first time; it is skipped.
  void replay(int32_t partition, int64_t offset, std::string_view json, int64_t record_time_ms);

  // Decodes a raw transaction and computes its features: the id, the features in the spec's
  // order and the event time go to the caller's storage; `partial` says whether they were
  // computed over partial history. `record_time_ms` is the record's Kafka timestamp (the
  // reference of the event-time future limit), INT64_MIN when it has none.
  codec::DecodeStatus compute(int32_t partition, std::string_view json, int64_t record_time_ms,
                              InlineString& id, FeatureVector& features,
                              std::optional<int64_t>& event_time_ms, bool& partial);

  // Refreshes the gauges (entities, events, partitions replaying or incomplete). Consumer
  // thread, now and then.
  void refresh_gauges();
  // Why feature state is not ready: partitions replaying, logs missing history. Any thread.
  std::vector<std::string> readiness_notes() const;

 private:
  struct Partition {
    explicit Partition(const FeatureSpec& spec) : windows(spec) {}
    EntityWindows windows;
    int64_t score_from = 0;  // records before it are replayed
    bool replay_done = true;
    bool log_complete = true;
    // With an incomplete log: transactions before this event time are partial (set by the
    // first one read: its time + the longest window + the allowed lateness).
    std::optional<int64_t> partial_until_ms;
  };
  // Feeds one decoded transaction; returns false when computed over partial history.
  bool observe(Partition& p, double* out);
  void update_notes();

  const FeatureSpec spec_;
  codec::RawTransactionDecoder decoder_;
  codec::RawTransaction tx_;
  std::vector<double> scratch_;
  std::map<int32_t, Partition> partitions_;

  metrics::Counter& replayed_;
  metrics::Counter& partial_;
  metrics::Gauge& entities_;
  metrics::Gauge& events_;
  metrics::Gauge& replaying_partitions_;
  metrics::Gauge& incomplete_partitions_;
  metrics::Counter& dropped_idle_;
  metrics::Counter& dropped_cap_;
  metrics::Counter& late_;
  // Totals of the partitions revoked since, so the counters above only ever grow.
  EntityWindows::Figures gone_;
  EntityWindows::Figures reported_;

  mutable std::mutex notes_mutex_;
  std::vector<std::string> notes_;  // guarded by notes_mutex_
};

}  // namespace vigil::features

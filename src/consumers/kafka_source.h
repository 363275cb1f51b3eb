// KafkaSource: consumes the input topic as one member of the consumer group, decodes each
// record straight into a ScoreRequest (which carries the record itself to the delivery
// stage), hands undecodable records to the delivery stage's dead-letter path, and commits
// offsets only once every record below them has a final outcome (OffsetTracker, which the
// delivery stage acknowledges through the delivery::Acknowledger seam).
//
// One consumer thread (owned here) does all of: the batch consume call, rebalance handling,
// pause/resume, commits and the lag gauges — librdkafka 2.0.2 is unsafe when the batch
// consume API and rebalances/pause run on different threads.
//
// Backpressure: above the scoring queue's high watermark, with records still waiting for room
// in it, or with kafka.max_in_flight_records consumed and not yet delivered, every assigned
// partition is paused; polling continues (the thread never blocks on the queue or the
// producer), so rebalances and the group session are served. Below the low watermark, with
// at most half that many in flight, they resume. A partition with a held record (no outcome
// possible for now, see DeliveryStage) stays paused until the hold is lifted. Rebalancing uses the
// eager `range` assignor with a synchronous commit of delivered offsets on revoke
// (cooperative-sticky has known bugs in 2.0.2).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "codec/event_decoder.h"
#include "common/metrics.h"
#include "consumers/offset_tracker.h"
#include "delivery/acknowledger.h"
#include "features/stream_features.h"
#include "kafka/kafka_client.h"
#include "kafka/kafka_config.h"
#include "scoring/scoring_queue.h"

namespace vigil::consumers {

// librdkafka's report of an offset reset (auto.offset.reset), read from its log line
//   "<topic> [<p>]: offset reset (at offset <from>, broker <b>) to [cached ]BEGINNING offset
//    <to>: <why>"
// Records [from, to) were never read: removed by retention (the usual cause) before this
// consumer got to them. librdkafka 2.0.2 reports it only in its log.
struct OffsetReset {
  int32_t partition = -1;
  int64_t from = -1;
  int64_t to = -1;
  std::string why;
};
// The reset a librdkafka OFFSET log line reports, or nullopt when it reports none.
std::optional<OffsetReset> parse_offset_reset(std::string_view line);

struct KafkaSourceStats {
  // `labels` go on every series (a route's {topic}; none for kafka.input_topic's).
  explicit KafkaSourceStats(metrics::Registry& r, metrics::Labels labels = {});
  void consumed(size_t n) { consumed_.inc(n); }
  void rejected(codec::DecodeError reason);
  // Records never read: `n` of them, because `reason` (an error's name, offset_out_of_range).
  // Any thread.
  void lost(const char* reason, uint64_t n = 1);
  void untracked(size_t n) { untracked_.inc(n); }
  void paused() { pauses_.inc(); }
  void prefetch_woken() { prefetch_wakes_.inc(); }
  // Sets the lag gauge of partition `p` (created on first use).
  void lag(PartitionId p, int64_t records);
  // Removes the lag series of a partition that is no longer ours.
  void lag_removed(PartitionId p);

  // What the live view shows of the consumer (src/live). Any thread.
  struct Figures {
    uint64_t consumed = 0;  // records consumed since start
    double assigned_partitions = 0;
    double paused_partitions = 0;
    double held_partitions = 0;
    int64_t lag = 0;  // over every assigned partition

    // Adds another consumer's figures (the live view sums every route's).
    Figures& add(const Figures& o) {
      consumed += o.consumed;
      assigned_partitions += o.assigned_partitions;
      paused_partitions += o.paused_partitions;
      held_partitions += o.held_partitions;
      lag += o.lag;
      return *this;
    }
  };
  Figures figures() const;

  metrics::Registry& registry;
  const metrics::Labels labels;
  metrics::Counter& consumed_;
  metrics::Counter& pauses_;
  metrics::Counter& prefetch_wakes_;
  metrics::Counter& commits_;
  metrics::Counter& commit_failures_;
  metrics::Counter& rebalances_;
  metrics::Gauge& paused_partitions_;
  metrics::Gauge& assigned_partitions_;
  metrics::Gauge& held_partitions_;
  metrics::Counter& offset_regressions_;
  metrics::Counter& assignments_lost_;
  metrics::Counter& untracked_;
  std::map<codec::DecodeError, metrics::Counter*> rejected_;
  std::map<PartitionId, std::unique_ptr<std::atomic<int64_t>>> lag_;  // consumer thread only
  std::atomic<int64_t> lag_total_{0};                                 // the sum of lag_
};

// The route a source consumes (kafka.routes): stamped on every record it takes
// (RecordPosition::route: its offset tracker and output topic) and request (the model).
struct SourceRoute {
  uint16_t index = 0;      // 0: kafka.input_topic
  uint16_t model = 0;      // the batcher's model that scores it
  metrics::Labels labels;  // on the source's metrics: {topic} with kafka.routes, else none
};

class KafkaSource {
 public:
  // `bootstrap` is the resolved broker list (the embedded cluster's address when embedded).
  // The queue, schema, tracker (which the delivery stage acknowledges), dead-letter sink (the
  // delivery stage) and registry must outlive the source.
  static Result<std::unique_ptr<KafkaSource>> create(
      const kafka::KafkaConfig& config, const std::string& bootstrap, scoring::ScoringQueue& queue,
      const codec::FeatureSchema& schema, OffsetTracker& tracker,
      delivery::DeadLetterSink& dead_letters, metrics::Registry& registry, SourceRoute route = {});
  ~KafkaSource();
  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;

  // Records the producer holds and Kafka has not acknowledged yet (its queue): counted with
  // the tracked ones against kafka.max_in_flight_records, because scores of partitions
  // revoked since are no longer tracked. Optional; call before start(). Consumer thread.
  void set_producer_in_flight(std::function<size_t()> fn) { producer_in_flight_ = std::move(fn); }
  // Records tracked and without an outcome yet, counted against kafka.max_in_flight_records
  // instead of this source's own: every route's together, so the bound holds for the process
  // (the producer's queue is shared). Optional; call before start(). Consumer thread.
  void set_tracked_in_flight(std::function<size_t()> fn) { tracked_in_flight_ = std::move(fn); }
  // Records are raw transactions whose velocity features `features` computes (the model's
  // inputs), instead of events carrying ready-made features. On every assignment each
  // partition's history is rebuilt by replaying its log up to the committed offset (see
  // features/stream_features.h). Optional; call before start().
  void set_features(std::unique_ptr<features::StreamFeatures> features) {
    features_ = std::move(features);
  }

  void start();
  // Phase one of shutdown: stop taking records (the thread keeps serving the group). Returns
  // once the consumer thread hands nothing more to the queue or the dead-letter path.
  void stop_intake();
  // Phase two: commit what was delivered (synchronously, logging the result), leave the
  // group, join the thread. Call after the delivery stage has stopped (every delivery report
  // served), so the commit covers every record with an outcome. Idempotent.
  void stop();

  bool has_assignment() const { return assigned_.load() > 0; }
  // Why the consumer is not ready: no partitions assigned, partitions held at a record that
  // has no outcome yet. Empty when ready. Any thread.
  std::vector<std::string> readiness_failures() const;
  const OffsetTracker& offsets() const { return tracker_; }
  const KafkaSourceStats& stats() const { return stats_; }

 private:
  KafkaSource(const kafka::KafkaConfig& config, scoring::ScoringQueue& queue,
              const codec::FeatureSchema& schema, OffsetTracker& tracker,
              delivery::DeadLetterSink& dead_letters, metrics::Registry& registry,
              SourceRoute route);
  // librdkafka's log lines go to spdlog ("rdkafka"); an offset reset is counted as records
  // lost. librdkafka's threads.
  static void log_cb(const rd_kafka_t* rk, int level, const char* facility, const char* line);
  static void rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* partitions, void* opaque);
  void on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions);
  // The result of an asynchronous commit (consumer thread): failures are counted and logged.
  static void commit_result_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t* offsets, void* opaque);
  void run();
  // Tracks, decodes and queues what one consume call returned; takes the messages.
  void handle(rd_kafka_message_t** msgs, size_t n);
  // Before record `i` of `msgs[0, n)` is handled, hints the key of the one
  // StreamFeatures::kPrefetchAhead further (at i == 0 also the ones before it) to the
  // velocity features (features_ set): see StreamFeatures::prefetch.
  void hint_features(rd_kafka_message_t* const* msgs, size_t n, size_t i);
  // Pushes staged_ into the queue; what does not fit stays staged (never blocks).
  void enqueue_staged();
  // Releases the staged records of `revoked` partitions (not acknowledged); how many, by
  // partition.
  std::map<PartitionId, size_t> drop_staged(const std::vector<PartitionId>& revoked);
  void update_backpressure();
  // Feature state: where each newly assigned partition is consumed from (its log's start,
  // when records before the committed offset rebuild the history) and what is replayed.
  // `committed`: the partitions' committed offsets in the same order, null if unread.
  void plan_feature_replay(rd_kafka_topic_partition_list_t* partitions,
                           const rd_kafka_topic_partition_list_t* committed);
  // Sets where each newly assigned partition without a committed offset starts, as
  // auto.offset.reset says, looked up before the assignment: librdkafka's own lookup starts
  // a partition only after timers (100 ms, 500 ms after a pause or resume outdated it), and
  // in 2.0.2 a late reply of it, after records were consumed, moved the position back to
  // the log's start (those records consumed again). Returns the committed offsets, in the
  // order of `partitions`, or null when they could not be read (librdkafka looks up all).
  kafka::PartitionList resolve_start_offsets(rd_kafka_topic_partition_list_t* partitions);
  // Where each of `parts` (of the input topic) starts (which = RD_KAFKA_OFFSET_BEGINNING) or
  // ends (RD_KAFKA_OFFSET_END), in their order: one ListOffsets per leader. A failed call
  // sets every element's err.
  kafka::PartitionList list_offsets(const std::vector<PartitionId>& parts, int64_t which,
                                    int timeout_ms);
  enum class ResetPolicy { kEarliest, kLatest, kError };
  ResetPolicy reset_policy() const;
  // librdkafka 2.0.2 serves a resume on its main thread and does not wake the broker thread
  // that fetches the partition: one whose partitions were all paused sleeps up to 1 s
  // (rd_kafka_max_block_ms) before it fetches again. A request to each partition's leader
  // wakes it: one ListOffsets per leader, bounded like the watermark queries.
  void wake_fetchers(const std::vector<PartitionId>& parts);
  // librdkafka stops fetching while its consumer queue holds queued.min.messages records or
  // queued.max.messages.kbytes, and 2.0.2 looks again only when the broker thread next wakes:
  // up to 1 s after the queue has drained (librdkafka #1377, #2879). When the consumer
  // thread runs behind the fetchers (catching up on a backlog), that gate closes over and
  // over, and each time the consumer sits idle with data waiting: measured, 40% of a
  // 500,000-record catch-up. Once the queue (read after each consume of `n` records `msgs`)
  // has come near either bound, the fetchers of the partitions not paused are woken as soon
  // as it is back under half of both, so the next fetch lands before the queue runs dry.
  void watch_prefetch_gate(rd_kafka_message_t* const* msgs, size_t n);
  // Pauses partitions with a held record and resumes those whose hold was lifted.
  void update_holds();
  // Every pause and resume goes through these two, which pause only partitions not paused yet
  // and resume only partitions this consumer paused. librdkafka 2.0 restarts a partition's
  // fetcher from where it was started (or last paused) when it is resumed without being
  // paused: records already consumed come again, scored twice downstream (librdkafka issues
  // #4637 and #4686, fixed in 2.4). Consumer thread.
  void pause_partitions(const std::vector<PartitionId>& parts);
  void resume_partitions(const std::vector<PartitionId>& parts);
  // Refreshes the per-partition lag gauges (queries the brokers for paused partitions).
  void refresh_lag();
  // Commits the committable offsets of `only` (or every tracked partition). Asynchronous:
  // returns once queued. Synchronous: returns the result (__NO_OFFSET: nothing to commit).
  rd_kafka_resp_err_t commit(bool sync, const std::vector<PartitionId>* only = nullptr);
  // "p@offset, ..." of what commit() would send, for the log.
  std::string describe_committable(const std::vector<PartitionId>& parts) const;

  const kafka::KafkaConfig config_;
  const SourceRoute route_;
  kafka::Handle rk_;
  rd_kafka_queue_t* queue_handle_ = nullptr;
  scoring::ScoringQueue& queue_;
  codec::EventDecoder decoder_;
  OffsetTracker& tracker_;
  delivery::DeadLetterSink& dead_letters_;
  KafkaSourceStats stats_;
  std::map<PartitionId, Offset> last_committed_;
  // Decoded, not yet queued, in consume order: what did not fit in the queue waits here for
  // the next turn (consumer thread).
  std::vector<scoring::ScoreRequest> staged_;
  std::vector<AckToken> tokens_;          // consumer thread scratch
  std::vector<PartitionId> held_paused_;  // paused because of a hold (consumer thread)
  std::set<PartitionId> paused_by_us_;    // paused in librdkafka now (consumer thread)
  // librdkafka's prefetch bounds (queued.min.messages, queued.max.messages.kbytes in bytes),
  // the mean size of a record consumed, and whether the queue came near a bound since the
  // fetchers were last woken (consumer thread; see watch_prefetch_gate).
  size_t prefetch_max_records_ = 100000;
  double prefetch_max_bytes_ = 65536.0 * 1024;
  double mean_record_bytes_ = 0;
  bool prefetch_near_bound_ = false;
  // A snapshot round has shards ready to take: poll briefly, so an idle consumer keeps
  // ticking (consumer thread).
  bool snapshot_due_ = false;
  std::function<size_t()> producer_in_flight_;          // see set_producer_in_flight()
  std::function<size_t()> tracked_in_flight_;           // see set_tracked_in_flight()
  std::unique_ptr<features::StreamFeatures> features_;  // see set_features()

  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<bool> intake_{true};
  std::atomic<bool> stopped_{false};
  std::atomic<bool> paused_{false};
  std::mutex intake_mutex_;
  std::condition_variable intake_cv_;
  bool intake_stopped_ = false;  // guarded by intake_mutex_
  std::atomic<int> assigned_{0};
  std::chrono::steady_clock::time_point last_commit_{};
  std::chrono::steady_clock::time_point last_lag_{};
};

}  // namespace vigil::consumers

// DeliveryStage: where scored Kafka records go, between the scoring workers and the sinks.
//
//   scoring workers ──complete(batch)──► encode each score once (std::to_chars, into one
//                                        reused buffer per batch); every batch, streamed or
//                                        HTTP, leaves vigil here: the one exit for scores
//                                          ├─► Redis sink: the same bytes as SET ... EX
//                                          │   (best effort, counted by the sink)
//                                          └─► Kafka sink: one batched produce on the cached
//                                              `scores` topic handle
//   producer poller ──delivery reports──► per batch: acknowledge every delivered record at
//                                         once (Acknowledger = the consumer's OffsetTracker)
//   model errors, decode errors (consumer) ─────────► dead-letter topic, acknowledged when
//                                                      Kafka has it
//
// Failures never stall silently:
//   - a score Kafka refuses for good (non-retriable error, too large) sends its source record
//     to the dead-letter topic with vigil.error=delivery_failed and the cause; once that is
//     acknowledged the record counts as handled;
//   - a score Kafka did not acknowledge in time (message.timeout.ms) is not refused: it is
//     produced again, without bound, its partition held meanwhile (readiness names it);
//   - a dead letter too large for Kafka goes again at once with the first 4 KiB of its value
//     and headers vigil.value_truncated/value_size/value_sha256: a record's own size never
//     holds its partition;
//   - if the dead-letter write fails otherwise, the record is held: the Acknowledger holds its
//     partition (the consumer pauses it, readiness names it, no commit passes it) and the
//     stage retries the dead-letter write with backoff until it succeeds;
//   - work waiting for a retry whose partition was revoked (Acknowledger::owns) is dropped:
//     the partition's new owner consumes those records again;
//   - a fatal producer error replaces the producer; what the old one had not delivered is
//     produced again on the new one (nothing is acknowledged that Kafka did not take).
//
// Threads: complete() runs on scoring workers; dead_letter() on the consumer thread;
// delivery reports on the sink's poller. Reports only record what happened and hand any
// follow-up (dead-lettering, re-producing) to the stage's own retry thread, owned here,
// so no sink call is made from inside a delivery report. Per record on the happy path: no
// heap allocation, no lock, no std::function; per batch: one pool lock, one produce call,
// one Redis publish, one acknowledge.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/log.h"
#include "common/metrics.h"
#include "common/status.h"
#include "delivery/acknowledger.h"
#include "scoring/request.h"
#include "sinks/producer.h"
#include "sinks/redis_sink.h"

namespace vigil::delivery {

struct DeliveryConfig {
  // The input topic of each route (RecordPosition::route), named in dead-letter headers.
  std::vector<std::string> input_topics{"transactions"};
  // HTTP-scored transactions (with a transaction id) go to the output topic too, best effort
  // (http.publish_scores); they always go to Redis when it is on.
  bool publish_http_scores = false;
  // Scores of raw transactions carry the velocity features they were computed with, the spec
  // hash and whether the history was complete (features.log).
  bool log_features = true;
  // A held record's dead-letter write is retried after this, doubling up to the max.
  std::chrono::milliseconds retry_backoff{100};
  std::chrono::milliseconds retry_backoff_max{5000};
};

// Metrics of the stage, with the verbs it calls.
class DeliveryStats {
 public:
  explicit DeliveryStats(metrics::Registry& r);
  void scores_delivered(uint64_t n, const metrics::Histogram::Local& end_to_end);
  void score_refused() { delivery_failed_.inc(); }
  void dead_lettered(const std::string& reason);
  void dead_letter_failed() { dead_letter_failures_.inc(); }
  void dropped_at_shutdown(uint64_t n) { dropped_shutdown_.inc(n); }
  void produced_again(uint64_t n) { produced_again_.inc(n); }
  void shadow_produced(uint64_t n) { shadow_produced_.inc(n); }
  void shadow_lost() { shadow_lost_.inc(); }
  void http_score_published(uint64_t n) { http_published_.inc(n); }
  void http_score_lost() { http_lost_.inc(); }
  void dead_letter_truncated() { truncated_.inc(); }
  void produce_timed_out() { timeouts_.inc(); }
  void abandoned(uint64_t n) { abandoned_.inc(n); }

  // What the live view shows of delivery (src/live). Any thread.
  struct Figures {
    metrics::Histogram::Snapshot end_to_end;       // event time -> score delivered, seconds
    std::map<std::string, uint64_t> dead_letters;  // by reason, since start
  };
  Figures figures() const;

  uint64_t dead_letter_failures() const { return dead_letter_failures_.value(); }
  metrics::Histogram& end_to_end() { return end_to_end_; }

 private:
  metrics::Registry& registry_;
  metrics::Counter& scores_delivered_;
  metrics::Counter& dlq_delivered_;
  metrics::Counter& delivery_failed_;
  metrics::Counter& dead_letter_failures_;
  metrics::Counter& dropped_shutdown_;
  metrics::Counter& produced_again_;
  metrics::Counter& shadow_produced_;
  metrics::Counter& shadow_lost_;
  metrics::Counter& http_published_;
  metrics::Counter& truncated_;
  metrics::Counter& timeouts_;
  metrics::Counter& abandoned_;
  metrics::Counter& http_lost_;
  metrics::Histogram& end_to_end_;
  mutable std::mutex dead_letters_mutex_;  // dead letters are rare: a lock per record is fine
  std::map<std::string, metrics::Counter*> dead_letters_;  // by reason; guarded
};

class DeliveryStage final : public scoring::BatchCompletion,
                            public scoring::ShadowCompletion,
                            public sinks::DeliveryListener,
                            public DeadLetterSink {
 public:
  // Creates the stage with the producer `make_producer` makes (the stage is its listener). An
  // empty factory: no Kafka (HTTP scores go to Redis only; nothing is consumed to deliver).
  // `redis` may be null (no cache); `ack`, `redis` and `registry` must outlive the stage.
  static Result<std::unique_ptr<DeliveryStage>> create(const DeliveryConfig& config,
                                                       const sinks::ProducerFactory& make_producer,
                                                       sinks::RedisSink* redis, Acknowledger& ack,
                                                       metrics::Registry& registry);
  ~DeliveryStage() override;
  DeliveryStage(const DeliveryStage&) = delete;
  DeliveryStage& operator=(const DeliveryStage&) = delete;

  // Starts the producer's poller and the retry thread.
  void start();
  // Waits for the brokers at start-up: see sinks::Producer::wait_for_brokers.
  Status wait_for_brokers(std::chrono::milliseconds timeout,
                          const std::function<bool()>& interrupted) {
    return producer_ ? producer_->wait_for_brokers(timeout, interrupted) : Status::Ok();
  }
  // scoring::BatchCompletion: scoring workers hand over each finished batch, streamed rows and
  // HTTP rows alike. HTTP rows were answered already; those with a transaction id are cached
  // in Redis and, with publish_http_scores, produced to the output topic, encoded exactly as a
  // streamed score (with "source":"http").
  void complete(std::vector<scoring::ScoreRequest>& batch,
                const std::vector<scoring::ScoreOutcome>& outcomes,
                const scoring::ModelInfo& model) override;
  // scoring::ShadowCompletion: shadow scores go to the shadow topic, keyed by transaction
  // id, best effort (they carry no offsets: a lost one is counted, never retried).
  void shadow_scored(const std::vector<scoring::ShadowRow>& rows, const scoring::ModelInfo& primary,
                     const scoring::ModelInfo& shadow) override;
  // DeadLetterSink: acknowledged once Kafka has it (held and retried if it cannot). Also
  // used for model errors, from the workers.
  void dead_letter(scoring::SourceRecord source, std::string_view reason,
                   std::string message) override;

  // Waits until the producer has a report for everything produced, or `timeout`.
  bool flush(std::chrono::milliseconds timeout);
  // Stops the producer (flushing within `timeout`) and the retry thread. Records without an
  // outcome are released unacknowledged: consumed again after a restart. Idempotent.
  void stop(std::chrono::milliseconds timeout);

  // Records whose dead-letter write failed and is being retried.
  size_t held_records() const { return held_.load(std::memory_order_relaxed); }
  const DeliveryStats& stats() const { return stats_; }
  // The producer; null without Kafka.
  sinks::Producer* producer() { return producer_.get(); }
  size_t producer_in_flight() const { return producer_ ? producer_->in_flight() : 0; }

  // sinks::DeliveryListener (producer poller thread).
  void on_delivery(void* opaque, rd_kafka_resp_err_t err, bool retry) override;

 private:
  struct InFlight;
  struct ScoreSlot;
  struct Batch;
  struct DeadLetter;

  DeliveryStage(const DeliveryConfig& config, sinks::RedisSink* redis, Acknowledger& ack,
                metrics::Registry& registry);
  Batch* acquire_batch();
  void encode(Batch& b, const std::vector<scoring::ScoreRequest>& batch,
              const std::vector<scoring::ScoreOutcome>& outcomes, const scoring::ModelInfo& model);
  void complete_http(const std::vector<scoring::ScoreRequest>& batch,
                     const std::vector<scoring::ScoreOutcome>& outcomes,
                     const scoring::ModelInfo& model);
  void release_batch(Batch* b);
  // A failed report during shutdown (a purge once stopping, anything once stopped): its record
  // is released unacknowledged, never retried.
  bool released_at_shutdown(rd_kafka_resp_err_t err) const;
  void slot_done(ScoreSlot* slot);
  void finish_batch(Batch* b);
  // Hands `d` to the producer; its delivery report gives it back.
  void produce_dead_letter(std::unique_ptr<DeadLetter> d);
  void dead_letter_delivered(std::unique_ptr<DeadLetter> d);
  void release(scoring::SourceRecord& source);
  void retry_main();
  // Drops (releases unacknowledged) the work whose partition is no longer ours.
  void abandon_revoked(std::vector<ScoreSlot*>& refused, std::vector<ScoreSlot*>& again,
                       std::vector<std::unique_ptr<DeadLetter>>& letters);

  const DeliveryConfig config_;
  metrics::Registry& registry_;
  sinks::RedisSink* const redis_;
  Acknowledger& ack_;
  DeliveryStats stats_;
  std::unique_ptr<sinks::Producer> producer_;  // null: no Kafka
  char http_marker_ = 0;  // the opaque of HTTP-scored records (best effort, no InFlight)

  std::mutex pool_mutex_;
  std::vector<std::unique_ptr<Batch>> all_batches_;  // guarded by pool_mutex_
  std::vector<Batch*> free_batches_;                 // guarded by pool_mutex_

  // Work for the retry thread, handed over by delivery reports.
  std::mutex work_mutex_;
  std::condition_variable work_cv_;
  std::vector<ScoreSlot*> refused_;        // scores Kafka refused: dead-letter them
  std::vector<ScoreSlot*> produce_again_;  // scores of a failed producer: produce again
  std::vector<std::unique_ptr<DeadLetter>> dead_letters_;  // to (re)produce, by next_attempt
  bool stop_retry_ = false;
  std::thread retry_thread_;

  std::atomic<bool> stopping_{false};
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<size_t> held_{0};
  RateLimitedLog refused_log_{"delivery", std::chrono::milliseconds(5000)};
  RateLimitedLog held_log_{"delivery", std::chrono::milliseconds(5000)};
  RateLimitedLog released_log_{"delivery", std::chrono::milliseconds(5000)};
  RateLimitedLog timeout_log_{"delivery", std::chrono::milliseconds(5000)};
  RateLimitedLog truncate_log_{"delivery", std::chrono::milliseconds(5000)};
  RateLimitedLog abandoned_log_{"delivery", std::chrono::milliseconds(5000)};
};

}  // namespace vigil::delivery

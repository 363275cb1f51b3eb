// KafkaSource: consumes the input topic as one member of the consumer group, decodes each
// record into a ScoreRequest for the scoring queue, routes undecodable records to the
// dead-letter topic, and commits offsets only once every record below them was delivered
// (score acked by Kafka, or dead-letter record acked).
//
// One consumer thread (owned here) does all of: the batch consume call, rebalance handling,
// pause/resume and commits — librdkafka 2.0.2 is unsafe when the batch consume API and
// rebalances/pause run on different threads. Delivery acks arrive on the sink's poller
// thread and only touch the (thread-safe) OffsetTracker.
//
// Backpressure: above the scoring queue's high watermark every assigned partition is paused
// (polling continues, so rebalances and the group session are served); below the low
// watermark they resume. Rebalancing uses the eager `range` assignor with a synchronous
// commit of delivered offsets on revoke (cooperative-sticky has known bugs in 2.0.2).
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "codec/event_decoder.h"
#include "common/metrics.h"
#include "consumers/kafka_config.h"
#include "consumers/offset_tracker.h"
#include "kafka/kafka_client.h"
#include "scoring/scoring_queue.h"
#include "sinks/kafka_sink.h"
#include "sinks/score_sink.h"

namespace vigil::consumers {

struct KafkaSourceStats {
  explicit KafkaSourceStats(metrics::Registry& r);
  void consumed(size_t n) { consumed_.inc(n); }
  void dead_lettered(codec::DecodeError reason);
  void model_failed() { dlq_model_.inc(); }
  void paused() { pauses_.inc(); }

  metrics::Registry& registry;
  metrics::Counter& consumed_;
  metrics::Counter& dlq_model_;
  metrics::Counter& pauses_;
  metrics::Counter& commits_;
  metrics::Counter& commit_failures_;
  metrics::Counter& rebalances_;
  metrics::Gauge& paused_partitions_;
  metrics::Gauge& assigned_partitions_;
  std::map<codec::DecodeError, metrics::Counter*> dlq_decode_;
};

class KafkaSource {
 public:
  // `bootstrap` is the resolved broker list (the embedded cluster's address when embedded).
  // `redis` may be null. The queue, sinks, registry and schema must outlive the source.
  static Result<std::unique_ptr<KafkaSource>> create(
      const KafkaConfig& config, const std::string& bootstrap, scoring::ScoringQueue& queue,
      const codec::FeatureSchema& schema, sinks::KafkaSink& kafka_sink, sinks::ScoreSink* redis,
      metrics::Registry& registry);
  ~KafkaSource();
  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;

  void start();
  // Phase one of shutdown: stop taking records (the thread keeps serving the group).
  void stop_intake();
  // Phase two: commit what was delivered (synchronously), leave the group, join the thread.
  // Call after the batcher and sink have drained. Idempotent.
  void stop();

  bool has_assignment() const { return assigned_.load() > 0; }
  bool is_paused() const { return paused_.load(); }
  const OffsetTracker& offsets() const { return tracker_; }
  const KafkaSourceStats& stats() const { return stats_; }

 private:
  KafkaSource(const KafkaConfig& config, scoring::ScoringQueue& queue,
              const codec::FeatureSchema& schema, sinks::KafkaSink& sink, sinks::ScoreSink* redis,
              metrics::Registry& registry);
  static void rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* partitions, void* opaque);
  void on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions);
  void run();
  void handle(kafka::Message msg);
  void dead_letter(const rd_kafka_message_t* msg, const AckToken& token, const std::string& reason,
                   const std::string& message);
  void enqueue(scoring::ScoreRequest request);
  void update_backpressure();
  void commit(bool sync, const std::vector<PartitionId>* only = nullptr);

  const KafkaConfig config_;
  kafka::Handle rk_;
  rd_kafka_queue_t* queue_handle_ = nullptr;
  scoring::ScoringQueue& queue_;
  const codec::FeatureSchema& schema_;
  codec::EventDecoder decoder_;
  sinks::KafkaSink& sink_;
  sinks::ScoreSink* redis_;
  KafkaSourceStats stats_;
  OffsetTracker tracker_;
  std::map<PartitionId, Offset> last_committed_;

  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<bool> intake_{true};
  std::atomic<bool> stopped_{false};
  std::atomic<bool> paused_{false};
  std::atomic<int> assigned_{0};
  std::chrono::steady_clock::time_point last_commit_{};
};

}  // namespace vigil::consumers

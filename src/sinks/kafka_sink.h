// KafkaSink: the idempotent producer that writes scores to the output topic (key =
// transaction id) and undeliverable events to the dead-letter topic, and reports each
// delivery back to its caller so offsets are committed only after delivery.
//
// Threads: produce_* are called from scoring workers and the consumer thread; delivery
// callbacks run on the sink's own poller thread (started by start(), joined by stop()).
// Overflow policy: when librdkafka's local queue is full, produce_* polls and retries, so a
// slow broker slows the workers down (and, through the scoring queue's watermarks, pauses
// the consumer) instead of losing or buffering without bound.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "kafka/kafka_client.h"
#include "sinks/score_record.h"

namespace vigil::sinks {

struct KafkaSinkConfig {
  std::string bootstrap;
  std::string output_topic = "scores";
  std::string dlq_topic = "transactions.dlq";
  std::map<std::string, std::string> properties;  // kafka.producer.* passthrough
};

// Called once per produced record on the poller thread: delivered, or why not.
using DeliveryCallback = std::function<void(const Status& delivery)>;

struct DlqRecord {
  std::string key;
  std::string value;  // the original record value, as received
  std::vector<std::pair<std::string, std::string>> headers;  // error, source topic/partition/offset
};

class KafkaSink {
 public:
  static Result<std::unique_ptr<KafkaSink>> create(const KafkaSinkConfig& config,
                                                   metrics::Registry& registry);
  ~KafkaSink();
  KafkaSink(const KafkaSink&) = delete;
  KafkaSink& operator=(const KafkaSink&) = delete;

  void start();
  // Writes `record` to the output topic. `on_delivery` runs once, on the poller thread.
  // Blocks only while librdkafka's queue is full. Returns an error (and does not call
  // on_delivery) only when the sink is stopped or the record cannot be produced at all.
  Status produce_score(const ScoreRecord& record, DeliveryCallback on_delivery);
  Status produce_dlq(const DlqRecord& record, DeliveryCallback on_delivery);
  // Waits until every produced record has a delivery report, or `timeout`.
  bool flush(std::chrono::milliseconds timeout);
  // Flushes within `timeout`, then stops the poller and joins it. Idempotent.
  void stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

  size_t in_flight() const;
  rd_kafka_t* handle() { return rk_.get(); }

 private:
  struct Stats {
    explicit Stats(metrics::Registry& r);
    metrics::Counter& scores_delivered;
    metrics::Counter& dlq_delivered;
    metrics::Counter& delivery_failed;
    metrics::Counter& queue_full_waits;
    metrics::Histogram& end_to_end;
  };
  struct Pending;
  KafkaSink(kafka::Handle rk, const KafkaSinkConfig& config, metrics::Registry& registry);
  Status produce(const std::string& topic, const std::string& key, const std::string& value,
                 rd_kafka_headers_t* headers, Pending* pending);
  static void on_delivery_report(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque);
  void poller_main();

  kafka::Handle rk_;
  KafkaSinkConfig config_;
  metrics::Registry& registry_;
  Stats stats_;
  std::thread poller_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stopped_{false};
};

}  // namespace vigil::sinks

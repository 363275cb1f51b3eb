// KafkaSink: the idempotent producer that writes scores to the output topic (key =
// transaction id) and records without a score to the dead-letter topic. It knows nothing of
// batches or offsets: each message carries an opaque pointer, and every delivery report is
// handed, with that pointer, to the DeliveryListener (the delivery stage).
//
// Threads: produce_* are called from scoring workers, the consumer thread and the delivery
// stage's retry thread; delivery reports run on the sink's poller thread (started by start(),
// joined by stop()), or on the thread that replaces the producer for the old one's reports.
// Overflow policy: when librdkafka's local queue is full, produce_* polls and retries, so a
// slow broker slows the workers down (and, through the scoring queue's watermarks, pauses
// the consumer) instead of losing or buffering without bound.
//
// A fatal producer error (the idempotent producer cannot guarantee ordering any more) makes
// fatal() true; replace_producer() then swaps in a new producer. Messages of the old one are
// reported with `retry` set: they were not delivered and should be produced again.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "kafka/kafka_client.h"
#include "sinks/producer.h"

namespace vigil::sinks {

struct KafkaSinkConfig {
  std::string bootstrap;
  std::string output_topic = "scores";
  std::string dlq_topic = "transactions.dlq";
  std::string shadow_topic = "scores.shadow";     // shadow scores (best effort)
  std::map<std::string, std::string> properties;  // kafka.producer.* passthrough
  // The output topic of each route (produce_scores' `output`); empty: output_topic alone.
  std::vector<std::string> outputs;
};

class KafkaSink final : public Producer {
 public:
  // `listener` must outlive the sink.
  static Result<std::unique_ptr<KafkaSink>> create(const KafkaSinkConfig& config,
                                                   DeliveryListener& listener,
                                                   metrics::Registry& registry);
  ~KafkaSink();
  KafkaSink(const KafkaSink&) = delete;
  KafkaSink& operator=(const KafkaSink&) = delete;

  void start() override;

  // Waits until the brokers answer a metadata request for the output and dead-letter topics
  // (which also tells the producer their leaders before the first message: librdkafka <
  // 2.10.1 can otherwise hold it up to 1 s, upstream #5032). Retries until `timeout`, or
  // until `interrupted` returns true; the error names the last cause.
  Status wait_for_brokers(std::chrono::milliseconds timeout,
                          const std::function<bool()>& interrupted) override;

  // Produces `n` messages to output topic `output` (KafkaSinkConfig::outputs) with one call on
  // its cached topic handle (partitioned by key); librdkafka copies the bytes. Each message's
  // `_private` is its opaque. Messages that could not be queued are reported to the listener
  // at once (on this thread) with their error. Blocks only while librdkafka's queue is full.
  void produce_scores(size_t output, rd_kafka_message_t* messages, size_t n) override;
  // Produces `n` records that carry no offsets (best effort: a full queue drops them, reported
  // like a refusal, with each message's `_private` as the opaque, which the listener must tell
  // apart from its in-flight records): shadow scores to the shadow topic, HTTP-scored
  // transactions to the output topic.
  void produce_best_effort(BestEffort topic, rd_kafka_message_t* messages, size_t n) override;
  // Produces one record to the dead-letter topic with `headers` (name, value). Reports like
  // produce_scores.
  void produce_dead_letter(std::string_view key, std::string_view value,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           void* opaque) override;

  // Whether the current producer failed fatally (replace_producer() is due).
  bool fatal() const override { return fatal_.load(std::memory_order_acquire); }
  // Creates a new producer, swaps it in, and retires the old one: its queued and in-flight
  // messages are purged and reported with `retry`. Any thread but the poller.
  Status replace_producer() override;
  // For fault tests: raises a fatal error on the current producer as librdkafka would.
  void inject_fatal_error_for_test(const char* reason);

  // Waits until every produced record has a delivery report, or `timeout`.
  bool flush(std::chrono::milliseconds timeout) override;
  // Flushes within `timeout`, then stops the poller and joins it; what is left is purged and
  // reported (err = purge, retry unset). Idempotent.
  void stop(std::chrono::milliseconds timeout) override;

  size_t in_flight() const override;

 private:
  struct Stats {
    explicit Stats(metrics::Registry& r);
    metrics::Counter& queue_full_waits;
    metrics::Counter& fatal_errors;
    metrics::Counter& replaced;
  };
  struct Client;  // one librdkafka producer and its cached topic handles
  KafkaSink(const KafkaSinkConfig& config, DeliveryListener& listener, metrics::Registry& registry);
  Result<std::unique_ptr<Client>> make_producer();
  // The topics it writes with offsets behind them: output (every route's) and dead-letter.
  std::vector<std::string> written_topics() const;
  static void on_delivery_report(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);
  static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  void poller_main();
  // Waits while replace_producer() wants the exclusive lock.
  void wait_for_swap() const;

  KafkaSinkConfig config_;
  DeliveryListener& listener_;
  metrics::Registry& registry_;
  Stats stats_;
  mutable std::shared_mutex producer_mutex_;  // exclusive only to swap producer_
  std::unique_ptr<Client> producer_;
  std::thread poller_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<bool> fatal_{false};
  std::atomic<bool> swap_pending_{false};
};

}  // namespace vigil::sinks

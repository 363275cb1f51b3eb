// The producing side of the load generator: events into the input topic, delivery reports
// counted.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "kafka_handles.h"

namespace vigil::loadgen {

struct DeliveryCounts {
  uint64_t enqueued = 0;  // accepted by librdkafka
  uint64_t acked = 0;     // acknowledged by the brokers (acks=all)
  uint64_t failed = 0;    // delivery failed for good (or purged at shutdown)
  uint64_t in_flight() const { return enqueued - acked - failed; }
};

// An idempotent, lz4-compressing producer (linger.ms=5, acks=all) for one topic. Used only by
// the thread that creates it: send(), poll() and flush() serve the delivery-report callback on
// the calling thread, so the counters need no lock.
class EventProducer {
 public:
  // Connects to `bootstrap` and waits until `deadline` for `topic` to exist.
  static Result<std::unique_ptr<EventProducer>> create(const std::string& bootstrap,
                                                       const std::string& topic,
                                                       const Properties& overrides,
                                                       Deadline deadline);
  ~EventProducer();
  EventProducer(const EventProducer&) = delete;
  EventProducer& operator=(const EventProducer&) = delete;

  int partitions() const { return partitions_; }

  // Enqueues one event (librdkafka copies key and value). When librdkafka's queue is full it
  // serves delivery reports and retries, so it blocks at most until there is room. Returns
  // false when the event was not enqueued: a stop was requested meanwhile or librdkafka
  // refused it (the reason is printed once).
  bool send(const std::string& key, const std::string& value);

  // Serves delivery reports, waiting up to `timeout` for one.
  void poll(std::chrono::milliseconds timeout);

  // Waits up to `timeout` for every enqueued event to be acknowledged or failed; then purges
  // what is left (counted as failed). Returns true when nothing had to be purged.
  bool flush(std::chrono::milliseconds timeout);

  const DeliveryCounts& counts() const { return counts_; }
  // The first delivery error seen, empty when none.
  const std::string& first_delivery_error() const { return first_error_; }

 private:
  EventProducer() = default;
  static void on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);

  KafkaHandle rk_;
  rd_kafka_topic_t* topic_ = nullptr;  // owned; destroyed before rk_
  int partitions_ = 0;
  DeliveryCounts counts_;
  std::string first_error_;
  bool refused_reported_ = false;
};

}  // namespace vigil::loadgen

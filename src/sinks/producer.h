// The producer seam of the delivery stage: what the stage needs of Kafka (produce scores, dead
// letters and best-effort records, delivery reports, flush, replace a failed producer), so the
// stage that decides when offsets may be committed can be driven by a scripted producer in unit
// tests (tests/support/fake_producer.h) as well as by librdkafka (KafkaSink).
//
// Messages are librdkafka's rd_kafka_message_t (key, payload, `_private` = the opaque its
// delivery report carries): the type the real producer takes without a copy.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace vigil::sinks {

// Receives every delivery report: `opaque` as given to produce_*, `err` NO_ERROR when Kafka
// acknowledged the message. `retry` is set when the message was not delivered because its
// producer failed fatally or was replaced (produce it again; it was not refused).
class DeliveryListener {
 public:
  virtual ~DeliveryListener() = default;
  virtual void on_delivery(void* opaque, rd_kafka_resp_err_t err, bool retry) = 0;
};

class Producer {
 public:
  virtual ~Producer() = default;

  // Starts serving delivery reports (a poller thread, for librdkafka).
  virtual void start() = 0;
  // Waits until the brokers answer for the output and dead-letter topics, or `timeout`, or
  // until `interrupted` returns true; the error names the last cause.
  virtual Status wait_for_brokers(std::chrono::milliseconds timeout,
                                  const std::function<bool()>& interrupted) = 0;
  // Produces `n` scores to output topic `output` (the route's: 0 is kafka.output_topic's
  // route, see kafka.routes), partitioned by key. The keys are copied; each payload is not, and
  // must stay unchanged until its message's delivery report. Each message's `_private` is its
  // opaque. Messages that could not be queued are reported at once (on this thread) with their
  // error. May block while the producer's queue is full.
  virtual void produce_scores(size_t output, rd_kafka_message_t* messages, size_t n) = 0;
  // Produces records that carry no offsets, best effort (a full queue drops them, reported like
  // a refusal): shadow scores to the shadow topic, HTTP-scored transactions to the output topic.
  enum class BestEffort { kShadow, kScores };
  virtual void produce_best_effort(BestEffort topic, rd_kafka_message_t* messages, size_t n) = 0;
  // Produces one record to the dead-letter topic with `headers` (name, value).
  virtual void produce_dead_letter(std::string_view key, std::string_view value,
                                   const std::vector<std::pair<std::string, std::string>>& headers,
                                   void* opaque) = 0;
  // Whether the producer failed fatally (replace_producer() is due).
  virtual bool fatal() const = 0;
  // Swaps in a new producer; the old one's undelivered messages are reported with `retry`.
  virtual Status replace_producer() = 0;
  // Waits until every produced record has a delivery report, or `timeout`.
  virtual bool flush(std::chrono::milliseconds timeout) = 0;
  // Flushes within `timeout`, stops reporting; what is left is reported as purged (err =
  // _PURGE_QUEUE, retry unset). Idempotent.
  virtual void stop(std::chrono::milliseconds timeout) = 0;
  // Records produced and not yet reported.
  virtual size_t in_flight() const = 0;
};

// Creates the producer that reports to `listener` (the delivery stage).
using ProducerFactory = std::function<Result<std::unique_ptr<Producer>>(DeliveryListener&)>;

}  // namespace vigil::sinks

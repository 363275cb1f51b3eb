#include "kafka/kafka_config.h"

#include <stdexcept>
#include <string>

namespace vigil::kafka {

std::vector<std::string> KafkaConfig::validate() const {
  std::vector<std::string> e;
  if (!enabled) return e;
  if (brokers.empty()) e.push_back("kafka.brokers must be 'embedded' or host:port,...");
  if (is_embedded()) {
    if (embedded.brokers < 1 || embedded.brokers > 16) {
      e.push_back("kafka.embedded.brokers must be within [1, 16]");
    }
    if (embedded.partitions < 1 || embedded.partitions > 1024) {
      e.push_back("kafka.embedded.partitions must be within [1, 1024]");
    }
  }
  if (group_id.empty()) e.push_back("kafka.group_id must not be empty");
  if (input_topic.empty()) e.push_back("kafka.input_topic must not be empty");
  if (output_topic.empty()) e.push_back("kafka.output_topic must not be empty");
  if (dlq_topic.empty()) e.push_back("kafka.dlq_topic must not be empty");
  if (!input_topic.empty() && (input_topic == output_topic || input_topic == dlq_topic)) {
    e.push_back("kafka.input_topic must differ from kafka.output_topic and kafka.dlq_topic");
  }
  if (reports_topic.empty()) e.push_back("kafka.reports_topic must not be empty");
  if (reports_topic == input_topic || reports_topic == output_topic || reports_topic == dlq_topic) {
    e.push_back(
        "kafka.reports_topic must differ from kafka.input_topic, kafka.output_topic and "
        "kafka.dlq_topic");
  }
  if (max_event_bytes < 64 || max_event_bytes > 16 * 1024 * 1024) {
    e.push_back("kafka.max_event_bytes must be within [64, 16777216]");
  }
  if (commit_interval.count() < 10) e.push_back("kafka.commit_interval_ms must be >= 10");
  {
    size_t producer_queue = 200000;  // vigil's default queue.buffering.max.messages
    if (auto it = producer.find("queue.buffering.max.messages"); it != producer.end()) {
      try {
        producer_queue = std::stoul(it->second);
      } catch (const std::exception&) {
        e.push_back("kafka.producer.queue.buffering.max.messages '" + it->second +
                    "' is not a number");
      }
    }
    if (max_in_flight_records < 1 || max_in_flight_records >= producer_queue) {
      e.push_back("kafka.max_in_flight_records must be within [1, " +
                  std::to_string(producer_queue) +
                  ") (below the producer's queue.buffering.max.messages, so scoring workers "
                  "never wait on a full producer queue)");
    }
  }
  if (startup_timeout.count() < 1000) e.push_back("kafka.startup_timeout_ms must be >= 1000");
  // The rebalance callback implements the eager protocol (revoke everything, commit, assign):
  // a cooperative assignor would hand it incremental assignments it does not handle, and
  // librdkafka 2.0.2's cooperative-sticky has known rebalance bugs (fixed in later releases).
  if (auto it = consumer.find("partition.assignment.strategy");
      it != consumer.end() && it->second.find("cooperative") != std::string::npos) {
    e.push_back("kafka.consumer.partition.assignment.strategy '" + it->second +
                "' is not supported: vigil rebalances with an eager assignor (range or "
                "roundrobin)");
  }
  for (const auto* m : {&consumer, &producer}) {
    for (const auto& [k, v] : *m) {
      if (k == "enable.auto.offset.store" || k == "enable.auto.commit" || k == "group.id" ||
          k == "bootstrap.servers") {
        e.push_back("kafka." + std::string(m == &consumer ? "consumer." : "producer.") + k +
                    " is managed by vigil and cannot be overridden");
      }
    }
  }
  return e;
}

}  // namespace vigil::kafka

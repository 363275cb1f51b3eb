// Configuration of the Kafka side (keys kafka.*): brokers or the embedded cluster, the
// consumer group, topics, and librdkafka properties passed through as they are.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace vigil::consumers {

struct EmbeddedKafkaConfig {
  int brokers = 3;             // mock brokers in the embedded cluster
  int partitions = 6;          // partitions of each topic it creates
  std::string bootstrap_file;  // where the embedded cluster's address is written; empty = none
};

struct KafkaConfig {
  std::string brokers = "embedded";  // "embedded" or host:port,...
  EmbeddedKafkaConfig embedded;
  bool enabled = true;  // false: no Kafka at all (HTTP only)
  std::string group_id = "vigil";
  std::string input_topic = "transactions";
  std::string output_topic = "scores";
  std::string dlq_topic = "transactions.dlq";
  std::string shadow_topic = "scores.shadow";
  size_t max_event_bytes = 65536;  // larger records go to the DLQ as too_large
  std::chrono::milliseconds commit_interval{100};
  // How long start-up retries unreachable brokers (the HTTP side-port is up meanwhile and
  // /ready fails) before vigil gives up and exits.
  std::chrono::milliseconds startup_timeout{120000};
  std::map<std::string, std::string> consumer;  // kafka.consumer.* passthrough
  std::map<std::string, std::string> producer;  // kafka.producer.* passthrough

  bool is_embedded() const { return brokers == "embedded"; }
  std::vector<std::string> validate() const;
};

}  // namespace vigil::consumers

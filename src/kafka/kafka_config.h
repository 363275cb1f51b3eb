// Configuration of the Kafka side (keys kafka.*): brokers or the embedded cluster, the
// consumer group, topics, and librdkafka properties passed through as they are.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace vigil::kafka {

struct EmbeddedKafkaConfig {
  int brokers = 3;
  int partitions = 6;
  std::string bootstrap_file;

  template <typename V>
  void fields(V& v) {
    v("brokers", brokers, "brokers", "brokers of the embedded cluster");
    v("partitions", partitions, "partitions", "partitions of each topic it creates");
    v("bootstrap_file", bootstrap_file, "",
      "file the embedded cluster's bootstrap address is written to; empty = none");
  }
};

// One input topic and the model that scores it: kafka.input_topic by model.name (route 0,
// group <group_id>), then each of kafka.routes (group <group_id>.<topic>).
struct Route {
  std::string input_topic;
  std::string model;         // empty: model.name (the default model)
  std::string output_topic;  // where its scores go
  std::string group_id;      // its consumer group
};

struct KafkaConfig {
  std::string brokers = "embedded";
  EmbeddedKafkaConfig embedded;
  bool enabled = true;  // false: no Kafka at all (HTTP only)
  std::string group_id = "vigil";
  std::string input_topic = "transactions";
  std::string output_topic = "scores";
  std::string dlq_topic = "transactions.dlq";
  std::string shadow_topic = "scores.shadow";
  std::string reports_topic = "fraud.reports";
  // More input topics, each scored by its own model: "topic=model[:output_topic],...".
  std::string routes;
  size_t max_event_bytes = 65536;  // larger records go to the DLQ as too_large
  std::chrono::milliseconds commit_interval{100};
  // Records consumed and not yet delivered (scoring queue, workers, producer) at most: above
  // it the consumer pauses its partitions (and keeps polling), so a slow or unreachable
  // broker fills neither memory nor the producer's queue, and scoring workers never wait on
  // a full producer queue (HTTP scoring goes on during a broker outage).
  size_t max_in_flight_records = 100000;
  // How long start-up retries unreachable brokers (the HTTP side-port is up meanwhile and
  // /ready fails) before vigil gives up and exits.
  std::chrono::milliseconds startup_timeout{120000};
  // kafka.consumer.* / kafka.producer.*: librdkafka properties passed through as they are.
  // The consumer's failover settings ship as defaults: a replica that dies stops heartbeating
  // and its partitions move to the others after session.timeout.ms; librdkafka's default
  // (45 s) would leave them unscored that long. Shorter detects a crash sooner but evicts a
  // replica cut off from its coordinator that long (docs/operations.md).
  std::map<std::string, std::string> consumer = {{"session.timeout.ms", "6000"},
                                                 {"heartbeat.interval.ms", "1500"}};
  std::map<std::string, std::string> producer;

  bool is_embedded() const { return brokers == "embedded"; }
  std::vector<std::string> validate() const;
  // Every route, the default one (kafka.input_topic, model.name, kafka.output_topic) first,
  // then kafka.routes' in their order. Malformed entries of kafka.routes are left out (and
  // named by validate()).
  std::vector<Route> all_routes() const;

  template <typename V>
  void fields(V& v) {
    v("enabled", enabled, "", "consume from Kafka (false = HTTP only)");
    v("brokers", brokers, "", "'embedded' (in-process mock cluster) or host:port,...");
    v.section("embedded", embedded);
    v("group_id", group_id, "", "consumer group");
    v("input_topic", input_topic, "", "topic of incoming transactions");
    v("output_topic", output_topic, "", "topic scores are written to (key = transaction id)");
    v("dlq_topic", dlq_topic, "", "dead-letter topic for events that cannot be scored");
    v("shadow_topic", shadow_topic, "",
      "topic of shadow scores (model.shadow_version), key = transaction id");
    v("reports_topic", reports_topic, "",
      "topic of confirmed fraud reports, read (as group <group_id>.reports) when the model "
      "takes terminal risk features");
    v("routes", routes, "",
      "more input topics, each scored by a model served (model.name or model.also_serve): "
      "'topic=model[:output_topic],...'; each is consumed as group <group_id>.<topic>, its "
      "scores go to output_topic (default kafka.output_topic), its dead letters to "
      "kafka.dlq_topic; empty = kafka.input_topic alone");
    v("max_event_bytes", max_event_bytes, "bytes",
      "larger records go to the dead-letter topic (too_large)");
    v("commit_interval_ms", commit_interval, "ms", "how often delivered offsets are committed");
    v("max_in_flight_records", max_in_flight_records, "records",
      "records consumed but not yet delivered at most; above it the consumer pauses (and keeps "
      "polling) until half are delivered. Must stay below the producer's "
      "queue.buffering.max.messages (200000)");
    v("startup_timeout_ms", startup_timeout, "ms",
      "how long start-up retries unreachable brokers before exiting (/ready fails meanwhile)");
    v.passthrough("consumer", consumer,
                  "passed to the librdkafka consumer as is; the failover settings "
                  "(session.timeout.ms, heartbeat.interval.ms) ship as defaults, see "
                  "docs/operations.md");
    v.passthrough("producer", producer, "passed to the librdkafka producer as is");
  }
};

}  // namespace vigil::kafka

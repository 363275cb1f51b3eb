#include "kafka/kafka_config.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "common/comma_list.h"

namespace vigil::kafka {

namespace {

// Kafka's topic names: [a-zA-Z0-9._-], at most 249 characters.
bool is_topic_name(const std::string& t) {
  if (t.empty() || t.size() > 249 || t == "." || t == "..") return false;
  return std::all_of(t.begin(), t.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// kafka.routes' entries, with an error for each malformed one (`errors` may be null).
std::vector<Route> parse_routes(const KafkaConfig& c, std::vector<std::string>* errors) {
  std::vector<Route> routes;
  for (const std::string& entry : split_commas(c.routes)) {
    auto bad = [&](const std::string& why) {
      if (errors) errors->push_back("kafka.routes: '" + entry + "' " + why);
    };
    const size_t eq = entry.find('=');
    if (eq == std::string::npos) {
      bad("is not topic=model[:output_topic]");
      continue;
    }
    Route r;
    r.input_topic = trimmed(entry.substr(0, eq));
    const std::string rest = entry.substr(eq + 1);
    const size_t colon = rest.find(':');
    r.model = trimmed(rest.substr(0, colon));
    r.output_topic = colon == std::string::npos ? c.output_topic : trimmed(rest.substr(colon + 1));
    r.group_id = c.group_id + "." + r.input_topic;
    if (!is_topic_name(r.input_topic)) {
      bad("does not start with a topic name ([a-zA-Z0-9._-])");
    } else if (r.model.empty() || r.model.find_first_of("/\\ =:") != std::string::npos) {
      bad("does not name a model after '='");
    } else if (!is_topic_name(r.output_topic)) {
      bad("has no valid output topic after ':'");
    } else {
      routes.push_back(std::move(r));
    }
  }
  return routes;
}

}  // namespace

std::vector<Route> KafkaConfig::all_routes() const {
  std::vector<Route> routes{{input_topic, "", output_topic, group_id}};
  for (Route& r : parse_routes(*this, nullptr)) routes.push_back(std::move(r));
  return routes;
}

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
  {
    // A route's input must be no other route's input and no topic vigil writes: scores read
    // back as transactions would loop.
    auto among = [](const std::vector<std::string>& topics, const std::string& t) {
      return std::find(topics.begin(), topics.end(), t) != topics.end();
    };
    const std::vector<std::string> side{dlq_topic, shadow_topic, reports_topic};
    const std::vector<Route> extra = parse_routes(*this, &e);
    std::vector<std::string> route_outputs;
    for (const Route& r : extra) route_outputs.push_back(r.output_topic);
    std::vector<std::string> inputs{input_topic};
    for (const Route& r : extra) {
      const std::string name = "kafka.routes: '" + r.input_topic + "'";
      if (among(side, r.output_topic)) {
        e.push_back(name + "'s output '" + r.output_topic +
                    "' is the dead-letter, shadow or reports topic");
      }
      if (r.input_topic == "reports") {
        e.push_back(name + " would be consumed as group <group_id>.reports, the fraud reports'");
      }
      if (among(inputs, r.input_topic)) {
        e.push_back(name + " is consumed twice (kafka.input_topic or another route)");
      } else if (r.input_topic == output_topic || among(route_outputs, r.input_topic) ||
                 among(side, r.input_topic)) {
        e.push_back(name +
                    " is a topic vigil writes (an output, dead-letter, shadow or reports topic)");
      }
      inputs.push_back(r.input_topic);
    }
    if (among(route_outputs, input_topic)) {
      e.push_back("kafka.routes: kafka.input_topic '" + input_topic + "' is a route's output");
    }
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

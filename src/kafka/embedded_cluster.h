// The embedded Kafka: librdkafka's mock cluster (rdkafka_mock.h) running inside the process
// on loopback TCP ports, so vigil runs and is tested without a broker installation, and
// outside clients (kcat, vigil-loadgen, another vigil) can connect to its bootstrap address.
//
// It lives on a dedicated client handle that does nothing else. Known limits of the mock in
// librdkafka 2.0.2: each partition keeps only ~5 MiB / 100,000 message sets and silently
// drops the oldest; a rebalance waits about session.timeout.ms; no SSL/SASL; transactions are
// not real. Fine for development, demos and tests; production uses real brokers.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "kafka/kafka_client.h"

struct rd_kafka_mock_cluster_s;

namespace vigil::kafka {

struct TopicSpec {
  std::string name;
  int partitions = 6;
};

class EmbeddedCluster {
 public:
  // Starts `brokers` mock brokers and creates `topics`.
  static Result<std::unique_ptr<EmbeddedCluster>> start(int brokers,
                                                        const std::vector<TopicSpec>& topics);
  ~EmbeddedCluster();
  EmbeddedCluster(const EmbeddedCluster&) = delete;
  EmbeddedCluster& operator=(const EmbeddedCluster&) = delete;

  const std::string& bootstrap() const { return bootstrap_; }
  Status create_topic(const TopicSpec& topic);
  // For fault tests: take a broker down or bring it back (1-based broker id).
  Status set_broker_down(int broker_id, bool down);
  rd_kafka_mock_cluster_s* mock() { return mock_; }

 private:
  EmbeddedCluster(Handle handle, rd_kafka_mock_cluster_s* mock);
  Handle handle_;
  rd_kafka_mock_cluster_s* mock_;
  std::string bootstrap_;
};

}  // namespace vigil::kafka

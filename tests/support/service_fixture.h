// The base of the in-process integration tests: an embedded Kafka cluster (3 brokers) with the
// test's topics, a real redis-server, and the reference data; plus starting a Service on them.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "app/service.h"
#include "kafka/embedded_cluster.h"
#include "support/kafka_test_util.h"
#include "support/redis_server.h"
#include "support/service_config.h"

namespace vigil::testing {

class ServiceFixture : public ::testing::Test {
 protected:
  // Call from SetUp(); ASSERTs, so check HasFatalFailure() after it when more follows.
  void start_cluster_and_redis(const std::vector<kafka::TopicSpec>& topics) {
    auto cluster = kafka::EmbeddedCluster::start(3, topics);
    ASSERT_TRUE(cluster.ok()) << cluster.error();
    cluster_ = std::move(cluster.value());
    auto redis = RedisServer::Start();
    ASSERT_TRUE(redis.ok()) << redis.error();
    redis_ = std::move(redis.value());
    ref_ = load_reference();
  }

  // The starting configuration on this cluster and Redis (support/service_config.h).
  config::AppConfig base_config() const {
    return service_config(cluster_->bootstrap(), redis_->url());
  }

  std::unique_ptr<app::Service> start_service(const config::AppConfig& c,
                                              app::Service::Options options = {}) {
    auto s = app::Service::create(c, std::move(options));
    EXPECT_TRUE(s.ok()) << s.error();
    return s.ok() ? std::move(s.value()) : nullptr;
  }

  std::unique_ptr<kafka::EmbeddedCluster> cluster_;
  std::unique_ptr<RedisServer> redis_;
  ReferenceData ref_;
};

}  // namespace vigil::testing

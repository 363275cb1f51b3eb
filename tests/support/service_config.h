// The Service configuration that in-process integration tests and stream_bench start from:
// the repository's model on CPU, the given brokers and Redis, HTTP off, the short group
// timers every member of a group must share on librdkafka 2.0.2's mock, and the embedded
// default's 1 ms fetch wait (the mock holds an empty fetch for the whole wait).
#pragma once

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <string>

#include "config/app_config.h"

namespace vigil::testing {

inline config::AppConfig service_config(const std::string& bootstrap,
                                        const std::string& redis_url) {
  config::AppConfig c;
  c.model.repository = std::string(VIGIL_SOURCE_DIR) + "/models";
  c.model.device = "cpu";
  c.recommend.model = "";  // /recommend has its own tests (tests/recommend)
  c.kafka.brokers = bootstrap;
  c.kafka.consumer["session.timeout.ms"] = "6000";
  c.kafka.consumer["heartbeat.interval.ms"] = "500";
  c.kafka.consumer["fetch.wait.max.ms"] = "1";
  c.redis.url = redis_url;
  // VIGIL_TEST_KAFKA_DEBUG=topic,fetch,...: librdkafka's debug contexts, logged at debug level,
  // to trace a failure of a test.
  if (const char* contexts = std::getenv("VIGIL_TEST_KAFKA_DEBUG")) {
    c.kafka.consumer["debug"] = contexts;
    spdlog::set_level(spdlog::level::debug);
  }
  c.http.enabled = false;
  return c;
}

// The side-port on for a test: loopback, an ephemeral port (read it from Service::http_port()).
inline void enable_test_http(config::AppConfig& c) {
  c.http.enabled = true;
  c.http.port = 0;
  c.http.address = "127.0.0.1";
}

}  // namespace vigil::testing

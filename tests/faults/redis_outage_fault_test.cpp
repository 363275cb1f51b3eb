// Redis killed in the middle of the stream and restarted: Kafka scoring never stops, readiness
// and metrics show the degraded cache, skipped writes are counted, and every score delivered
// after Redis came back is in Redis.
#include <gtest/gtest.h>

#include <chrono>
#include <tuple>

#include "faults/fault_fixture.h"
#include "kafka/embedded_cluster.h"
#include "support/redis_server.h"
#include "support/wait.h"

namespace vigil::faults {
namespace {

constexpr size_t kEvents = 36000;
constexpr double kRate = 3000;  // events/s: the stream lasts 12 s
constexpr double kKillAfter = 5000;
constexpr double kScoredWhileDown = 3000;

int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_F(FaultTest, RedisKilledMidStreamAndRestartedKafkaScoringNeverStops) {
  auto cluster = kafka::EmbeddedCluster::start(
      3, {{"transactions", 12}, {"scores", 12}, {"transactions.dlq", 12}});
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  auto redis = testing::RedisServer::Start();
  ASSERT_TRUE(redis.ok()) << redis.error();
  const std::string bootstrap = (*cluster)->bootstrap();
  const Records events = make_events(ref_, "r-", 0, kEvents);

  VigilOptions options;
  options.bootstrap = bootstrap;
  options.redis_url = (*redis)->url();
  options.extra_flags = {"--redis.reconnect_backoff_max_ms=500", "--redis.ttl_s=3600"};
  auto vigil = start_vigil("vigil", options);
  ASSERT_NE(vigil, nullptr);
  ASSERT_TRUE(testing::wait_until([&] { return vigil->ready(); }, milliseconds(60000)))
      << vigil->get("/ready").second << "\n"
      << vigil->log_tail();
  PacedProducer producer(bootstrap, "transactions", events, kRate);
  ASSERT_TRUE(testing::wait_until([&] { return vigil->scores_delivered() >= kKillAfter; },
                                  milliseconds(60000)));

  (*redis)->kill();
  const size_t produced_at_kill = producer.produced();
  // Degraded: /ready names Redis (whether or not that fails readiness: Redis is a cache),
  // and the connection gauge drops to 0.
  int ready_status = 0;
  std::string ready_body;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        std::tie(ready_status, ready_body) = vigil->get("/ready");
        return ready_body.find("redis") != std::string::npos;
      },
      milliseconds(15000)))
      << ready_body;
  EXPECT_EQ(vigil->metric("vigil_redis_connected"), 0.0);
  // Kafka scoring goes on without Redis.
  const double scored_at_kill = vigil->scores_delivered();
  EXPECT_TRUE(testing::wait_until(
      [&] { return vigil->scores_delivered() >= scored_at_kill + kScoredWhileDown; },
      milliseconds(30000)))
      << "scoring stalled while Redis was down: " << vigil->scores_delivered();
  const double skipped =
      vigil->metric_or_zero("vigil_redis_skipped_total{reason=\"unavailable\"}") +
      vigil->metric_or_zero("vigil_redis_skipped_total{reason=\"queue_full\"}");
  const double failed = vigil->metric_or_zero("vigil_redis_write_failures_total");
  EXPECT_GT(skipped + failed, 0.0) << "writes while Redis was down were not counted";

  ASSERT_TRUE((*redis)->restart().ok()) << (*redis)->log_tail();
  ASSERT_TRUE(testing::wait_until([&] { return vigil->metric("vigil_redis_connected") == 1.0; },
                                  milliseconds(15000)))
      << vigil->log_tail();
  // Every score published from now on must reach Redis (scored_at_ms is taken just before
  // the score is published to the Redis sink, which is connected by now).
  const int64_t back_at_ms = wall_clock_ms();
  const size_t produced_at_back = producer.produced();
  EXPECT_LT(produced_at_back, kEvents) << "Redis came back after the stream ended";
  EXPECT_TRUE(testing::wait_until([&] { return vigil->ready(); }, milliseconds(15000)));

  ASSERT_TRUE(producer.wait_done(milliseconds(60000)).ok());
  TopicWatcher watcher(bootstrap, "scores");
  EXPECT_TRUE(watcher.wait_for_keys([](size_t n) { return n >= kEvents; }, milliseconds(120000)))
      << watcher.distinct_keys() << " of " << kEvents << " scored";
  // Redis writes are asynchronous: the graceful stop flushes them.
  stop_all({vigil.get()});

  auto scores = read_all(bootstrap, "scores");
  ASSERT_TRUE(scores.ok()) << scores.error();
  auto client = testing::RedisClient::Connect(**redis);
  ASSERT_TRUE(client.ok()) << client.error();
  size_t expected_in_redis = 0, in_redis = 0;
  std::string first_absent;
  for (const auto& r : *scores) {
    if (testing::json_number(r.value, "scored_at_ms") <= static_cast<double>(back_at_ms)) continue;
    ++expected_in_redis;
    auto v = client->get("vigil:score:" + r.key);
    if (v.ok() && v->has_value()) {
      ++in_redis;
    } else if (first_absent.empty()) {
      first_absent = r.key;
    }
  }
  std::printf(
      "[ faults ] Redis killed: %zu of %zu events produced at the kill, %zu when it was "
      "back; /ready during the outage: %d %s; writes skipped %.0f, failed %.0f; scores "
      "after its return in Redis: %zu of %zu\n",
      produced_at_kill, kEvents, produced_at_back, ready_status, ready_body.c_str(), skipped,
      failed, in_redis, expected_in_redis);
  EXPECT_GT(expected_in_redis, 0u);
  EXPECT_EQ(in_redis, expected_in_redis) << "first absent: " << first_absent;

  Tally t = tally("Redis killed mid-stream and restarted", bootstrap, events);
  expect_every_input_scored(t, kEvents);
}

}  // namespace
}  // namespace vigil::faults

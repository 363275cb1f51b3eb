// Two replicas in one group with the failover settings config/vigil.yaml ships (consumer
// session.timeout.ms and heartbeat.interval.ms); one is killed with kill -9 mid-stream. The
// survivor must take over the dead replica's partitions once the session times out and the
// group has rebalanced, and no transaction may go missing. The time from the kill to the takeover
// is the scoring gap of those partitions; it is printed.
//
// VIGIL_FAILOVER_SESSION_TIMEOUT_MS=45000 runs the same test with another session timeout
// (45 s is librdkafka's default) to measure its gap; the stream lasts long enough for it.
#include <gtest/gtest.h>

#include <cstdlib>

#include "config/app_config.h"
#include "faults/fault_fixture.h"
#include "kafka/embedded_cluster.h"
#include "support/wait.h"

namespace vigil::faults {
namespace {

using steady = std::chrono::steady_clock;

constexpr int kPartitions = 12;
constexpr double kRate = 1000;  // events/s
constexpr double kKillAfter = 4000;

// The consumer failover settings of the shipped config/vigil.yaml, overridden by the
// environment variable above.
std::map<std::string, std::string> failover_settings() {
  config::CommandLine cmd;
  auto shipped = config::load_config(
      {"--config", std::string(VIGIL_SOURCE_DIR) + "/config/vigil.yaml"}, {}, cmd);
  EXPECT_TRUE(shipped.ok()) << shipped.error();
  std::map<std::string, std::string> s;
  if (!shipped.ok()) return s;
  for (const char* key : {"session.timeout.ms", "heartbeat.interval.ms"}) {
    auto it = shipped->kafka.consumer.find(key);
    EXPECT_NE(it, shipped->kafka.consumer.end()) << "config/vigil.yaml ships no " << key;
    if (it != shipped->kafka.consumer.end()) s[key] = it->second;
  }
  if (const char* override_ms = std::getenv("VIGIL_FAILOVER_SESSION_TIMEOUT_MS")) {
    s["session.timeout.ms"] = override_ms;
  }
  return s;
}

TEST_F(FaultTest, ReplicaKilledMidStreamSurvivorTakesOverWithinTheSessionTimeout) {
  const auto settings = failover_settings();
  ASSERT_EQ(settings.size(), 2u);
  const milliseconds session(std::stoll(settings.at("session.timeout.ms")));
  // The stream outlasts the takeover by ~20 s, so the survivor scores live traffic after it.
  const size_t events_n = static_cast<size_t>(kRate * (session.count() / 1000.0 + 25));

  auto cluster = kafka::EmbeddedCluster::start(
      3,
      {{"transactions", kPartitions}, {"scores", kPartitions}, {"transactions.dlq", kPartitions}});
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  const std::string bootstrap = (*cluster)->bootstrap();
  const Records events = make_events(ref_, "f-", 0, events_n);
  VigilOptions options;
  options.bootstrap = bootstrap;
  // Every member of the group has the same settings: the mock applies the newest member's
  // session timeout to the whole group.
  for (const auto& [k, v] : settings)
    options.extra_flags.push_back("--kafka.consumer." + k + "=" + v);

  auto a = start_vigil("a", options);
  auto b = start_vigil("b", options);
  ASSERT_TRUE(a && b);
  const std::string assigned = "vigil_kafka_assigned_partitions";
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return a->ready() && b->ready() &&
               a->metric_or_zero(assigned) + b->metric_or_zero(assigned) == kPartitions;
      },
      milliseconds(120000)))
      << a->get("/ready").second << b->get("/ready").second;

  PacedProducer producer(bootstrap, "transactions", events, kRate);
  ASSERT_TRUE(testing::wait_until(
      [&] { return a->scores_delivered() + b->scores_delivered() >= kKillAfter; },
      milliseconds(60000)));
  const double b_partitions = b->metric_or_zero(assigned);
  const size_t produced_at_kill = producer.produced();
  const auto killed_at = steady::now();
  EXPECT_EQ(b->process().kill().signal, SIGKILL);

  ASSERT_TRUE(testing::wait_until([&] { return a->metric_or_zero(assigned) == kPartitions; },
                                  session + milliseconds(60000)))
      << a->log_tail();
  const double takeover_s = std::chrono::duration<double>(steady::now() - killed_at).count();
  std::printf(
      "[ faults ] failover (session.timeout.ms=%s, heartbeat.interval.ms=%s): replica killed "
      "with kill -9 after %zu of %zu events; the survivor took over its %.0f partitions "
      "%.1f s after the kill (the scoring gap of those partitions)\n",
      settings.at("session.timeout.ms").c_str(), settings.at("heartbeat.interval.ms").c_str(),
      produced_at_kill, events_n, b_partitions, takeover_s);
  EXPECT_LT(produced_at_kill, events_n) << "the kill did not land mid-stream";
  // The mock notices the expired session within 1 s, then holds the rebalance that follows
  // for session.timeout.ms - 1 s whoever has rejoined (rdkafka_mock_cgrp.c); a real broker
  // completes it as soon as the survivors have rejoined (about one heartbeat).
  EXPECT_LT(takeover_s, 2 * session.count() / 1000.0 + 2.0);

  ASSERT_TRUE(producer.wait_done(milliseconds(120000)).ok());
  TopicWatcher watcher(bootstrap, "scores");
  EXPECT_TRUE(watcher.wait_for_keys([&](size_t n) { return n >= events_n; }, milliseconds(120000)))
      << watcher.distinct_keys() << " of " << events_n << " scored";
  stop_all({a.get()});

  Tally t = tally("failover: one of two replicas killed with kill -9", bootstrap, events);
  expect_every_input_scored(t, events_n);
  // Duplicates are allowed: the killed replica's records delivered after its last commit.
}

}  // namespace
}  // namespace vigil::faults

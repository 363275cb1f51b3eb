// Three vigil processes in one consumer group on a 12-partition topic; mid-stream one is
// stopped (SIGTERM) and a fourth joins. The partitions move twice under traffic; no
// transaction may go missing.
#include <gtest/gtest.h>

#include "faults/fault_fixture.h"
#include "kafka/embedded_cluster.h"
#include "support/wait.h"

namespace vigil::faults {
namespace {

constexpr size_t kEvents = 40000;
constexpr double kRate = 2000;  // events/s: the stream lasts 20 s
constexpr double kChangeAfter = 8000;

double total_scores(const std::vector<VigilProcess*>& vigils) {
  double n = 0;
  for (auto* v : vigils) n += v->scores_delivered();
  return n;
}

TEST_F(FaultTest, ThreeInstancesOneStoppedAnotherJoiningMidStreamLoseNothing) {
  auto cluster = kafka::EmbeddedCluster::start(
      3, {{"transactions", 12}, {"scores", 12}, {"transactions.dlq", 12}});
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  const std::string bootstrap = (*cluster)->bootstrap();
  const Records events = make_events(ref_, "g-", 0, kEvents);
  VigilOptions options;
  options.bootstrap = bootstrap;  // Redis disabled: /ready is about Kafka only

  auto a = start_vigil("a", options);
  auto b = start_vigil("b", options);
  auto c = start_vigil("c", options);
  ASSERT_TRUE(a && b && c);
  // Ready = has partitions: all three share the 12.
  ASSERT_TRUE(testing::wait_until([&] { return a->ready() && b->ready() && c->ready(); },
                                  milliseconds(60000)))
      << a->get("/ready").second << b->get("/ready").second << c->get("/ready").second;
  const std::string assigned = "vigil_kafka_assigned_partitions";
  std::printf("[ faults ] group of three: partitions %.0f/%.0f/%.0f\n", a->metric_or_zero(assigned),
              b->metric_or_zero(assigned), c->metric_or_zero(assigned));

  PacedProducer producer(bootstrap, "transactions", events, kRate);
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return total_scores({a.get(), b.get(), c.get()}) >= kChangeAfter;
      },
      milliseconds(60000)));
  const size_t produced_at_change = producer.produced();
  ASSERT_TRUE(b->process().sigterm().ok());
  auto d = start_vigil("d", options);
  ASSERT_NE(d, nullptr);
  auto b_exit = b->process().wait(milliseconds(30000));
  ASSERT_TRUE(b_exit.has_value()) << b->log_tail();
  EXPECT_TRUE(b_exit->ok()) << b_exit->to_string() << "\n" << b->log_tail();
  ASSERT_TRUE(testing::wait_until([&] { return d->ready(); }, milliseconds(60000)))
      << d->get("/ready").second << "\n"
      << d->log_tail();
  const size_t produced_at_joined = producer.produced();
  std::printf(
      "[ faults ] after the change: partitions a %.0f, c %.0f, d %.0f; %zu of %zu events "
      "produced at the stop, %zu when d had partitions\n",
      a->metric_or_zero(assigned), c->metric_or_zero(assigned), d->metric_or_zero(assigned),
      produced_at_change, kEvents, produced_at_joined);
  EXPECT_LT(produced_at_change, kEvents) << "the change did not land mid-stream";

  ASSERT_TRUE(producer.wait_done(milliseconds(60000)).ok());
  TopicWatcher watcher(bootstrap, "scores");
  EXPECT_TRUE(watcher.wait_for_keys([](size_t n) { return n >= kEvents; }, milliseconds(120000)))
      << watcher.distinct_keys() << " of " << kEvents << " scored";
  EXPECT_GT(d->scores_delivered(), 0.0) << "the joining instance scored nothing";
  stop_all({a.get(), c.get(), d.get()});

  Tally t = tally("3 instances, one stopped, one joining mid-stream", bootstrap, events);
  expect_every_input_scored(t, kEvents);
  // Duplicates are allowed (a revoke waits at most 5 s for in-flight records) and counted.
}

}  // namespace
}  // namespace vigil::faults

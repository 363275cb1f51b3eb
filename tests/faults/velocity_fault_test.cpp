// vigil serving fraud_velocity (velocity features computed in the stream) killed with
// kill -9 mid-stream, then restarted: every raw transaction is scored, and every score -
// the first emission and the replayed ones alike - carries the features a brute-force
// reference computes from the log. The restarted vigil rebuilt each partition's history from
// the first one's Redis snapshot and the log after it, up to the committed offset, so what
// it scores again comes out the same.
#include <gtest/gtest.h>

#include <csignal>

#include "faults/fault_fixture.h"
#include "features/feature_spec.h"
#include "kafka/embedded_cluster.h"
#include "support/redis_server.h"
#include "support/velocity_data.h"
#include "support/wait.h"

namespace vigil::faults {
namespace {

constexpr size_t kEvents = 20000;
constexpr double kRate = 4000;        // events/s: the stream lasts 5 s
constexpr double kFaultAfter = 6000;  // scores delivered by the first vigil

TEST_F(FaultTest, KillNineMidStreamWithVelocityFeaturesRescoresReplayedTransactionsIdentically) {
  auto cluster = kafka::EmbeddedCluster::start(
      3, {{"transactions", 12}, {"scores", 12}, {"transactions.dlq", 12}});
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  auto spec = features::load_feature_spec(std::string(VIGIL_SOURCE_DIR) +
                                          "/models/fraud_velocity/features.yaml");
  ASSERT_TRUE(spec.ok()) << spec.error();
  auto redis = testing::RedisServer::Start();
  ASSERT_TRUE(redis.ok()) << redis.error();
  VigilOptions options;
  options.bootstrap = (*cluster)->bootstrap();
  options.redis_url = (*redis)->url();
  options.model_name = "fraud_velocity";
  options.extra_flags = {"--features.snapshot.interval_s=1"};
  // 400 customers over 40 days: about 50 transactions each, their 30-day windows full.
  const auto txs = testing::make_raw_transactions(kEvents, 400, 40, 7, "kv-");

  auto first = start_vigil("first", options);
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(testing::wait_until([&] { return first->ready(); }, milliseconds(60000)))
      << first->log_tail();
  PacedProducer producer((*cluster)->bootstrap(), "transactions",
                         testing::keyed_by_customer(txs, 0, txs.size()), kRate);
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const double delivered = first->scores_delivered();
        return delivered >= kFaultAfter ||
               (delivered > 0 && producer.produced() >= kEvents * 3 / 5);
      },
      milliseconds(60000)))
      << first->log_tail();
  const size_t produced_at_fault = producer.produced();
  const testing::ExitStatus st = first->process().kill();
  EXPECT_EQ(st.signal, SIGKILL) << st.to_string();
  EXPECT_LT(produced_at_fault, kEvents) << "the fault did not land mid-stream";

  auto second = start_vigil("second", options);
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(producer.wait_done(milliseconds(60000)).ok());
  TopicWatcher watcher((*cluster)->bootstrap(), "scores");
  EXPECT_TRUE(watcher.wait_for_keys([&](size_t k) { return k >= kEvents; }, milliseconds(120000)))
      << watcher.distinct_keys() << " of " << kEvents << " scored; second vigil log:\n"
      << second->log_tail();
  const double replayed = second->metric_or_zero("vigil_features_replayed_total");
  const double restored =
      second->metric_or_zero("vigil_features_snapshot_loads_total{outcome=\"restored\"}");
  stop_all({second.get()});

  auto scores = read_all((*cluster)->bootstrap(), "scores");
  ASSERT_TRUE(scores.ok()) << scores.error();
  double worst = 0;
  const size_t checked =
      testing::check_feature_records(*scores, txs, spec->output_names(), spec->hash(), &worst);
  EXPECT_EQ(checked, scores->size()) << "every score record is of an input";
  EXPECT_GT(replayed, 0) << "the restarted vigil replayed no history";
  EXPECT_GT(restored, 0) << "no partition's snapshot was loaded";
  Records inputs;
  for (const auto& t : txs) inputs.emplace_back(t.id, t.id);  // tallied by transaction id
  Tally t = tally("kill -9 with velocity features", (*cluster)->bootstrap(), inputs);
  expect_every_input_scored(t, kEvents);
  std::printf(
      "[ faults ] kill -9 with velocity features: fault after %zu of %zu produced; the second "
      "vigil loaded %.0f of 12 partitions' snapshots and replayed %.0f records to rebuild "
      "history; %zu score records (%zu scored again) all equal to the reference, worst "
      "relative error %.2e\n",
      produced_at_fault, kEvents, restored, replayed, checked, t.duplicates, worst);
}

}  // namespace
}  // namespace vigil::faults

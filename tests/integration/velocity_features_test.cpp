// Velocity features end to end, in-process: raw transactions keyed by customer through the
// embedded Kafka, the real Service (consumer, StreamFeatures, batcher, delivery to Kafka and
// Redis), a model of the spec's features. Every score's features are checked against a
// brute-force reference computed from the produced log (support/velocity_data.h),
// independently of src/features.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "app/service.h"
#include "features/entity_windows.h"
#include "features/feature_spec.h"
#include "support/fake_model.h"
#include "support/kafka_test_util.h"
#include "support/redis_server.h"
#include "support/service_fixture.h"
#include "support/velocity_data.h"
#include "support/wait.h"

namespace vigil {
namespace {

using std::chrono::milliseconds;
using testing::RawTx;
constexpr int64_t kDayMs = 86'400'000;

class VelocityFeaturesTest : public testing::ServiceFixture {
 protected:
  void SetUp() override {
    start_cluster_and_redis({{"transactions", 4}, {"scores", 4}, {"transactions.dlq", 4}});
    if (HasFatalFailure()) return;
    spec_path_ = std::string(VIGIL_SOURCE_DIR) + "/models/fraud_velocity/features.yaml";
    auto spec = features::load_feature_spec(spec_path_);
    ASSERT_TRUE(spec.ok()) << spec.error();
    spec_ = spec.value();
  }

  config::AppConfig config() const {
    config::AppConfig c = base_config();
    c.kafka.commit_interval = milliseconds(200);
    c.scoring.workers = 1;
    return c;
  }

  std::unique_ptr<app::Service> start(
      std::chrono::seconds snapshot_interval = std::chrono::seconds(30)) {
    testing::FakeModelOptions o;
    o.input_names = spec_.output_names();
    o.feature_spec_path = spec_path_;
    o.feature_spec_hash = spec_.hash();
    config::AppConfig c = config();
    c.features.snapshot_interval = snapshot_interval;
    return start_service(c, {std::make_shared<testing::FakeModel>(o), nullptr});
  }

  void produce(const std::vector<RawTx>& txs, size_t from, size_t to) {
    ASSERT_TRUE(testing::produce_all(cluster_->bootstrap(), "transactions",
                                     testing::keyed_by_customer(txs, from, to))
                    .ok());
  }

  // Checks every score record of `txs` against the brute-force reference; returns how many.
  size_t check_scores(const std::vector<testing::TestRecord>& scores,
                      const std::vector<RawTx>& txs) {
    double worst = 0;
    const size_t checked =
        testing::check_feature_records(scores, txs, spec_.output_names(), spec_.hash(), &worst);
    std::printf(
        "[ features ] %zu score records checked against the reference, worst relative "
        "error %.2e\n",
        checked, worst);
    return checked;
  }

  // The first half of `txs` is scored by one instance, stopped after `before_stop` (once all
  // its scores are delivered); a second one scores the second half and is returned once every
  // transaction is scored once, with the reference's features: the second half's counts and
  // means reach back into the first half, which it did not score.
  std::unique_ptr<app::Service> restart_halfway(
      const std::vector<RawTx>& txs, std::chrono::seconds snapshot_interval,
      const std::function<void(app::Service&)>& before_stop) {
    const size_t half = txs.size() / 2;
    produce(txs, 0, half);
    {
      auto first = start(snapshot_interval);
      if (first == nullptr) return nullptr;
      auto scores =
          testing::read_distinct_keys(cluster_->bootstrap(), "scores", half, milliseconds(120000));
      EXPECT_EQ(scores.size(), half);
      EXPECT_TRUE(testing::wait_until([&] { return first->source()->offsets().in_flight() == 0; },
                                      milliseconds(10000)));
      before_stop(*first);
      first->stop();
    }
    produce(txs, half, txs.size());
    auto second = start(snapshot_interval);
    if (second == nullptr) return nullptr;
    auto scores = testing::read_distinct_keys(cluster_->bootstrap(), "scores", txs.size(),
                                              milliseconds(120000));
    EXPECT_EQ(scores.size(), txs.size()) << "every transaction scored once";
    EXPECT_EQ(check_scores(scores, txs), txs.size());
    EXPECT_TRUE(second->readiness_failures().empty());
    return second;
  }

  static uint64_t counter(app::Service& s, const std::string& name,
                          const metrics::Labels& labels = {}) {
    return s.registry().counter(name, "", labels).value();
  }

  std::string spec_path_;
  features::FeatureSpec spec_;
};

TEST_F(VelocityFeaturesTest,
       RawTransactionsAreScoredWithTheirCustomersHistoryOnTheTopicAndInRedis) {
  const auto txs = testing::make_raw_transactions(3000, 40, 40, 1);
  produce(txs, 0, txs.size());
  auto service = start();
  ASSERT_NE(service, nullptr);
  auto scores = testing::read_distinct_keys(cluster_->bootstrap(), "scores", txs.size(),
                                            milliseconds(120000));
  ASSERT_EQ(scores.size(), txs.size());
  EXPECT_EQ(check_scores(scores, txs), txs.size());
  // Redis holds the same record, features included.
  ASSERT_TRUE(testing::wait_until([&] { return service->redis()->stats().written() >= txs.size(); },
                                  milliseconds(30000)));
  auto client = testing::RedisClient::Connect(*redis_);
  ASSERT_TRUE(client.ok());
  for (const auto& r : {scores.front(), scores.back()}) {
    auto v = client->get("vigil:score:" + r.key);
    ASSERT_TRUE(v.ok() && v->has_value()) << r.key;
    EXPECT_EQ(**v, r.value);
  }
  service->stop();
}

TEST_F(VelocityFeaturesTest, BadRawTransactionsAreDeadLetteredWithTheReasonNamingTheField) {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const std::string t = std::to_string(now - 1000);
  std::vector<std::pair<std::string, std::string>> recs = {
      {"C1", R"({"transaction_id":"b-customer","amount":5,"event_time_ms":)" + t + "}"},
      {"C1",
       R"({"transaction_id":"b-amount","customer_id":"C1","amount":-5,"event_time_ms":)" + t + "}"},
      {"C1", R"({"transaction_id":"b-time","customer_id":"C1","amount":5})"},
      {"C1", R"({"transaction_id":"b-future","customer_id":"C1","amount":5,"event_time_ms":)" +
                 std::to_string(now + 2 * kDayMs) + "}"},
      {"C1", R"({"transaction_id":"ok","customer_id":"C1","amount":5,"event_time_ms":)" + t + "}"},
  };
  ASSERT_TRUE(testing::produce_all(cluster_->bootstrap(), "transactions", recs).ok());
  auto service = start();
  ASSERT_NE(service, nullptr);
  // Dead letters keep their record's key (the customer): read until there are four.
  auto dlq = testing::read_topic(
      cluster_->bootstrap(), "transactions.dlq",
      [](const std::vector<testing::TestRecord>& rs) { return rs.size() >= 4; },
      milliseconds(60000));
  std::map<std::string, testing::TestRecord> by_id;
  for (const auto& r : dlq) by_id[testing::json_string(r.value, "transaction_id")] = r;
  ASSERT_EQ(by_id.size(), 4u);
  EXPECT_EQ(by_id["b-customer"].headers["vigil.error"], "missing_field");
  EXPECT_NE(by_id["b-customer"].headers["vigil.error_message"].find("'customer_id'"),
            std::string::npos);
  EXPECT_EQ(by_id["b-amount"].headers["vigil.error"], "out_of_range");
  EXPECT_NE(by_id["b-amount"].headers["vigil.error_message"].find("'amount'"), std::string::npos);
  EXPECT_EQ(by_id["b-time"].headers["vigil.error"], "missing_field");
  EXPECT_NE(by_id["b-time"].headers["vigil.error_message"].find("'event_time_ms'"),
            std::string::npos);
  EXPECT_EQ(by_id["b-future"].headers["vigil.error"], "out_of_range");
  auto scores =
      testing::read_distinct_keys(cluster_->bootstrap(), "scores", 1, milliseconds(30000));
  ASSERT_EQ(scores.size(), 1u);
  EXPECT_EQ(scores[0].key, "ok");
  EXPECT_FALSE(std::isnan(testing::json_number(scores[0].value, "score")));
  service->stop();
}

TEST_F(VelocityFeaturesTest, WithoutSnapshotsARestartRebuildsHistoryFromTheWholeLog) {
  const auto txs = testing::make_raw_transactions(3000, 40, 40, 2);
  auto second = restart_halfway(txs, std::chrono::seconds(0), [](app::Service&) {});
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(counter(*second, "vigil_features_replayed_total"), 1500u);
  EXPECT_EQ(counter(*second, "vigil_features_snapshot_loads_total", {{"outcome", "none"}}), 0u)
      << "no snapshot is looked for";
  second->stop();
}

TEST_F(VelocityFeaturesTest, ARestartLoadsTheRedisSnapshotAndReplaysOnlyTheLogAfterIt) {
  const auto txs = testing::make_raw_transactions(3000, 40, 40, 4);
  auto second = restart_halfway(txs, std::chrono::seconds(1), [](app::Service& first) {
    // Two more rounds of each of the 4 partitions, so one was taken after the last commit.
    const uint64_t rounds = counter(first, "vigil_features_snapshot_rounds_total");
    EXPECT_TRUE(testing::wait_until(
        [&] { return counter(first, "vigil_features_snapshot_rounds_total") >= rounds + 8; },
        milliseconds(20000)));
    first.stop();
    EXPECT_GE(counter(first, "vigil_features_snapshot_chunks_total", {{"outcome", "written"}}),
              8u * features::EntityWindows::kShards);
  });
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(counter(*second, "vigil_features_snapshot_loads_total", {{"outcome", "restored"}}), 4u);
  EXPECT_LT(counter(*second, "vigil_features_replayed_total"), 1500u / 4)
      << "the snapshot, not the log, holds the first half";
  second->stop();
}

TEST_F(VelocityFeaturesTest, ARebalanceBetweenTwoInstancesKeepsEveryCustomersHistoryExact) {
  const auto txs = testing::make_raw_transactions(4000, 60, 40, 3);
  produce(txs, 0, 2000);
  auto first = start();
  ASSERT_NE(first, nullptr);
  ASSERT_EQ(testing::read_distinct_keys(cluster_->bootstrap(), "scores", 2000, milliseconds(120000))
                .size(),
            2000u);
  // Its first snapshot round (one per partition) is complete.
  ASSERT_TRUE(testing::wait_until(
      [&] { return counter(*first, "vigil_features_snapshot_rounds_total") >= 4; },
      milliseconds(20000)));
  // Records after that round, scored and committed: no snapshot holds them (the next round is
  // 30 s away), so whoever owns their partitions next rebuilds that history by replay.
  constexpr size_t kBeforeRebalance = 2400;
  produce(txs, 2000, kBeforeRebalance);
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return testing::committed_sum(cluster_->bootstrap(), config().kafka.group_id,
                                      "transactions", 4) == static_cast<int64_t>(kBeforeRebalance);
      },
      milliseconds(60000)));
  // A second member joins: the partitions it takes rebuild their history from the snapshot
  // and the log; the first member's, assigned again, too.
  auto second = start();
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(testing::wait_until(
      [&] { return first->source()->has_assignment() && second->source()->has_assignment(); },
      milliseconds(60000)));
  produce(txs, kBeforeRebalance, txs.size());
  auto scores = testing::read_topic(
      cluster_->bootstrap(), "scores",
      [&](const std::vector<testing::TestRecord>& rs) {
        std::set<std::string> ids;
        for (const auto& r : rs) ids.insert(r.key);
        return ids.size() >= txs.size();
      },
      milliseconds(120000));
  std::set<std::string> ids;
  for (const auto& r : scores) ids.insert(r.key);
  ASSERT_EQ(ids.size(), txs.size());
  // Records scored twice (in flight at the rebalance) carry the same features both times.
  EXPECT_EQ(check_scores(scores, txs), scores.size());
  EXPECT_GT(counter(*first, "vigil_features_replayed_total") +
                counter(*second, "vigil_features_replayed_total"),
            0u);
  // The members found the first member's snapshot.
  EXPECT_GT(counter(*first, "vigil_features_snapshot_loads_total", {{"outcome", "restored"}}) +
                counter(*second, "vigil_features_snapshot_loads_total", {{"outcome", "restored"}}),
            0u);
  second->stop();
  first->stop();
}

}  // namespace
}  // namespace vigil

// Terminal risk features in-process: the real Service (consumer, reports consumer, the Redis
// terminal state) serving a model of fraud_terminal's spec, through the embedded Kafka and a
// real redis-server. Bad fraud reports go to the dead-letter topic with their reason; with
// Redis gone the local copy serves until it is older than features.shared.max_age_ms, then
// scores say "history": "partial" and /ready says why, and nothing stops. (Two processes,
// kill -9 and the Python reference: tests/faults/terminal_fault_test.)
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <simdjson.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "app/service.h"
#include "features/feature_spec.h"
#include "support/fake_model.h"
#include "support/kafka_test_util.h"
#include "support/redis_server.h"
#include "support/service_fixture.h"
#include "support/wait.h"

namespace vigil {
namespace {

using std::chrono::milliseconds;
constexpr int64_t kDayMs = 86'400'000;

class TerminalFeaturesTest : public testing::ServiceFixture {
 protected:
  void SetUp() override {
    start_cluster_and_redis(
        {{"transactions", 2}, {"scores", 2}, {"transactions.dlq", 2}, {"fraud.reports", 2}});
    if (HasFatalFailure()) return;
    spec_path_ = std::string(VIGIL_SOURCE_DIR) + "/models/fraud_terminal/features.yaml";
    auto spec = features::load_feature_spec(spec_path_);
    ASSERT_TRUE(spec.ok()) << spec.error();
    spec_ = spec.value();
  }

  std::unique_ptr<app::Service> start(milliseconds refresh, milliseconds max_age) {
    testing::FakeModelOptions o;
    o.input_names = spec_.output_names();
    o.feature_spec_path = spec_path_;
    o.feature_spec_hash = spec_.hash();
    config::AppConfig c = base_config();
    c.scoring.workers = 1;
    c.features.shared_refresh = refresh;
    c.features.shared_max_age = max_age;
    c.redis.command_timeout = milliseconds(200);
    return start_service(c, {std::make_shared<testing::FakeModel>(o), nullptr});
  }

  static std::string tx(const std::string& id, const std::string& terminal, int64_t time_ms) {
    return R"({"transaction_id":")" + id + R"(","customer_id":"C1","terminal_id":")" + terminal +
           R"(","amount":12.5,"event_time_ms":)" + std::to_string(time_ms) + "}";
  }

  static uint64_t counter(app::Service& s, const std::string& name,
                          const metrics::Labels& labels = {}) {
    return s.registry().counter(name, "", labels).value();
  }

  std::string spec_path_;
  features::FeatureSpec spec_;
};

TEST_F(TerminalFeaturesTest, BadFraudReportsGoToTheDeadLetterTopicWithTheirReason) {
  auto service = start(milliseconds(100), milliseconds(5000));
  ASSERT_NE(service, nullptr);
  const int64_t t = 1'600'000'000'000;
  const std::string good = R"({"transaction_id":"T1","customer_id":"C1","terminal_id":"M1",)"
                           R"("event_time_ms":)" +
                           std::to_string(t) + R"(,"reported_at_ms":)" +
                           std::to_string(t + kDayMs) + R"(,"is_fraud":true})";
  const std::vector<std::pair<std::string, std::string>> reports = {
      {"T1", good},
      {"T2", "{not json"},
      {"T3", R"({"transaction_id":"T3","event_time_ms":1,"reported_at_ms":2,"is_fraud":true})"},
      {"T4", R"({"transaction_id":"T4","terminal_id":"M1","event_time_ms":5,)"
             R"("reported_at_ms":4,"is_fraud":true})"},
      {"T5", R"({"transaction_id":"T5","terminal_id":"M1","event_time_ms":5,)"
             R"("reported_at_ms":6,"is_fraud":"yes"})"},
      {"T6", R"({"transaction_id":"T6","terminal_id":"M1","event_time_ms":5,)"
             R"("reported_at_ms":6,"is_fraud":false})"}};
  ASSERT_TRUE(testing::produce_all(cluster_->bootstrap(), "fraud.reports", reports).ok());
  auto dlq = testing::read_distinct_keys(cluster_->bootstrap(), "transactions.dlq", 4,
                                         milliseconds(30000));
  ASSERT_EQ(dlq.size(), 4u);
  std::map<std::string, std::string> reason, message;
  for (const auto& r : dlq) {
    reason[r.key] = r.headers.at("vigil.error");
    message[r.key] = r.headers.at("vigil.error_message");
    EXPECT_EQ(r.headers.at("vigil.source_topic"), "fraud.reports");
  }
  EXPECT_EQ(reason["T2"], "malformed_json");
  EXPECT_EQ(reason["T3"], "missing_field");
  EXPECT_NE(message["T3"].find("terminal_id"), std::string::npos) << message["T3"];
  EXPECT_EQ(reason["T4"], "out_of_range");
  EXPECT_NE(message["T4"].find("reported_at_ms"), std::string::npos) << message["T4"];
  EXPECT_EQ(reason["T5"], "wrong_type");
  EXPECT_NE(message["T5"].find("is_fraud"), std::string::npos) << message["T5"];
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return counter(*service, "vigil_features_terminal_reports_total",
                       {{"outcome", "counted"}}) == 1 &&
               testing::committed_sum(cluster_->bootstrap(), "vigil.reports", "fraud.reports", 2) ==
                   6;
      },
      milliseconds(30000)));
  EXPECT_EQ(counter(*service, "vigil_reports_applied_total", {{"is_fraud", "false"}}), 1u);
}

TEST_F(TerminalFeaturesTest, DeadLettersKafkaRefusesAreSentAgainUntilEachLandsOnceThenCommitted) {
  constexpr size_t kReports = 40;
  std::vector<std::pair<std::string, std::string>> reports;
  for (size_t i = 0; i < kReports; ++i) reports.emplace_back("B" + std::to_string(i), "{bad");
  ASSERT_TRUE(testing::produce_all(cluster_->bootstrap(), "fraud.reports", reports).ok());
  // Every other Produce request is refused for good: the dead-letter topic's two partitions
  // lead on different brokers, so one batch's records go in several requests and some of
  // them land while others are refused. The refused ones are sent again (only they: the mock
  // broker's idempotence checks happen to keep a whole-batch resend from landing twice too),
  // and the offsets are committed only once every one has landed.
  std::vector<rd_kafka_resp_err_t> errors;
  for (int i = 0; i < 6; ++i) {
    errors.push_back(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    errors.push_back(RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  constexpr int16_t kProduceApiKey = 0;  // RD_KAFKAP_Produce (rdkafka_protocol.h, not installed)
  rd_kafka_mock_push_request_errors_array(cluster_->mock(), kProduceApiKey, errors.size(),
                                          errors.data());
  auto service = start(milliseconds(100), milliseconds(5000));
  ASSERT_NE(service, nullptr);
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return testing::committed_sum(cluster_->bootstrap(), "vigil.reports", "fraud.reports", 2) ==
               static_cast<int64_t>(kReports);
      },
      milliseconds(30000)));
  // Committed only once all were delivered: the topic holds each exactly once.
  const auto dlq = testing::read_topic(
      cluster_->bootstrap(), "transactions.dlq",
      [](const std::vector<testing::TestRecord>& got) { return got.size() >= 2 * kReports; },
      milliseconds(3000));
  std::map<std::string, int> landed;
  for (const auto& r : dlq) ++landed[r.key];
  EXPECT_EQ(dlq.size(), kReports);
  EXPECT_EQ(landed.size(), kReports);
  for (const auto& [key, n] : landed) EXPECT_EQ(n, 1) << key << " dead-lettered " << n << " times";
  EXPECT_EQ(counter(*service, "vigil_reports_rejected_total", {{"reason", "malformed_json"}}),
            kReports);
}

TEST_F(TerminalFeaturesTest, WithRedisGoneTheCopyServesUntilItsMaxAgeThenScoresArePartial) {
  auto service = start(milliseconds(50), milliseconds(4000));
  ASSERT_NE(service, nullptr);
  const int64_t day = 18'500 * kDayMs;
  // Eight days ago, M1 had two transactions; today's is scored with them. The stream has
  // reached today (A3) before Redis goes: the copy holds today's windows.
  ASSERT_TRUE(testing::produce_all(cluster_->bootstrap(), "transactions",
                                   {{"C1", tx("A1", "M1", day - 8 * kDayMs)},
                                    {"C1", tx("A2", "M1", day - 8 * kDayMs + 1000)},
                                    {"C1", tx("A3", "M2", day)}})
                  .ok());
  ASSERT_EQ(
      testing::read_distinct_keys(cluster_->bootstrap(), "scores", 3, milliseconds(30000)).size(),
      3u);
  // Counted in Redis and read back into the copy.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return counter(*service, "vigil_features_terminal_records_total",
                       {{"outcome", "counted"}}) >= 3;
      },
      milliseconds(10000)));
  const uint64_t refreshed =
      counter(*service, "vigil_features_terminal_refreshes_total", {{"outcome", "ok"}});
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return counter(*service, "vigil_features_terminal_refreshes_total", {{"outcome", "ok"}}) >=
               refreshed + 2;
      },
      milliseconds(10000)));
  redis_->kill();
  ASSERT_TRUE(
      testing::produce_all(cluster_->bootstrap(), "transactions", {{"C1", tx("B1", "M1", day)}})
          .ok());
  auto scores =
      testing::read_distinct_keys(cluster_->bootstrap(), "scores", 4, milliseconds(30000));
  ASSERT_EQ(scores.size(), 4u);
  simdjson::dom::parser parser;
  for (const auto& r : scores) {
    if (r.key != "B1") continue;
    simdjson::dom::element doc = parser.parse(r.value);
    EXPECT_EQ(double(doc["features"]["terminal_nb_tx_1d"]), 2.0) << r.value;
    EXPECT_EQ(std::string_view(doc["history"]), "complete") << r.value;
  }
  // Past the max age: served as partial, /ready says why; the stream goes on.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        for (const auto& note : service->readiness_failures()) {
          if (note.find("features.shared.max_age_ms exceeded") != std::string::npos) return true;
        }
        return false;
      },
      milliseconds(20000)));
  ASSERT_TRUE(testing::produce_all(cluster_->bootstrap(), "transactions",
                                   {{"C1", tx("B2", "M1", day + 1000)}})
                  .ok());
  scores = testing::read_distinct_keys(cluster_->bootstrap(), "scores", 5, milliseconds(30000));
  ASSERT_EQ(scores.size(), 5u);
  for (const auto& r : scores) {
    if (r.key == "B2") {
      EXPECT_NE(r.value.find(R"("history":"partial")"), std::string::npos) << r.value;
    }
  }
  EXPECT_GE(counter(*service, "vigil_features_terminal_lookups_total", {{"copy", "missing"}}), 1u);
}

}  // namespace
}  // namespace vigil

// GET /v1/scores/{id} over a real socket, answered from a real redis-server: a streamed score
// is found, an unknown id is 404, Redis going away is 503 with Retry-After; and with
// http.publish_scores an HTTP-scored transaction reaches the scores topic and the lookup.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "support/http_client.h"
#include "support/service_fixture.h"
#include "support/wait.h"

namespace vigil {
namespace {

namespace json = boost::json;
namespace bhttp = boost::beast::http;
using std::chrono::milliseconds;

class ScoreLookupTest : public testing::ServiceFixture {
 protected:
  void SetUp() override {
    start_cluster_and_redis({{"transactions", 3}, {"scores", 3}, {"transactions.dlq", 3}});
  }

  config::AppConfig config() const {
    config::AppConfig c = base_config();
    testing::enable_test_http(c);
    c.scoring.workers = 1;
    return c;
  }
};

TEST_F(ScoreLookupTest, AStreamedScoreIsFoundAnUnknownOneIs404AndRedisDownIs503) {
  config::AppConfig c = config();
  c.http.auth_token = "s3cret";
  auto service = start_service(c);
  ASSERT_NE(service, nullptr);
  ASSERT_TRUE(testing::produce_all(cluster_->bootstrap(), "transactions",
                                   {{"look-1", testing::reference_event(ref_, 1, "look/1", true)}})
                  .ok());
  ASSERT_TRUE(testing::wait_until([&] { return service->redis()->stats().written() >= 1; },
                                  milliseconds(30000)));
  auto redis = testing::RedisClient::Connect(*redis_);
  ASSERT_TRUE(redis.ok());
  auto stored = redis->get("vigil:score:look/1");
  ASSERT_TRUE(stored.ok() && stored->has_value());

  testing::HttpClient http(static_cast<uint16_t>(service->http_port()));
  const testing::HttpClient::Headers auth = {{"Authorization", "Bearer s3cret"}};
  auto res = http.request(bhttp::verb::get, "/v1/scores/look%2F1", "", auth);
  ASSERT_EQ(res.result_int(), 200) << res.body();
  EXPECT_EQ(res.body(), **stored);  // the very record on the scores topic
  EXPECT_EQ(json::parse(res.body()).at("transaction_id").as_string(), "look/1");

  res = http.request(bhttp::verb::get, "/v1/scores/never-seen", "", auth);
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_NE(res.body().find("no score for transaction \\\"never-seen\\\""), std::string::npos)
      << res.body();
  res = http.request(bhttp::verb::get, "/v1/scores/look%2F1");
  EXPECT_EQ(res.result_int(), 401) << "lookups take the scoring routes' token";

  redis_.reset();  // redis-server stops
  res = http.request(bhttp::verb::get, "/v1/scores/look%2F1", "", auth);
  EXPECT_EQ(res.result_int(), 503) << res.body();
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  EXPECT_NE(res.body().find("score lookups unavailable"), std::string::npos) << res.body();

  auto& reg = service->registry();
  EXPECT_EQ(reg.counter("vigil_score_lookups_total", "", {{"result", "hit"}}).value(), 1.0);
  EXPECT_EQ(reg.counter("vigil_score_lookups_total", "", {{"result", "miss"}}).value(), 1.0);
  EXPECT_GE(reg.counter("vigil_score_lookups_total", "", {{"result", "unavailable"}}).value(), 1.0);
  service->stop();
}

// One exit: the HTTP-scored record, reason codes included, is the same bytes in Redis and on the
// scores topic (before, Redis got a second encoding without the reasons).
TEST_F(ScoreLookupTest,
       WithPublishScoresAnHttpScoredTransactionIsTheSameBytesOnTheTopicAndInRedis) {
  config::AppConfig c = config();
  c.http.publish_scores = true;
  auto service = start_service(c);
  ASSERT_NE(service, nullptr);
  json::object instance;
  instance["transaction_id"] = "http-7";
  for (size_t i = 0; i < ref_.feature_names.size(); ++i) {
    instance[ref_.feature_names[i]] = ref_.rows[7][i];
  }
  testing::HttpClient http(static_cast<uint16_t>(service->http_port()));
  auto res = http.request(bhttp::verb::post, "/predict?explain=true&top_k=3",
                          json::serialize(json::object{{"instances", json::array{instance}}}));
  ASSERT_EQ(res.result_int(), 200) << res.body();
  const double score =
      json::parse(res.body()).at("predictions").at(0).at("score").to_number<double>();

  auto records =
      testing::read_distinct_keys(cluster_->bootstrap(), "scores", 1, milliseconds(30000));
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].key, "http-7");
  EXPECT_NEAR(testing::json_number(records[0].value, "score"), score, 1e-6);
  EXPECT_EQ(json::parse(records[0].value).at("reasons").as_array().size(), 3u) << records[0].value;
  EXPECT_EQ(json::parse(records[0].value).at("source").as_string(), "http");

  ASSERT_TRUE(testing::wait_until([&] { return service->redis()->stats().written() >= 1; },
                                  milliseconds(10000)));
  auto redis = testing::RedisClient::Connect(*redis_);
  ASSERT_TRUE(redis.ok());
  auto cached = redis->get("vigil:score:http-7");
  ASSERT_TRUE(cached.ok() && cached->has_value());
  EXPECT_EQ(**cached, records[0].value) << "Redis and the scores topic disagree";

  ASSERT_TRUE(testing::wait_until(
      [&] { return http.request(bhttp::verb::get, "/v1/scores/http-7").result_int() == 200; },
      milliseconds(10000)));
  res = http.request(bhttp::verb::get, "/v1/scores/http-7");
  EXPECT_EQ(res.body(), records[0].value);
  EXPECT_EQ(service->registry().counter("vigil_http_scores_published_total", "").value(), 1.0);
  service->stop();
}

}  // namespace
}  // namespace vigil

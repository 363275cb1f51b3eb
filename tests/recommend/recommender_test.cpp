// The recommender on the shipped Scout model (models/scout): every answer of the reference
// tools/train_scout.py wrote from the same model (tests/data/scout_v1_reference.json: known
// and unknown customers, k 1, 10 and 100, with and without their seen terminals) asked at
// once, so that batches mix k and exclude_seen; then POST /recommend over a real socket: the
// same answers, cold starts, and every bad input answered with the field it names.
#include "recommend/recommender.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "http/http_test_util.h"
#include "http/server.h"
#include "support/http_client.h"

namespace vigil::recommend {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

struct Case {
  std::string customer_id;
  int k;
  bool exclude_seen;
  bool cold_start;
  std::vector<std::string> terminals;
  std::vector<double> scores;
};

std::vector<Case> reference_cases() {
  std::ifstream f(std::string(VIGIL_SOURCE_DIR) + "/tests/data/scout_v1_reference.json");
  std::stringstream text;
  text << f.rdbuf();
  std::vector<Case> cases;
  const json::value doc = json::parse(text.str());
  for (const json::value& c : doc.at("cases").as_array()) {
    Case x;
    x.customer_id = std::string(c.at("customer_id").as_string());
    x.k = static_cast<int>(c.at("k").as_int64());
    x.exclude_seen = c.at("exclude_seen").as_bool();
    x.cold_start = c.at("cold_start").as_bool();
    for (const json::value& t : c.at("terminals").as_array()) {
      x.terminals.emplace_back(t.as_string());
    }
    for (const json::value& s : c.at("scores").as_array())
      x.scores.push_back(s.to_number<double>());
    cases.push_back(std::move(x));
  }
  return cases;
}

RecommendConfig config() {
  RecommendConfig c;
  c.model = "scout";
  c.max_batch = 16;
  c.max_delay = std::chrono::microseconds(2000);
  return c;
}

std::unique_ptr<Recommender> load(metrics::Registry& registry) {
  auto r = Recommender::load(std::string(VIGIL_SOURCE_DIR) + "/models", config(), registry);
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? std::move(r.value()) : nullptr;
}

void expect_case(const Case& c, const std::vector<std::string>& items,
                 const std::vector<double>& scores, bool cold_start) {
  const std::string what =
      c.customer_id + " k=" + std::to_string(c.k) + (c.exclude_seen ? " exclude_seen" : "");
  EXPECT_EQ(cold_start, c.cold_start) << what;
  ASSERT_EQ(items, c.terminals) << what;
  ASSERT_EQ(scores.size(), c.scores.size()) << what;
  for (size_t i = 0; i < scores.size(); ++i) {
    EXPECT_NEAR(scores[i], c.scores[i], 1e-5 * std::max(1.0, std::abs(c.scores[i])))
        << what << " rank " << i;
  }
}

TEST(Recommender, EveryReferenceAnswerAskedAtOnceComesBackInBatchesExactly) {
  const std::vector<Case> cases = reference_cases();
  ASSERT_EQ(cases.size(), 36u);
  metrics::Registry registry;
  auto rec = load(registry);
  ASSERT_NE(rec, nullptr);
  EXPECT_EQ(rec->version(), "1");
  EXPECT_EQ(rec->items(), 10000u);
  std::vector<std::promise<Result<Recommendation>>> answers(cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(rec->recommend(
        cases[i].customer_id, cases[i].k, cases[i].exclude_seen,
        [&answers, i](Result<Recommendation> r) { answers[i].set_value(std::move(r)); }));
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    auto got = answers[i].get_future().get();
    ASSERT_TRUE(got.ok()) << got.error();
    std::vector<double> scores(got->scores.begin(), got->scores.end());
    expect_case(cases[i], got->items, scores, got->cold_start);
  }
  const uint64_t batches = registry.counter("vigil_recommend_batches_total", "").value();
  EXPECT_GT(batches, 0u);
  EXPECT_LT(batches, cases.size()) << "36 requests at once were not batched";
  EXPECT_EQ(registry.counter("vigil_recommend_cold_starts_total", "").value(), 6u);
}

TEST(Recommender, AFullQueueRefusesAndStopAnswersWhatIsLeft) {
  metrics::Registry registry;
  RecommendConfig c = config();
  c.queue_capacity = c.max_batch;
  auto r = Recommender::load(std::string(VIGIL_SOURCE_DIR) + "/models", c, registry);
  ASSERT_TRUE(r.ok()) << r.error();
  std::atomic<int> answered{0}, failed{0};
  size_t accepted = 0, refused = 0;
  for (int i = 0; i < 2000; ++i) {
    const bool queued = r.value()->recommend("C000001", 100, true, [&](Result<Recommendation> res) {
      (res.ok() ? answered : failed).fetch_add(1);
    });
    (queued ? accepted : refused) += 1;
  }
  r.value()->stop();
  EXPECT_GT(refused, 0u) << "2,000 requests into a queue of 16";
  EXPECT_EQ(static_cast<size_t>(answered.load() + failed.load()), accepted)
      << "every queued request is answered once, by the worker or by stop()";
  EXPECT_EQ(
      registry.counter("vigil_recommend_requests_total", "", {{"outcome", "refused"}}).value(),
      refused);
  EXPECT_FALSE(r.value()->recommend("C000001", 1, false, [](Result<Recommendation>) {}));
}

TEST(Recommender, AMissingModelIsAnErrorNamingItsFolder) {
  metrics::Registry registry;
  RecommendConfig c = config();
  c.model = "no_such_recommender";
  auto r = Recommender::load(std::string(VIGIL_SOURCE_DIR) + "/models", c, registry);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("no_such_recommender"), std::string::npos) << r.error();
}

TEST(Recommender, AVersionSwappedInUnderLoadLeavesNoRequestUnansweredAndEachNamesItsVersion) {
  // A repository of its own: version 1, then version 2 renamed into place while requests
  // keep coming from another thread. Every request is answered, by version 1 or 2 (the same
  // factors: the same answer), and once 2 is served nothing is answered by 1.
  const std::filesystem::path repo =
      std::filesystem::temp_directory_path() / ("vigil-rec-swap-" + std::to_string(::getpid()));
  std::filesystem::remove_all(repo);
  std::filesystem::create_directories(repo / "scout" / "1");
  const std::string shipped = std::string(VIGIL_SOURCE_DIR) + "/models/scout/1/model.pt";
  std::filesystem::copy_file(shipped, repo / "scout" / "1" / "model.pt");
  const Case c = reference_cases().at(1);
  metrics::Registry registry;
  auto r = Recommender::load(repo.string(), config(), registry,
                             RecommenderWatch{milliseconds(10), milliseconds(50)});
  ASSERT_TRUE(r.ok()) << r.error();
  Recommender& rec = *r.value();
  std::mutex mu;
  std::vector<std::string> versions;  // in the order answered
  std::atomic<int> pending{0};
  std::atomic<bool> sending{true};
  std::thread sender([&] {
    while (sending.load()) {
      pending.fetch_add(1);
      const bool queued =
          rec.recommend(c.customer_id, c.k, c.exclude_seen, [&](Result<Recommendation> res) {
            {
              std::lock_guard<std::mutex> lock(mu);
              EXPECT_TRUE(res.ok()) << res.error();
              if (res.ok()) {
                std::vector<double> scores(res->scores.begin(), res->scores.end());
                expect_case(c, res->items, scores, res->cold_start);
                versions.push_back(res->version);
              }
            }
            pending.fetch_sub(1);
          });
      if (!queued) pending.fetch_sub(1);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  std::this_thread::sleep_for(milliseconds(100));
  const std::filesystem::path staging = repo / ".staging";
  std::filesystem::create_directories(staging);
  std::filesystem::copy_file(shipped, staging / "model.pt");
  std::filesystem::rename(staging, repo / "scout" / "2");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (rec.version() != "2" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  std::this_thread::sleep_for(milliseconds(100));
  sending = false;
  sender.join();
  while (pending.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  rec.stop();
  std::filesystem::remove_all(repo);
  ASSERT_EQ(rec.version(), "2") << "version 2 was never served";
  EXPECT_EQ(pending.load(), 0);
  std::lock_guard<std::mutex> lock(mu);
  const auto first_2 = std::find(versions.begin(), versions.end(), "2");
  ASSERT_NE(first_2, versions.end());
  EXPECT_GT(first_2 - versions.begin(), 0) << "nothing answered by version 1";
  EXPECT_EQ(std::count(first_2, versions.end(), "1"), 0) << "version 1 answered after 2";
  EXPECT_EQ(
      registry.counter("vigil_recommend_model_loads_total", "", {{"outcome", "loaded"}}).value(),
      2u);
}

// POST /recommend over a real socket, the real recommender behind it.
class RecommendHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    rec_ = load(registry_);
    ASSERT_NE(rec_, nullptr);
    http::HttpConfig c;
    c.address = "127.0.0.1";
    c.port = 0;
    c.threads = 2;
    http::HttpDeps deps = stack_.deps();
    deps.recommender = rec_.get();
    server_ = std::make_unique<http::HttpServer>(c, deps);
    auto st = server_->start();
    ASSERT_TRUE(st.ok()) << st.message();
  }
  void TearDown() override {
    if (server_) server_->stop(milliseconds(2000));
    server_.reset();
    rec_.reset();
  }
  testing::HttpClient::Response post(const std::string& body) {
    testing::HttpClient client(server_->port());
    return client.request(boost::beast::http::verb::post, "/recommend", body);
  }

  metrics::Registry registry_;
  http::test::ScoringStack stack_;
  std::unique_ptr<Recommender> rec_;
  std::unique_ptr<http::HttpServer> server_;
};

TEST_F(RecommendHttp, AnswersAsTheReferenceDoesAndAnUnknownCustomerIsAColdStart) {
  for (const Case& c : reference_cases()) {
    json::object body{{"customer_id", c.customer_id}, {"k", c.k}, {"exclude_seen", c.exclude_seen}};
    const auto res = post(json::serialize(body));
    ASSERT_EQ(res.result_int(), 200u) << res.body();
    const json::object v = json::parse(res.body()).as_object();
    EXPECT_EQ(v.at("customer_id").as_string(), c.customer_id);
    EXPECT_EQ(v.at("model_name").as_string(), "scout");
    EXPECT_EQ(v.at("model_version").as_string(), "1");
    std::vector<std::string> items;
    std::vector<double> scores;
    for (const json::value& r : v.at("recommendations").as_array()) {
      items.emplace_back(r.at("terminal_id").as_string());
      scores.push_back(r.at("score").to_number<double>());
    }
    expect_case(c, items, scores, v.at("cold_start").as_bool());
  }
  // k defaults to 10.
  const auto res = post(R"({"customer_id":"C000002"})");
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_EQ(json::parse(res.body()).at("recommendations").as_array().size(), 10u);
}

TEST_F(RecommendHttp, BadInputIsAnsweredWithTheFieldItNames) {
  struct Bad {
    std::string body;
    unsigned status;
    std::string names;
  };
  const std::vector<Bad> bad = {
      {"{not json", 400, "not JSON"},
      {"[1,2]", 422, "object"},
      {R"({"k":10})", 422, "customer_id"},
      {R"({"customer_id":""})", 422, "customer_id"},
      {R"({"customer_id":42})", 422, "customer_id"},
      {R"({"customer_id":")" + std::string(300, 'x') + R"("})", 422, "customer_id"},
      {R"({"customer_id":"C1","k":0})", 422, "k must be"},
      {R"({"customer_id":"C1","k":101})", 422, "k must be"},
      {R"({"customer_id":"C1","k":-3})", 422, "k must be"},
      {R"({"customer_id":"C1","k":2.5})", 422, "k must be"},
      {R"({"customer_id":"C1","k":"10"})", 422, "k must be"},
      {R"({"customer_id":"C1","k":1e300})", 422, "k must be"},
      {R"({"customer_id":"C1","exclude_seen":"yes"})", 422, "exclude_seen"},
  };
  for (const Bad& b : bad) {
    const auto res = post(b.body);
    EXPECT_EQ(res.result_int(), b.status) << b.body << " -> " << res.body();
    EXPECT_NE(res.body().find(b.names), std::string::npos) << b.body << " -> " << res.body();
  }
  testing::HttpClient client(server_->port());
  EXPECT_EQ(client.request(boost::beast::http::verb::get, "/recommend").result_int(), 405u);
}

TEST_F(RecommendHttp, TheOpenInferenceProtocolDescribesTheRecommenderBesideTheScoringModel) {
  testing::HttpClient client(server_->port());
  auto get = [&](const std::string& target) {
    return client.request(boost::beast::http::verb::get, target);
  };
  auto res = get("/v2/models/scout");
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  const json::object meta = json::parse(res.body()).as_object();
  EXPECT_EQ(meta.at("name").as_string(), "scout");
  EXPECT_EQ(meta.at("version").as_string(), "1");
  EXPECT_EQ(meta.at("inputs").as_array().at(0).at("name").as_string(), "customer_id");
  EXPECT_EQ(meta.at("outputs").as_array().at(0).at("name").as_string(), "terminal_id");
  EXPECT_EQ(get("/v2/models/scout/versions/1").result_int(), 200u);
  res = get("/v2/models/scout/ready");
  EXPECT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_TRUE(json::parse(res.body()).at("ready").as_bool()) << res.body();
  res = get("/v2/models/scout/versions/7/ready");
  EXPECT_EQ(res.result_int(), 404u) << res.body();
  EXPECT_NE(res.body().find("the version served is '1'"), std::string::npos) << res.body();
  // Inference goes through /recommend; the v2 infer route says so.
  res = client.request(boost::beast::http::verb::post, "/v2/models/scout/infer", "{}");
  EXPECT_EQ(res.result_int(), 404u) << res.body();
  EXPECT_NE(res.body().find("POST /recommend"), std::string::npos) << res.body();
  // The scoring model is still described as before.
  const std::string scoring_model = stack_.batcher.model_info()->name;
  res = get("/v2/models/" + scoring_model);
  EXPECT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_EQ(json::parse(res.body()).at("name").as_string(), scoring_model);
}

}  // namespace
}  // namespace vigil::recommend

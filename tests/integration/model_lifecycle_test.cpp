// The model lifecycle end to end, in-process: the real Service on the embedded Kafka (over
// TCP) and a real redis-server, with a model repository in a temporary folder. A version
// swap under a live stream, the shadow model's records, reason codes against PyTorch's
// autograd, and the repository API over a real socket.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "app/service.h"
#include "features/feature_spec.h"
#include "kafka/embedded_cluster.h"
#include "scoring/model_repository.h"
#include "scoring/torch_model.h"
#include "support/http_client.h"
#include "support/kafka_test_util.h"
#include "support/redis_server.h"
#include "support/service_config.h"
#include "support/service_fixture.h"
#include "support/velocity_data.h"
#include "support/wait.h"

namespace vigil {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
namespace bhttp = boost::beast::http;
using std::chrono::milliseconds;
const std::string kSource = VIGIL_SOURCE_DIR;

json::value read_json(const std::string& path) {
  std::ifstream f(path);
  return json::parse(std::string(std::istreambuf_iterator<char>(f), {}));
}

class ModelLifecycleTest : public testing::ServiceFixture {
 protected:
  void SetUp() override {
    start_cluster_and_redis({{"transactions", 6},
                             {"scores", 6},
                             {"transactions.dlq", 6},
                             {"scores.shadow", 6},
                             {"transactions.raw", 4},
                             {"scores.velocity", 4}});
    if (HasFatalFailure()) return;
    repo_ = fs::temp_directory_path() /
            ("vigil-lifecycle-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(repo_);
    fs::create_directories(repo_ / "fraud_mlp" / "1");
    fs::copy_file(kSource + "/models/fraud_mlp/model.yaml", repo_ / "fraud_mlp" / "model.yaml");
    fs::copy_file(kSource + "/models/fraud_mlp/1/model.pt", repo_ / "fraud_mlp" / "1" / "model.pt");
  }
  void TearDown() override { fs::remove_all(repo_); }

  // models/fraud_velocity (version 1) into the repository, beside fraud_mlp.
  void add_fraud_velocity() {
    for (const char* f : {"model.yaml", "features.yaml", "1/model.pt"}) {
      fs::create_directories((repo_ / "fraud_velocity" / f).parent_path());
      fs::copy_file(kSource + "/models/fraud_velocity/" + f, repo_ / "fraud_velocity" / f);
    }
  }

  // Version 2 arrives as a folder renamed into place (written elsewhere first).
  void add_version_2() {
    const fs::path staging = repo_ / ".staging-2";
    fs::create_directories(staging);
    fs::copy_file(kSource + "/tests/data/fraud_mlp_v2/model.pt", staging / "model.pt");
    fs::rename(staging, repo_ / "fraud_mlp" / "2");
  }

  config::AppConfig config() const {
    config::AppConfig c = base_config();
    c.model.repository = repo_.string();
    c.model.reload_interval = milliseconds(100);
    c.model.stable = milliseconds(300);
    c.scoring.workers = 2;
    return c;
  }

  std::unique_ptr<app::Service> start(const config::AppConfig& c) { return start_service(c); }

  // Scores of every reference row by `version`, from an independent load of that version.
  std::vector<float> forward(const std::string& version) {
    auto info = scoring::load_model_info(repo_.string(), "fraud_mlp", version);
    EXPECT_TRUE(info.ok()) << info.error();
    auto model = scoring::load_torch_model(*info, {"cpu", 1, 8});
    EXPECT_TRUE(model.ok()) << model.error();
    std::vector<float> packed, out(ref_.rows.size());
    for (const auto& row : ref_.rows) {
      for (double v : row) packed.push_back(static_cast<float>(v));
    }
    EXPECT_TRUE((*model)->new_session()->score(packed.data(), ref_.rows.size(), out.data()).ok());
    return out;
  }

  void produce(const std::string& prefix, size_t from, size_t to) {
    std::vector<std::pair<std::string, std::string>> recs;
    for (size_t i = from; i < to; ++i) {
      const std::string id = prefix + std::to_string(i);
      recs.emplace_back(id, testing::reference_event(ref_, i % ref_.rows.size(), id, i % 2 == 0));
    }
    ASSERT_TRUE(testing::produce_all(cluster_->bootstrap(), "transactions", recs).ok());
  }

  fs::path repo_;
};

TEST_F(ModelLifecycleTest, VersionSwapUnderAStreamLosesNothingAndEachScoreNamesItsVersion) {
  add_version_2();
  const std::vector<float> v1 = forward("1"), v2 = forward("2");
  fs::remove_all(repo_ / "fraud_mlp" / "2");

  auto service = start(config());
  ASSERT_NE(service, nullptr);
  // A live stream that goes on until version 2 has been served for a while: chunks produced
  // after the swap was seen can only be scored by version 2. (A fixed-length stream could
  // be consumed whole, as one backlog, before the swap when the group's join is slow.)
  constexpr size_t kChunk = 500, kChunksAfterSwap = 4, kMaxEvents = 100000;
  std::atomic<bool> swapped{false};
  std::atomic<size_t> produced{0};
  std::thread producer([&] {
    size_t after_swap = 0;
    while (after_swap < kChunksAfterSwap && produced < kMaxEvents) {
      const bool swap_seen = swapped;  // read before producing: this chunk follows the swap
      produce("swap-", produced, produced + kChunk);
      produced += kChunk;
      if (swap_seen) ++after_swap;
      std::this_thread::sleep_for(milliseconds(100));  // a live stream, not one burst
    }
  });
  const bool some_scored = testing::wait_until(
      [&] { return service->batcher().stats().scored() >= 3000; }, milliseconds(60000));
  add_version_2();
  const double scored_at_swap = service->batcher().stats().scored();
  const bool served = testing::wait_until(
      [&] { return service->batcher().model_info()->version == "2"; }, milliseconds(60000));
  swapped = true;
  producer.join();
  ASSERT_TRUE(some_scored);
  ASSERT_TRUE(served) << "version 2 was never served";
  const size_t total = produced;

  auto scores =
      testing::read_distinct_keys(cluster_->bootstrap(), "scores", total, milliseconds(120000));
  std::map<std::string, std::string> by_id;
  for (const auto& r : scores) by_id[r.key] = r.value;
  ASSERT_EQ(by_id.size(), total) << "missing scores";
  std::map<std::string, size_t> per_version;
  double max_diff = 0.0;
  for (size_t i = 0; i < total; ++i) {
    const std::string& value = by_id["swap-" + std::to_string(i)];
    const std::string version = testing::json_string(value, "model_version");
    ++per_version[version];
    ASSERT_TRUE(version == "1" || version == "2") << value;
    const float expected = (version == "1" ? v1 : v2)[i % ref_.rows.size()];
    max_diff = std::max(max_diff, std::fabs(testing::json_number(value, "score") - expected));
  }
  std::printf(
      "[ lifecycle ] %zu events, version 2 arrived after %.0f were scored: %zu scored "
      "by version 1, %zu by version 2; max |score - that version's forward| %.2g\n",
      total, scored_at_swap, per_version["1"], per_version["2"], max_diff);
  EXPECT_LE(max_diff, 1e-5) << "a score does not match the version it names";
  EXPECT_GT(per_version["1"], 0u);
  EXPECT_GT(per_version["2"], 0u) << "version 2 never served";
  EXPECT_EQ(service->batcher().model_info()->version, "2");
  EXPECT_EQ(testing::read_topic(
                cluster_->bootstrap(), "transactions.dlq", [](const auto&) { return false; },
                milliseconds(1000))
                .size(),
            0u);
  service->stop();
}

TEST_F(ModelLifecycleTest, ShadowRecordsEqualTwoIndependentForwardsAndThePrimaryIsUnchanged) {
  add_version_2();
  const std::vector<float> v1 = forward("1"), v2 = forward("2");
  const float threshold = scoring::load_model_info(repo_.string(), "fraud_mlp", "1")->threshold;
  config::AppConfig c = config();
  c.model.shadow_version = "2";  // version 2 is the highest, but it only shadows
  auto service = start(c);
  ASSERT_NE(service, nullptr);
  ASSERT_EQ(service->batcher().model_info()->version, "1");
  constexpr size_t kEvents = 3000;
  produce("sh-", 0, kEvents);

  auto shadow = testing::read_distinct_keys(cluster_->bootstrap(), "scores.shadow", kEvents,
                                            milliseconds(120000));
  auto scores =
      testing::read_distinct_keys(cluster_->bootstrap(), "scores", kEvents, milliseconds(60000));
  ASSERT_EQ(scores.size(), kEvents);
  std::map<std::string, std::string> by_id;
  for (const auto& r : shadow) by_id[r.key] = r.value;
  ASSERT_EQ(by_id.size(), kEvents);
  double max_diff = 0.0;
  size_t disagree = 0;
  for (size_t i = 0; i < kEvents; ++i) {
    const std::string& value = by_id["sh-" + std::to_string(i)];
    const size_t row = i % ref_.rows.size();
    EXPECT_EQ(testing::json_string(value, "model_version"), "1");
    EXPECT_EQ(testing::json_string(value, "shadow_version"), "2");
    max_diff = std::max({max_diff, std::fabs(testing::json_number(value, "score") - v1[row]),
                         std::fabs(testing::json_number(value, "shadow_score") - v2[row])});
    const bool agree = (v1[row] >= threshold) == (v2[row] >= threshold);
    EXPECT_EQ(value.find(agree ? "\"agree\":true" : "\"agree\":false") != std::string::npos, true)
        << value;
    disagree += !agree;
  }
  EXPECT_LE(max_diff, 1e-5);
  for (const auto& r : scores) {  // the primary result is version 1's, unchanged
    EXPECT_EQ(testing::json_string(r.value, "model_version"), "1");
  }
  auto& reg = service->registry();
  EXPECT_GE(reg.counter("vigil_shadow_rows_total", "", {{"model", "fraud_mlp"}}).value(), kEvents);
  EXPECT_EQ(reg.counter("vigil_shadow_decisions_total", "",
                        {{"result", "disagree"}, {"model", "fraud_mlp"}})
                .value(),
            static_cast<double>(disagree));
  std::printf(
      "[ lifecycle ] shadow: %zu records, max |difference| to independent forwards %.2g, "
      "%zu decisions differ at threshold %.2f\n",
      by_id.size(), max_diff, disagree, threshold);
  service->stop();
}

// Reason codes of the first 64 reference rows, as tests/data/make_reasons_reference.py computed
// them with PyTorch autograd.
struct ReasonReference {
  std::vector<std::vector<std::pair<std::string, double>>> top;  // per row, best first
  std::vector<std::vector<double>> contributions;                // per row, per input
};

ReasonReference load_reasons() {
  json::value v = read_json(kSource + "/tests/data/fraud_mlp_v1_reasons.json");
  ReasonReference r;
  for (const auto& row : v.at("rows").as_array()) {
    r.top.emplace_back();
    for (const auto& t : row.at("top").as_array()) {
      r.top.back().emplace_back(std::string(t.at("feature").as_string()),
                                t.at("contribution").to_number<double>());
    }
    r.contributions.emplace_back();
    for (const auto& c : row.at("contributions").as_array()) {
      r.contributions.back().push_back(c.to_number<double>());
    }
  }
  return r;
}

// `got` (a "reasons" array) equals the reference's top k: same contributions within 1e-5 (plus
// 1e-4 relative), same features, except that two places closer than 1e-6 may swap.
void expect_reasons_match(const json::array& got,
                          const std::vector<std::pair<std::string, double>>& want,
                          const std::string& where) {
  ASSERT_EQ(got.size(), want.size()) << where;
  for (size_t j = 0; j < want.size(); ++j) {
    const std::string feature(got[j].at("feature").as_string());
    const double c = got[j].at("contribution").to_number<double>();
    EXPECT_NEAR(c, want[j].second, 1e-5 + 1e-4 * std::fabs(want[j].second)) << where << " #" << j;
    const bool tie_with_next =
        j + 1 < want.size() && std::fabs(want[j].second - want[j + 1].second) < 1e-6;
    const bool tie_with_prev = j > 0 && std::fabs(want[j].second - want[j - 1].second) < 1e-6;
    if (!tie_with_next && !tie_with_prev) {
      EXPECT_EQ(feature, want[j].first) << where << " #" << j;
    }
  }
}

TEST_F(ModelLifecycleTest, ReasonCodesOnTheStreamAndOnPredictEqualThePyTorchAttribution) {
  const ReasonReference ref = load_reasons();
  ASSERT_EQ(ref.top.size(), 64u);
  config::AppConfig c = config();
  c.explain.top_k = 5;
  testing::enable_test_http(c);
  auto service = start(c);
  ASSERT_NE(service, nullptr);
  produce("ex-", 0, 64);
  auto scores =
      testing::read_distinct_keys(cluster_->bootstrap(), "scores", 64, milliseconds(60000));
  ASSERT_EQ(scores.size(), 64u);
  for (const auto& r : scores) {
    const size_t i = std::stoul(r.key.substr(3));
    json::value v = json::parse(r.value);
    ASSERT_TRUE(v.as_object().contains("reasons")) << r.value;
    expect_reasons_match(v.at("reasons").as_array(), ref.top[i], "stream " + r.key);
  }
  // Redis holds the same record, reasons included.
  ASSERT_TRUE(testing::wait_until([&] { return service->redis()->stats().written() >= 64; },
                                  milliseconds(30000)));
  auto redis = testing::RedisClient::Connect(*redis_);
  ASSERT_TRUE(redis.ok());
  auto cached = redis->get("vigil:score:ex-7");
  ASSERT_TRUE(cached.ok() && cached->has_value());
  expect_reasons_match(json::parse(**cached).at("reasons").as_array(), ref.top[7], "redis ex-7");

  // /predict with "explain": true and top_k 3, the whole 64 rows in one request.
  json::array instances;
  for (size_t i = 0; i < 64; ++i) {
    json::array row;
    for (double x : ref_.rows[i]) row.push_back(x);
    instances.push_back(std::move(row));
  }
  testing::HttpClient http(static_cast<uint16_t>(service->http_port()));
  auto res =
      http.request(bhttp::verb::post, "/predict?top_k=3",
                   json::serialize(json::object{{"explain", true}, {"instances", instances}}));
  ASSERT_EQ(res.result_int(), 200) << res.body();
  auto predictions = json::parse(res.body()).at("predictions").as_array();
  ASSERT_EQ(predictions.size(), 64u);
  for (size_t i = 0; i < 64; ++i) {
    std::vector<std::pair<std::string, double>> top3(ref.top[i].begin(), ref.top[i].begin() + 3);
    expect_reasons_match(predictions[i].at("reasons").as_array(), top3,
                         "predict " + std::to_string(i));
  }
  // More reasons than the model has inputs: 422 naming top_k. Without explain: no reasons.
  res = http.request(bhttp::verb::post, "/predict?explain=true&top_k=31",
                     json::serialize(json::object{{"instances", json::array{instances[0]}}}));
  EXPECT_EQ(res.result_int(), 422);
  EXPECT_NE(res.body().find("top_k must be within [1, 30]"), std::string::npos) << res.body();
  res = http.request(bhttp::verb::post, "/predict",
                     json::serialize(json::object{{"instances", json::array{instances[0]}}}));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body().find("reasons"), std::string::npos) << res.body();
  service->stop();
}

TEST_F(ModelLifecycleTest, WithTheRecommenderBesideItAReloadOfEitherModelLeavesTheOtherAsItWas) {
  // Two models in one repository, both watched: fraud_mlp behind /predict, scout behind
  // /recommend. A new version of each is picked up in turn; the other answers as before.
  fs::create_directories(repo_ / "scout" / "1");
  fs::copy_file(kSource + "/models/scout/1/model.pt", repo_ / "scout" / "1" / "model.pt");
  config::AppConfig c = config();
  c.kafka.enabled = false;
  c.recommend.model = "scout";
  testing::enable_test_http(c);
  auto service = start(c);
  ASSERT_NE(service, nullptr);
  testing::HttpClient http(static_cast<uint16_t>(service->http_port()));
  const std::string predict_body = json::serialize(json::object{
      {"instances", json::array{json::value_from(ref_.rows[0]), json::value_from(ref_.rows[1])}}});
  auto predict = [&] {
    auto res = http.request(bhttp::verb::post, "/predict", predict_body);
    EXPECT_EQ(res.result_int(), 200) << res.body();
    return json::parse(res.body()).as_object();
  };
  auto recommend = [&] {
    auto res = http.request(bhttp::verb::post, "/recommend",
                            R"({"customer_id":"C000123","k":10,"exclude_seen":true})");
    EXPECT_EQ(res.result_int(), 200) << res.body();
    return json::parse(res.body()).as_object();
  };
  const json::object scores = predict();
  const json::object recommended = recommend();
  ASSERT_EQ(scores.at("model_version").as_string(), "1") << scores;
  ASSERT_EQ(recommended.at("model_version").as_string(), "1") << recommended;
  ASSERT_EQ(recommended.at("recommendations").as_array().size(), 10u) << recommended;

  // Scout version 2 (the same factors: the same answers, under the new version), renamed into
  // place; then a broken version 3, refused while 2 stays.
  const fs::path staging = repo_ / ".staging-scout";
  fs::create_directories(staging);
  fs::copy_file(kSource + "/models/scout/1/model.pt", staging / "model.pt");
  fs::rename(staging, repo_ / "scout" / "2");
  ASSERT_TRUE(testing::wait_until(
      [&] { return recommend().at("model_version").as_string() == "2"; }, milliseconds(30000)))
      << "scout version 2 was never served";
  json::object now = recommend();
  EXPECT_EQ(now.at("recommendations"), recommended.at("recommendations"));
  json::object other = predict();
  EXPECT_EQ(other.at("model_version").as_string(), "1") << "fraud_mlp moved with scout";
  EXPECT_EQ(other.at("predictions"), scores.at("predictions"));
  EXPECT_EQ(service->batcher().model_info()->version, "1");

  fs::create_directories(repo_ / "scout" / "3");
  std::ofstream(repo_ / "scout" / "3" / "model.pt") << "not a TorchScript archive";
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return service->registry()
                   .counter("vigil_recommend_model_loads_total", "", {{"outcome", "refused"}})
                   .value() >= 1;
      },
      milliseconds(30000)))
      << "the broken version 3 was never tried";
  EXPECT_EQ(recommend().at("model_version").as_string(), "2");

  // fraud_mlp version 2: /predict moves to it, /recommend stays on scout 2 and answers as before.
  add_version_2();
  ASSERT_TRUE(testing::wait_until([&] { return predict().at("model_version").as_string() == "2"; },
                                  milliseconds(30000)))
      << "fraud_mlp version 2 was never served";
  now = recommend();
  EXPECT_EQ(now.at("model_version").as_string(), "2");
  EXPECT_EQ(now.at("recommendations"), recommended.at("recommendations"));
  service->stop();
}

TEST_F(ModelLifecycleTest, TwoModelsServedAtOnceScoreAsTheirPyTorchReferencesAndReloadApart) {
  // fraud_velocity served beside fraud_mlp (model.also_serve): asked for by name over HTTP,
  // while the stream and plain /predict go on with fraud_mlp, the default model.
  add_fraud_velocity();
  const testing::ReferenceData velocity =
      testing::load_reference("tests/data/fraud_velocity_v1_reference.json");
  config::AppConfig c = config();
  c.model.also_serve = "fraud_velocity";
  testing::enable_test_http(c);
  auto service = start(c);
  ASSERT_NE(service, nullptr);
  ASSERT_EQ(service->batcher().model_count(), 2u);
  testing::HttpClient http(static_cast<uint16_t>(service->http_port()));

  // Over HTTP: each model's rows scored as PyTorch scored them.
  constexpr size_t kRows = 64;
  auto score_velocity = [&](json::object& answer) {
    json::array instances;
    for (size_t i = 0; i < kRows; ++i) instances.push_back(json::value_from(velocity.rows[i]));
    auto res = http.request(bhttp::verb::post, "/predict?model=fraud_velocity",
                            json::serialize(json::object{{"instances", instances}}));
    EXPECT_EQ(res.result_int(), 200) << res.body();
    answer = json::parse(res.body()).as_object();
    double max_diff = 0.0;
    const auto& predictions = answer.at("predictions").as_array();
    EXPECT_EQ(predictions.size(), kRows);
    for (size_t i = 0; i < predictions.size(); ++i) {
      const double score = predictions[i].at("score").to_number<double>();
      max_diff = std::max(max_diff, std::fabs(score - velocity.scores[i]));
    }
    return max_diff;
  };
  auto predict_default = [&] {
    auto res = http.request(
        bhttp::verb::post, "/predict",
        json::serialize(json::object{{"instances", json::array{json::value_from(ref_.rows[0])}}}));
    EXPECT_EQ(res.result_int(), 200) << res.body();
    return json::parse(res.body()).as_object();
  };
  json::object before;
  EXPECT_LE(score_velocity(before), 1e-5) << "fraud_velocity's scores differ from PyTorch's";
  EXPECT_EQ(before.at("model_name").as_string(), "fraud_velocity");
  json::object plain = predict_default();
  EXPECT_EQ(plain.at("model_name").as_string(), "fraud_mlp");
  EXPECT_NEAR(plain.at("predictions").as_array()[0].at("score").to_number<double>(), ref_.scores[0],
              1e-5);
  auto infer = http.request(
      bhttp::verb::post, "/v2/models/fraud_velocity/infer",
      json::serialize(json::object{
          {"inputs", json::array{json::object{{"name", "features"},
                                              {"shape", json::array{1, velocity.rows[0].size()}},
                                              {"datatype", "FP32"},
                                              {"data", json::value_from(velocity.rows[0])}}}}}));
  ASSERT_EQ(infer.result_int(), 200) << infer.body();
  EXPECT_NEAR(json::parse(infer.body())
                  .at("outputs")
                  .as_array()[0]
                  .at("data")
                  .as_array()[0]
                  .to_number<double>(),
              velocity.scores[0], 1e-5);

  // On the stream: the default model, as before.
  constexpr size_t kEvents = 200;
  produce("two-", 0, kEvents);
  auto scores =
      testing::read_distinct_keys(cluster_->bootstrap(), "scores", kEvents, milliseconds(60000));
  ASSERT_EQ(scores.size(), kEvents);
  for (const auto& r : scores) {
    ASSERT_EQ(testing::json_string(r.value, "model_name"), "fraud_mlp") << r.value;
    const size_t i = std::stoul(r.key.substr(4));
    EXPECT_NEAR(testing::json_number(r.value, "score"), ref_.scores[i % ref_.rows.size()], 1e-5);
  }

  // A new version of fraud_mlp: the default moves to it, fraud_velocity stays as it was.
  add_version_2();
  ASSERT_TRUE(
      testing::wait_until([&] { return predict_default().at("model_version").as_string() == "2"; },
                          milliseconds(30000)))
      << "fraud_mlp version 2 was never served";
  json::object after;
  EXPECT_LE(score_velocity(after), 1e-5);
  EXPECT_EQ(after.at("model_version").as_string(), "1");
  // The same version's scores (within float rounding: batches of other sizes may sum the
  // products in another order).
  for (size_t i = 0; i < kRows; ++i) {
    EXPECT_NEAR(after.at("predictions").as_array()[i].at("score").to_number<double>(),
                before.at("predictions").as_array()[i].at("score").to_number<double>(), 1e-6);
  }
  EXPECT_EQ(service->batcher().model_info(1)->version, "1");
  // Each model's figures under its own label.
  EXPECT_EQ(service->registry()
                .counter("vigil_requests_scored_total", "",
                         {{"origin", "http"}, {"model", "fraud_velocity"}})
                .value(),
            2 * kRows + 1);
  EXPECT_GE(
      service->registry()
          .counter("vigil_requests_scored_total", "", {{"origin", "kafka"}, {"model", "fraud_mlp"}})
          .value(),
      kEvents);
  service->stop();
}

TEST_F(ModelLifecycleTest,
       EachTopicOfARouteIsScoredByItsModelDeliveredToItsOutputAndCommittedApart) {
  // kafka.routes: raw transactions on transactions.raw scored by fraud_velocity (features
  // computed in the stream) into scores.velocity; transactions (ready-made features) by
  // fraud_mlp, the default, into scores, as before.
  add_fraud_velocity();
  config::AppConfig c = config();
  c.model.also_serve = "fraud_velocity";
  c.kafka.routes = "transactions.raw=fraud_velocity:scores.velocity";
  testing::enable_test_http(c);
  auto service = start(c);
  ASSERT_NE(service, nullptr);
  ASSERT_EQ(service->sources().size(), 2u);
  const std::string bootstrap = cluster_->bootstrap();

  constexpr size_t kRaw = 300, kEvents = 200;
  const std::vector<testing::RawTx> txs = testing::make_raw_transactions(kRaw, 25, 10, 11, "raw-");
  ASSERT_TRUE(
      testing::produce_all(bootstrap, "transactions.raw", testing::keyed_by_customer(txs, 0, kRaw))
          .ok());
  produce("feat-", 0, kEvents);
  ASSERT_TRUE(testing::produce_all(bootstrap, "transactions.raw", {{"bad-raw", "not json"}}).ok());

  // transactions.raw: every score by fraud_velocity, of the features a brute-force reference
  // computes from the produced log.
  const auto velocity =
      testing::read_distinct_keys(bootstrap, "scores.velocity", kRaw, milliseconds(60000));
  ASSERT_EQ(velocity.size(), kRaw);
  auto spec = features::load_feature_spec(kSource + "/models/fraud_velocity/features.yaml");
  ASSERT_TRUE(spec.ok()) << spec.error();
  const std::vector<std::string> names = spec->output_names();
  EXPECT_EQ(testing::check_feature_records(velocity, txs, names, spec->hash()), kRaw);
  // ... and each score is fraud_velocity's score of those features: the same rows scored again
  // over HTTP, where the model answers as PyTorch does (checked here on its reference rows).
  testing::HttpClient http(static_cast<uint16_t>(service->http_port()));
  auto predict_velocity = [&](const json::array& instances) {
    auto res = http.request(bhttp::verb::post, "/predict?model=fraud_velocity",
                            json::serialize(json::object{{"instances", instances}}));
    EXPECT_EQ(res.result_int(), 200) << res.body();
    std::vector<double> scores;
    const json::value answer = json::parse(res.body());
    for (const auto& p : answer.at("predictions").as_array()) {
      scores.push_back(p.at("score").to_number<double>());
    }
    return scores;
  };
  const testing::ReferenceData reference =
      testing::load_reference("tests/data/fraud_velocity_v1_reference.json");
  json::array reference_rows;
  for (size_t i = 0; i < 32; ++i) reference_rows.push_back(json::value_from(reference.rows[i]));
  const std::vector<double> reference_scores = predict_velocity(reference_rows);
  ASSERT_EQ(reference_scores.size(), 32u);
  for (size_t i = 0; i < 32; ++i) EXPECT_NEAR(reference_scores[i], reference.scores[i], 1e-5);
  json::array streamed_rows;
  std::vector<double> streamed_scores;
  for (const auto& r : velocity) {
    const json::object score = json::parse(r.value).as_object();
    ASSERT_EQ(score.at("model_name").as_string(), "fraud_velocity") << r.value;
    json::array row;
    for (const std::string& n : names) row.push_back(score.at("features").at(n));
    streamed_rows.push_back(std::move(row));
    streamed_scores.push_back(score.at("score").to_number<double>());
  }
  const std::vector<double> again = predict_velocity(streamed_rows);
  ASSERT_EQ(again.size(), kRaw);
  for (size_t i = 0; i < kRaw; ++i) {
    EXPECT_NEAR(streamed_scores[i], again[i], 1e-6) << velocity[i].value;
  }

  // transactions: fraud_mlp's scores, as before, and none of the other topic's.
  const auto scores =
      testing::read_distinct_keys(bootstrap, "scores", kEvents, milliseconds(60000));
  ASSERT_EQ(scores.size(), kEvents);
  for (const auto& r : scores) {
    ASSERT_EQ(testing::json_string(r.value, "model_name"), "fraud_mlp") << r.value;
    ASSERT_EQ(r.key.rfind("feat-", 0), 0u) << r.key;
    const size_t i = std::stoul(r.key.substr(5));
    EXPECT_NEAR(testing::json_number(r.value, "score"), ref_.scores[i % ref_.rows.size()], 1e-5);
  }
  // The bad record of transactions.raw is dead-lettered naming its topic.
  const auto dlq = testing::read_topic(
      bootstrap, "transactions.dlq",
      [](const std::vector<testing::TestRecord>& got) {
        return std::any_of(got.begin(), got.end(),
                           [](const testing::TestRecord& r) { return r.key == "bad-raw"; });
      },
      milliseconds(30000));
  auto letter = std::find_if(dlq.begin(), dlq.end(),
                             [](const testing::TestRecord& r) { return r.key == "bad-raw"; });
  ASSERT_NE(letter, dlq.end());
  EXPECT_EQ(letter->headers.at("vigil.source_topic"), "transactions.raw");
  EXPECT_EQ(letter->headers.at("vigil.error"), "malformed_json");
  // Each topic's offsets are committed under its own group, every record delivered.
  const std::string group = c.kafka.group_id;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        return testing::committed_sum(bootstrap, group + ".transactions.raw", "transactions.raw",
                                      4) == static_cast<int64_t>(kRaw + 1) &&
               testing::committed_sum(bootstrap, group, "transactions", 6) ==
                   static_cast<int64_t>(kEvents);
      },
      milliseconds(30000)))
      << testing::committed_sum(bootstrap, group + ".transactions.raw", "transactions.raw", 4)
      << " and " << testing::committed_sum(bootstrap, group, "transactions", 6) << " committed";
  // Each route's consumer figures under its topic (a record consumed again after a rebalance
  // would count twice: at least).
  EXPECT_GE(service->registry()
                .counter("vigil_kafka_consumed_total", "", {{"topic", "transactions.raw"}})
                .value(),
            kRaw + 1);
  EXPECT_GE(service->registry()
                .counter("vigil_kafka_consumed_total", "", {{"topic", "transactions"}})
                .value(),
            kEvents);
  service->stop();
}

TEST_F(ModelLifecycleTest, ARouteToAModelNotServedRefusesTheStartNamingIt) {
  config::AppConfig c = config();
  c.model.also_serve = "*";  // every model of the repository: fraud_mlp alone here
  c.kafka.routes = "transactions.raw=fraud_velocity";
  auto s = app::Service::create(c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("kafka.routes: 'transactions.raw' is scored by 'fraud_velocity', "
                           "which is not a model served"),
            std::string::npos)
      << s.error();
}

TEST_F(ModelLifecycleTest, AModelServedBesideTheDefaultThatCannotLoadRefusesTheStartNamingIt) {
  fs::create_directories(repo_ / "broken" / "1");
  std::ofstream(repo_ / "broken" / "1" / "model.pt") << "not a model";
  config::AppConfig c = config();
  c.kafka.enabled = false;
  c.model.also_serve = "missing,broken";
  auto s = app::Service::create(c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("model missing"), std::string::npos) << s.error();
  EXPECT_NE(s.error().find("broken"), std::string::npos) << s.error();
}

TEST_F(ModelLifecycleTest, AModelBesideTheDefaultIsPinnedAndShadowedByItsOwnSettings) {
  for (const char* f : {"model.yaml", "features.yaml", "1/model.pt"}) {
    fs::create_directories((repo_ / "fraud_velocity" / f).parent_path());
    fs::copy_file(kSource + "/models/fraud_velocity/" + f, repo_ / "fraud_velocity" / f);
  }
  for (const char* v : {"2", "3"}) {  // newer versions (the same file)
    fs::create_directories(repo_ / "fraud_velocity" / v);
    fs::copy_file(kSource + "/models/fraud_velocity/1/model.pt",
                  repo_ / "fraud_velocity" / v / "model.pt");
  }
  config::AppConfig c = config();
  c.kafka.enabled = false;
  c.model.also_serve = "fraud_velocity";
  c.model.also_versions = "fraud_velocity=1";
  c.model.also_shadow_versions = "fraud_velocity=2";
  testing::enable_test_http(c);
  auto service = start(c);
  ASSERT_NE(service, nullptr);
  EXPECT_EQ(service->batcher().model_info(0)->version, "1");  // fraud_mlp: its highest
  EXPECT_EQ(service->batcher().model_info(1)->version, "1") << "pinned below its highest, 3";
  ASSERT_NE(service->batcher().shadow_info(1), nullptr);
  EXPECT_EQ(service->batcher().shadow_info(1)->version, "2");
  EXPECT_EQ(service->batcher().shadow_info(0), nullptr);
  testing::HttpClient http(static_cast<uint16_t>(service->http_port()));
  auto res = http.request(bhttp::verb::get, "/model/info?model=fraud_velocity");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  EXPECT_EQ(json::parse(res.body()).at("shadow").at("version").as_string(), "2");
  service->stop();

  c.model.also_versions = "fraud_terminal=1";  // not served
  auto refused = app::Service::create(c);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("'fraud_terminal' is not a model served"), std::string::npos)
      << refused.error();
}

TEST_F(ModelLifecycleTest, TheRepositoryEndpointsAnswerInTheOpenInferenceProtocolShapes) {
  config::AppConfig c = config();
  c.model.reload_interval = milliseconds(0);  // only the API changes what is served
  c.kafka.enabled = false;
  testing::enable_test_http(c);
  c.http.admin_token = "admin-token";  // the repository API is off without one
  auto service = start(c);
  ASSERT_NE(service, nullptr);
  add_version_2();
  testing::HttpClient http(static_cast<uint16_t>(service->http_port()));
  auto post = [&](const std::string& target, const std::string& body = "") {
    return http.request(bhttp::verb::post, target, body,
                        {{"Authorization", "Bearer " + c.http.admin_token}});
  };

  auto res = post("/v2/repository/index");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  json::array index = json::parse(res.body()).as_array();
  ASSERT_EQ(index.size(), 2u) << res.body();
  EXPECT_EQ(index[0].at("name").as_string(), "fraud_mlp");
  EXPECT_EQ(index[0].at("version").as_string(), "2");
  EXPECT_EQ(index[0].at("state").as_string(), "UNAVAILABLE");
  EXPECT_EQ(index[1].at("version").as_string(), "1");
  EXPECT_EQ(index[1].at("state").as_string(), "READY");
  EXPECT_EQ(index[1].at("reason").as_string(), "serving");
  res = post("/v2/repository/index", R"({"ready": true})");
  EXPECT_EQ(json::parse(res.body()).as_array().size(), 1u) << res.body();

  res = post("/v2/repository/models/fraud_mlp/load", R"({"parameters": {"version": "2"}})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  EXPECT_EQ(json::parse(res.body()).at("name").as_string(), "fraud_mlp");
  res = http.request(bhttp::verb::get, "/model/info");
  EXPECT_EQ(json::parse(res.body()).at("version").as_string(), "2") << res.body();
  res = http.request(bhttp::verb::get, "/v2/models/fraud_mlp");
  EXPECT_EQ(json::parse(res.body()).at("version").as_string(), "2") << res.body();
  EXPECT_EQ(json::parse(res.body()).at("versions").as_array().size(), 2u) << res.body();
  res = post(
      "/predict",
      json::serialize(json::object{{"instances", json::array{json::value_from(ref_.rows[0])}}}));
  EXPECT_EQ(json::parse(res.body()).at("model_version").as_string(), "2") << res.body();

  res = post("/v2/repository/models/fraud_mlp/load",
             R"({"parameters": {"version": 1, "shadow": true}})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  res = http.request(bhttp::verb::get, "/model/info");
  EXPECT_EQ(json::parse(res.body()).at("shadow").at("version").as_string(), "1") << res.body();
  res = post("/v2/repository/models/fraud_mlp/unload", R"({"parameters": {"version": "1"}})");
  ASSERT_EQ(res.result_int(), 200) << res.body();

  res = post("/v2/repository/models/nope/load");
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_NE(res.body().find("model 'nope' not found"), std::string::npos) << res.body();
  res = post("/v2/repository/models/fraud_mlp/load", R"({"parameters": {"version": "9"}})");
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_NE(res.body().find("no version '9'"), std::string::npos) << res.body();
  res = post("/v2/repository/models/fraud_mlp/load", R"({"parameters": {"version": [1]}})");
  EXPECT_EQ(res.result_int(), 422) << res.body();
  res = post("/v2/repository/models/fraud_mlp/load", "{not json");
  EXPECT_EQ(res.result_int(), 400) << res.body();
  res = http.request(bhttp::verb::get, "/v2/repository/index");
  EXPECT_EQ(res.result_int(), 405);

  // A broken version: 400 with the reason, version 2 still served.
  fs::create_directories(repo_ / "fraud_mlp" / "3");
  std::ofstream(repo_ / "fraud_mlp" / "3" / "model.pt") << "not a model";
  res = post("/v2/repository/models/fraud_mlp/load", R"({"parameters": {"version": "3"}})");
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_NE(res.body().find("cannot load TorchScript model"), std::string::npos) << res.body();
  EXPECT_EQ(service->batcher().model_info()->version, "2");
  EXPECT_EQ(
      service->registry()
          .counter("vigil_model_loads_total", "", {{"result", "refused"}, {"model", "fraud_mlp"}})
          .value(),
      1.0);
  service->stop();
}

}  // namespace
}  // namespace vigil

// With the real TorchScript model (models/fraud_mlp): an HTTP score (/predict and KServe infer)
// equals the Python reference score and the streaming score (the same event decoded by the
// Kafka path's EventDecoder and scored through the same queue and batcher).
#include <gtest/gtest.h>
#include <simdjson.h>

#include <future>
#include <map>

#include "codec/event_decoder.h"
#include "http/http_test_util.h"
#include "http/router.h"
#include "scoring/model_repository.h"
#include "scoring/torch_model.h"
#include "support/kafka_test_util.h"

namespace vigil::http::test {
namespace {

const std::string kSource = VIGIL_SOURCE_DIR;

using testing::load_reference;
using testing::ReferenceData;

std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string named_features(const ReferenceData& ref, size_t i) {
  std::string s = "{";
  for (size_t j = 0; j < ref.feature_names.size(); ++j) {
    s += (j ? ",\"" : "\"") + ref.feature_names[j] + "\":" + number(ref.rows[i][j]);
  }
  return s + "}";
}

struct TorchStack {
  TorchStack() : queue({65536, 0.8, 0.5}, SteadyClock::instance(), registry) {
    auto info = scoring::load_model_info(kSource + "/models", "fraud_mlp");
    EXPECT_TRUE(info.ok()) << info.error();
    auto model = scoring::load_torch_model(*info, {"cpu", 1, 8});
    EXPECT_TRUE(model.ok()) << model.error();
    batcher = std::make_unique<scoring::Batcher>(
        scoring::BatcherConfig{64, std::chrono::microseconds(500), 2}, queue,
        std::shared_ptr<scoring::Model>(std::move(*model)), SteadyClock::instance(), registry);
    batcher->start();
    HttpDeps deps;
    deps.queue = &queue;
    deps.registry = &registry;
    deps.model_info = [this](size_t i) { return batcher->model_info(i); };
    router = std::make_unique<Router>(HttpConfig{}, deps);
  }
  ~TorchStack() { batcher->stop(std::chrono::milliseconds(5000)); }

  metrics::Registry registry;
  scoring::ScoringQueue queue;
  std::unique_ptr<scoring::Batcher> batcher;
  std::unique_ptr<Router> router;
};

TEST(HttpModelParity, HttpScoresEqualTheReferenceAndTheStreamingScores) {
  TorchStack t;
  const ReferenceData ref = load_reference();
  ASSERT_EQ(ref.feature_names, t.batcher->model_info()->input_names);
  const size_t n = ref.rows.size();
  ASSERT_GE(n, 100u);

  // /predict, named features with transaction ids.
  std::string body = R"({"instances":[)";
  for (size_t i = 0; i < n; ++i) {
    std::string inst = named_features(ref, i);
    inst.insert(1, "\"transaction_id\":\"r" + std::to_string(i) + "\",");
    body += (i ? "," : "") + inst;
  }
  body += "]}";
  auto res = call(*t.router, bhttp::verb::post, "/predict", body);
  ASSERT_EQ(res.result_int(), 200u) << res.body().substr(0, 300);
  auto v = parse_json(res.body());
  EXPECT_EQ(v.at("model_name").as_string(), "fraud_mlp");
  const auto& predictions = v.at("predictions").as_array();
  ASSERT_EQ(predictions.size(), n);
  std::vector<double> http_scores(n);
  double max_diff = 0;
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(predictions[i].at("transaction_id").as_string(), "r" + std::to_string(i));
    http_scores[i] = predictions[i].at("score").to_number<double>();
    max_diff = std::max(max_diff, std::abs(http_scores[i] - ref.scores[i]));
  }
  EXPECT_LE(max_diff, 1e-5) << "HTTP vs Python reference";

  // KServe infer, nested data in model order.
  std::string data = "[";
  for (size_t i = 0; i < n; ++i) {
    data += i ? ",[" : "[";
    for (size_t j = 0; j < ref.feature_names.size(); ++j)
      data += (j ? "," : "") + number(ref.rows[i][j]);
    data += "]";
  }
  data += "]";
  res = call(*t.router, bhttp::verb::post, "/v2/models/fraud_mlp/infer",
             R"({"inputs":[{"name":"features","datatype":"FP32","shape":[)" + std::to_string(n) +
                 ",30],\"data\":" + data + "}]}");
  ASSERT_EQ(res.result_int(), 200u) << res.body().substr(0, 300);
  const auto infer = parse_json(res.body());
  const auto& out = infer.at("outputs").as_array()[0].at("data").as_array();
  ASSERT_EQ(out.size(), n);
  for (size_t i = 0; i < n; ++i) {
    EXPECT_NEAR(out[i].to_number<double>(), http_scores[i], 1e-6) << "row " << i;
  }

  // The streaming path: the Kafka event, decoded by the Kafka decoder, same queue and batcher.
  codec::FeatureSchema schema(ref.feature_names);
  codec::EventDecoder decoder(schema, 1 << 20);
  std::vector<std::promise<float>> promises(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string event = R"({"transaction_id":"r)" + std::to_string(i) + R"(","features":)" +
                              named_features(ref, i) + "}";
    codec::DecodedEvent decoded;
    auto st = decoder.decode(event, decoded);
    ASSERT_TRUE(st.ok()) << st.message;
    scoring::ScoreRequest r;
    r.id = decoded.transaction_id;
    r.features = decoded.features;
    r.origin = scoring::Origin::kKafka;
    r.done = [&promises, i](scoring::ScoreRequest&, const scoring::ScoreOutcome& o) {
      promises[i].set_value(o.status.ok() ? o.score : -1.0f);
    };
    ASSERT_EQ(t.queue.try_push(r, scoring::Priority::kNormal),
              scoring::ScoringQueue::PushResult::kOk);
  }
  for (size_t i = 0; i < n; ++i) {
    auto f = promises[i].get_future();
    ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_NEAR(f.get(), http_scores[i], 1e-6) << "row " << i << ": streaming vs HTTP";
  }
}

}  // namespace
}  // namespace vigil::http::test

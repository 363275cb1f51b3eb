// ScoringCall's answer when a model swap splits a request across versions.
#include "http/scoring_call.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

namespace vigil::http {
namespace {

std::shared_ptr<const scoring::ModelInfo> model(const std::string& version) {
  auto m = std::make_shared<scoring::ModelInfo>();
  m->name = "fraud_mlp";
  m->version = version;
  m->output_name = "score";
  m->input_names = {"a", "b"};
  return m;
}

scoring::ScoreOutcome scored(float score, std::shared_ptr<const scoring::ModelInfo> m) {
  scoring::ScoreOutcome o;
  o.score = score;
  o.is_fraud = score >= 0.5f;
  o.model = std::move(m);
  return o;
}

struct Answer {
  unsigned status = 0;
  std::string body;
};

std::shared_ptr<ScoringCall> call(ScoringCall::Kind kind, Answer& answer) {
  auto c = std::make_shared<ScoringCall>(
      kind, 3,
      [&answer](Response res) {
        answer.status = res.result_int();
        answer.body = res.body();
      },
      nullptr);
  if (kind == ScoringCall::Kind::kPredict) c->transaction_ids.assign(3, "");
  return c;
}

TEST(ScoringCall, APredictSplitAcrossVersionsNamesEachInstancesVersion) {
  Answer a;
  auto c = call(ScoringCall::Kind::kPredict, a);
  c->complete(0, scored(0.1f, model("1")));
  c->complete(1, scored(0.2f, model("1")));
  c->complete(2, scored(0.9f, model("2")));  // scored after the swap
  ASSERT_EQ(a.status, 200u) << a.body;
  EXPECT_NE(a.body.find(R"("score":0.1,"is_fraud":false,"model_version":"1")"), std::string::npos)
      << a.body;
  EXPECT_NE(a.body.find(R"("score":0.9,"is_fraud":true,"model_version":"2")"), std::string::npos)
      << a.body;
}

TEST(ScoringCall, APredictScoredByOneVersionNamesItOnceAtTheTop) {
  Answer a;
  auto c = call(ScoringCall::Kind::kPredict, a);
  for (size_t i = 0; i < 3; ++i) c->complete(i, scored(0.25f, model("7")));
  ASSERT_EQ(a.status, 200u) << a.body;
  EXPECT_EQ(a.body.find("\"model_version\":\"7\""), a.body.rfind("\"model_version\":\"7\""))
      << "the version is repeated per instance: " << a.body;
  EXPECT_NE(a.body.find(R"("model_name":"fraud_mlp","model_version":"7")"), std::string::npos)
      << a.body;
}

TEST(ScoringCall, AnInferSplitAcrossVersionsIsRefusedNotMislabelled) {
  // One output tensor carries one model_version: it must never name a version that did not
  // score every row.
  Answer a;
  auto c = call(ScoringCall::Kind::kInfer, a);
  c->complete(0, scored(0.1f, model("1")));
  c->complete(1, scored(0.2f, model("2")));
  c->complete(2, scored(0.3f, model("2")));
  EXPECT_EQ(a.status, 503u) << a.body;
  EXPECT_NE(a.body.find("model version changed"), std::string::npos) << a.body;
}

}  // namespace
}  // namespace vigil::http

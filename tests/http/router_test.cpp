// The HTTP routes without sockets: Router over a real ScoringQueue + Batcher with a fake model.
#include "http/router.h"

#include <gtest/gtest.h>

#include <boost/beast/http/write.hpp>
#include <set>
#include <sstream>

#include "http/http_test_util.h"

namespace vigil::http::test {
namespace {

using bhttp::verb;

std::string predict_body(const std::vector<std::string>& instances) {
  std::string s = R"({"instances":[)";
  for (size_t i = 0; i < instances.size(); ++i) s += (i ? "," : "") + instances[i];
  return s + "]}";
}

std::string infer_body(const std::string& data, const std::string& shape = "[1,30]",
                       const std::string& extra = "") {
  return R"({"id":"req-7",)" + extra + R"("inputs":[{"name":"features","shape":)" + shape +
         R"(,"datatype":"FP32","data":)" + data + "}]}";
}

std::string flat_data(const std::vector<std::vector<float>>& rows) {
  std::string s = "[";
  bool first = true;
  for (const auto& r : rows) {
    for (float v : r) {
      s += (first ? "" : ",") + std::to_string(v);
      first = false;
    }
  }
  return s + "]";
}

struct RouterTest : ::testing::Test {
  explicit RouterTest(StackOptions o = {}, HttpConfig c = {})
      : stack(std::make_unique<ScoringStack>(o)), config(c) {
    router = std::make_unique<Router>(config, stack->deps());
  }
  std::unique_ptr<ScoringStack> stack;
  HttpConfig config;
  std::unique_ptr<Router> router;

  Response get(const std::string& target) { return call(*router, verb::get, target); }
  Response post(const std::string& target, const std::string& body,
                const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return call(*router, verb::post, target, body, headers);
  }
};

// ---------------------------------------------------------------------------------------------
// Route matching

TEST(MatchRoute, MatchesEveryTemplateAndCapturesModelAndVersion) {
  struct Case {
    const char* target;
    RouteId id;
    const char* model;
    const char* version;
  } cases[] = {
      {"/predict", RouteId::kPredict, "", ""},
      {"/predict?verbose=1", RouteId::kPredict, "", ""},
      {"/v2", RouteId::kV2Server, "", ""},
      {"/v2/health/live", RouteId::kV2Live, "", ""},
      {"/v2/health/ready", RouteId::kV2Ready, "", ""},
      {"/v2/models/m1", RouteId::kV2Model, "m1", ""},
      {"/v2/models/m1/ready", RouteId::kV2ModelReady, "m1", ""},
      {"/v2/models/m1/versions/3", RouteId::kV2ModelVersion, "m1", "3"},
      {"/v2/models/m1/versions/3/ready", RouteId::kV2ModelVersionReady, "m1", "3"},
      {"/v2/models/m1/infer", RouteId::kV2Infer, "m1", ""},
      {"/v2/models/m1/versions/3/infer", RouteId::kV2VersionInfer, "m1", "3"},
      {"/health", RouteId::kHealth, "", ""},
      {"/ready", RouteId::kReady, "", ""},
      {"/model/info", RouteId::kModelInfo, "", ""},
      {"/metrics", RouteId::kMetrics, "", ""},
      {"/openapi.json", RouteId::kOpenApi, "", ""},
      {"/recommend", RouteId::kRecommend, "", ""},
      {"/recommend/x", RouteId::kUnmatched, "", ""},
      {"/v2/repository/index", RouteId::kRepositoryIndex, "", ""},
      {"/v2/repository/models/m1/load", RouteId::kRepositoryLoad, "m1", ""},
      {"/v2/repository/models/m1/unload", RouteId::kRepositoryUnload, "m1", ""},
      {"/v2/repository/models/m1/drop", RouteId::kUnmatched, "", ""},
      {"/v1/scores/t-1", RouteId::kScoreLookup, "", ""},
      {"/v1/scores/a%2Fb", RouteId::kScoreLookup, "", ""},
      {"/v1/scores/bad%zz", RouteId::kUnmatched, "", ""},
      {"/v1/scores", RouteId::kUnmatched, "", ""},
      {"/", RouteId::kLivePage, "", ""},
      {"/ui", RouteId::kLivePage, "", ""},
      {"/v1/events", RouteId::kEvents, "", ""},
      {"/v1/events/x", RouteId::kUnmatched, "", ""},
      {"/predictx", RouteId::kUnmatched, "", ""},
      {"/v2/models", RouteId::kUnmatched, "", ""},
      {"/v2/models/m1/versions", RouteId::kUnmatched, "", ""},
      {"/v2/models/m1/explain", RouteId::kUnmatched, "", ""},
      {"/v2/models/m1/versions/3/infer/x", RouteId::kUnmatched, "", ""},
  };
  for (const auto& c : cases) {
    auto m = match_route(c.target);
    EXPECT_EQ(m.id, c.id) << c.target;
    EXPECT_EQ(m.model, c.model) << c.target;
    EXPECT_EQ(m.version, c.version) << c.target;
  }
}

// ---------------------------------------------------------------------------------------------
// POST /predict

TEST_F(RouterTest, PredictScoresArrayInstancesInOrder) {
  const auto a = row_values(0.5f), b = row_values(-2.0f);
  auto res = post("/predict", predict_body({array_instance(a), array_instance(b)}));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_EQ(res[bhttp::field::content_type], "application/json");
  auto v = parse_json(res.body());
  EXPECT_EQ(v.at("model_name").as_string(), "fake");
  EXPECT_EQ(v.at("model_version").as_string(), "1");
  const auto& p = v.at("predictions").as_array();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_NEAR(p[0].at("score").to_number<double>(), expected_score(a), 1e-6);
  EXPECT_NEAR(p[1].at("score").to_number<double>(), expected_score(b), 1e-6);
  EXPECT_EQ(p[0].at("is_fraud").as_bool(), expected_score(a) >= 0.5f);
  EXPECT_EQ(p[1].at("is_fraud").as_bool(), expected_score(b) >= 0.5f);
  EXPECT_FALSE(p[0].as_object().contains("transaction_id"));
}

TEST_F(RouterTest, PredictScoresNamedInstancesEchoesTransactionIdsAndPublishesThem) {
  const auto a = row_values(0.25f), b = row_values(1.0f);
  auto res = post("/predict",
                  predict_body({named_instance(a, "tx-1"), named_instance(b), array_instance(a)}));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  auto v = parse_json(res.body());
  const auto& p = v.at("predictions").as_array();
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].at("transaction_id").as_string(), "tx-1");
  EXPECT_FALSE(p[1].as_object().contains("transaction_id"));
  const double score0 = p[0].at("score").to_number<double>();
  EXPECT_NEAR(score0, expected_score(a), 1e-6);
  EXPECT_NEAR(p[1].at("score").to_number<double>(), expected_score(b), 1e-6);
  EXPECT_DOUBLE_EQ(p[2].at("score").to_number<double>(), score0);  // same row, both forms

  // Every row reaches the delivery stage (the one exit); only the instance with a
  // transaction_id leaves vigil from there (Redis, the scores topic), keyed by it.
  // The completion runs right after the answer, on the worker.
  ASSERT_TRUE(vigil::testing::wait_until([&] { return !stack->sink.records().empty(); },
                                         std::chrono::seconds(5)));
  auto records = stack->sink.records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].transaction_id, "tx-1");
  EXPECT_EQ(records[0].model_name, "fake");
  EXPECT_EQ(records[0].model_version, "1");
  EXPECT_FLOAT_EQ(records[0].score, static_cast<float>(score0));
}

TEST_F(RouterTest, PredictRejectsBadBodiesNamingTheField) {
  const auto row = row_values(0.1f);
  std::string missing_v3 = named_instance(row);
  missing_v3.replace(missing_v3.find("\"f3\":"), std::string("\"f3\":0.130000,").size(), "");
  struct Case {
    std::string body;
    unsigned status;
    std::string message_has;
  } cases[] = {
      {"{\"instances\": [[1,2", 400, "malformed JSON"},
      {"not json", 400, "malformed JSON"},
      {"", 400, "malformed JSON"},
      {predict_body({array_instance(row)}) + " trailing", 400, "malformed JSON"},
      {predict_body({array_instance(row)}) + " {}", 400, "malformed JSON"},
      {"nonsense", 400, "malformed JSON"},
      {"42", 422, "JSON object"},
      {"[1,2,3]", 422, "JSON object"},
      {"{}", 422, "missing field 'instances'"},
      {"{\"instances\": {}}", 422, "instances must be an array"},
      {"{\"instances\": []}", 422, "must not be empty"},
      {predict_body({array_instance(row_values(0, 29))}), 422, "instances[0] must have 30 values"},
      {predict_body({array_instance(row), "[1,2]"}), 422, "instances[1] must have 30 values"},
      {predict_body({"\"abc\""}), 422, "instances[0] must be an array"},
      {predict_body({"[\"x\"]"}), 422, "instances[0][0] must be a number, got string"},
      {predict_body({missing_v3}), 422, "instances[0]: missing feature 'f3'"},
      {predict_body({"{\"bogus\": 1}"}), 422, "instances[0]: unknown feature 'bogus'"},
      {predict_body({"{\"f0\": 1, \"f0\": 2}"}), 422, "instances[0]: duplicate feature 'f0'"},
      {predict_body({"{\"f0\": NaN}"}), 422, "instances[0]: feature 'f0' is NaN or Infinity"},
      {predict_body({"{\"f0\": \"1\"}"}), 422, "feature 'f0' must be a number, got string"},
      {predict_body({"{\"f0\": 1e300}"}), 422, "outside the float32 range"},
      {predict_body({"{\"transaction_id\": 5}"}), 422, "instances[0].transaction_id must be"},
      {predict_body({"{\"transaction_id\": \"\"}"}), 422, "instances[0].transaction_id must be"},
      {predict_body({"[NaN]"}), 422, "instances[0][0] is NaN or Infinity"},
  };
  for (const auto& c : cases) {
    auto res = post("/predict", c.body);
    EXPECT_EQ(res.result_int(), c.status) << c.body << " -> " << res.body();
    EXPECT_NE(error_of(res).find(c.message_has), std::string::npos)
        << "body: " << c.body << "\nerror: " << error_of(res);
  }
  EXPECT_TRUE(stack->sink.records().empty());
}

TEST_F(RouterTest, PredictUsesTheCodecWordsForArrayInstances) {
  auto res = post("/predict", predict_body({array_instance(row_values(0.1f)), "[1, true]"}));
  EXPECT_EQ(res.result_int(), 422u);
  EXPECT_EQ(error_of(res), "instances[1][1] must be a number, got boolean");
}

struct SmallLimitsRouterTest : RouterTest {
  static HttpConfig limits() {
    HttpConfig c;
    c.max_instances = 3;
    return c;
  }
  SmallLimitsRouterTest() : RouterTest({}, limits()) {}
};

TEST_F(SmallLimitsRouterTest, MoreInstancesThanMaxInstancesIs422) {
  const std::string r = array_instance(row_values(0.1f));
  EXPECT_EQ(post("/predict", predict_body({r, r, r})).result_int(), 200u);
  auto res = post("/predict", predict_body({r, r, r, r}));
  EXPECT_EQ(res.result_int(), 422u);
  EXPECT_NE(error_of(res).find("more than 3 instances"), std::string::npos) << res.body();
  auto infer = post("/v2/models/fake/infer",
                    infer_body("[" + r + "," + r + "," + r + "," + r + "]", "[4,30]"));
  EXPECT_EQ(infer.result_int(), 422u);
  EXPECT_NE(error_of(infer).find("at most 3"), std::string::npos) << infer.body();
}

// ---------------------------------------------------------------------------------------------
// KServe v2 infer

TEST_F(RouterTest, InferScoresFlatAndNestedDataAndEchoesTheId) {
  const auto a = row_values(0.3f), b = row_values(-0.7f);
  for (const std::string& data :
       {flat_data({a, b}), "[" + array_instance(a) + "," + array_instance(b) + "]"}) {
    for (const std::string target : {"/v2/models/fake/infer", "/v2/models/fake/versions/1/infer"}) {
      auto res = post(target, infer_body(data, "[2,30]"));
      ASSERT_EQ(res.result_int(), 200u) << res.body();
      auto v = parse_json(res.body());
      EXPECT_EQ(v.at("model_name").as_string(), "fake");
      EXPECT_EQ(v.at("model_version").as_string(), "1");
      EXPECT_EQ(v.at("id").as_string(), "req-7");
      const auto& out = v.at("outputs").as_array();
      ASSERT_EQ(out.size(), 1u);
      EXPECT_EQ(out[0].at("name").as_string(), "score");
      EXPECT_EQ(out[0].at("datatype").as_string(), "FP32");
      ASSERT_EQ(out[0].at("shape").as_array().size(), 1u);
      EXPECT_EQ(out[0].at("shape").as_array()[0].to_number<int>(), 2);
      const auto& d = out[0].at("data").as_array();
      ASSERT_EQ(d.size(), 2u);
      EXPECT_NEAR(d[0].to_number<double>(), expected_score(a), 1e-6);
      EXPECT_NEAR(d[1].to_number<double>(), expected_score(b), 1e-6);
    }
  }
  // Without an id nothing is echoed; a requested output by its name is fine.
  auto res = post("/v2/models/fake/infer",
                  R"({"inputs":[{"name":"features","shape":[1,30],"datatype":"FP32","data":)" +
                      flat_data({a}) + R"(}],"outputs":[{"name":"score"}]})");
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_FALSE(parse_json(res.body()).as_object().contains("id"));
}

TEST_F(RouterTest, InferRejectsBadTensorsNamingTheField) {
  const auto a = row_values(0.3f);
  const std::string one = flat_data({a});
  struct Case {
    std::string body;
    unsigned status;
    std::string message_has;
  } cases[] = {
      {"{\"inputs\": [", 400, "malformed JSON"},
      {"{}", 422, "missing field 'inputs'"},
      {"{\"inputs\": []}", 422, "exactly one tensor"},
      {"{\"inputs\": 3}", 422, "inputs must be an array"},
      {"{\"id\": 3, \"inputs\": []}", 422, "id must be a string"},
      {R"({"inputs":[{"name":"features","shape":[1,30],"datatype":"INT64","data":[1]}]})", 422,
       "inputs[0].datatype must be \"FP32\", got \"INT64\""},
      {R"({"inputs":[{"name":"x","shape":[1,30],"datatype":"FP32","data":)" + one + "}]}", 422,
       "inputs[0].name must be 'features', got 'x'"},
      {infer_body(one, "[30]"), 422, "inputs[0].shape must be [N, 30]"},
      {infer_body(one, "[1,29]"), 422, "inputs[0].shape must be [N, 30]"},
      {infer_body(one, "[0,30]"), 422, "N >= 1"},
      {infer_body(one, "[2,30]"), 422, "inputs[0].data has 30 values, shape [2, 30] needs 60"},
      {infer_body("[" + array_instance(a) + ",[1,2]]", "[2,30]"), 422,
       "inputs[0].data[1] has 2 values"},
      {infer_body("[" + array_instance(a) + "]", "[2,30]"), 422, "inputs[0].data has 1 rows"},
      {infer_body("[1, [2]]", "[1,30]"), 422, "mixes numbers and arrays"},
      {infer_body("[\"a\"]"), 422, "inputs[0].data[0] must be a number, got string"},
      {infer_body("[[1, NaN]]"), 422, "inputs[0].data[0][1] is NaN or Infinity"},
      {infer_body("[[1, -Infinity]]"), 422, "inputs[0].data[0][1] is NaN or Infinity"},
      {infer_body(one, "[1,30]", R"("outputs":[{"name":"prob"}],)"), 422,
       "outputs[0].name: unknown output 'prob'"},
      // Broken JSON after an output's name is read, found by the fuzzer: still a 400.
      {infer_body(one, "[1,30]", R"("outputs":[{"name":"score"[}],)"), 400, "malformed JSON"},
      {infer_body(one, "[1,30]", R"("outputs":[{"name":"score","parameters":{"a":}}],)"), 400,
       "malformed JSON in outputs[0].parameters"},
      {infer_body(one, "[1,30]", R"("outputs":[{"parameters":{}}],)"), 422,
       "outputs[0] must be an object with a string 'name'"},
      {R"({"inputs":[{"name":"features","datatype":"FP32","data":[1]}]})", 422,
       "missing field 'shape'"},
      {R"({"inputs":[{"name":"features","shape":[1,30],"data":[1]}]})", 422,
       "missing field 'datatype'"},
      {R"({"inputs":[{"name":"features","shape":[1,30],"datatype":"FP32"}]})", 422,
       "missing field 'data'"},
      {R"({"inputs":[{"name":"features","shape":[1,30],"datatype":"FP32","data":)" + one +
           "},{\"name\":\"features\"}]}",
       422, "exactly one tensor"},
  };
  for (const auto& c : cases) {
    auto res = post("/v2/models/fake/infer", c.body);
    EXPECT_EQ(res.result_int(), c.status) << c.body << " -> " << res.body();
    EXPECT_NE(error_of(res).find(c.message_has), std::string::npos)
        << "body: " << c.body << "\nerror: " << error_of(res);
  }
}

TEST_F(RouterTest, UnknownModelOrVersionIs404) {
  const std::string body = infer_body(flat_data({row_values(0.1f)}));
  for (const std::string target :
       {"/v2/models/other/infer", "/v2/models/fake/versions/2/infer", "/v2/models/other",
        "/v2/models/other/ready", "/v2/models/fake/versions/2",
        "/v2/models/fake/versions/2/ready"}) {
    auto res = target.find("infer") != std::string::npos ? post(target, body) : get(target);
    EXPECT_EQ(res.result_int(), 404u) << target << " -> " << res.body();
    EXPECT_FALSE(error_of(res).empty());
  }
}

// ---------------------------------------------------------------------------------------------
// Routing errors, auth, shutdown, overload

TEST_F(RouterTest, UnknownRouteIs404) {
  auto res = get("/nope");
  EXPECT_EQ(res.result_int(), 404u);
  EXPECT_EQ(error_of(res), "no route for GET /nope");
}

TEST_F(RouterTest, WrongMethodIs405AndNamesTheAllowedOne) {
  auto res = get("/predict");
  EXPECT_EQ(res.result_int(), 405u);
  EXPECT_EQ(res[bhttp::field::allow], "POST");
  EXPECT_NE(error_of(res).find("use POST"), std::string::npos);
  res = post("/health", "{}");
  EXPECT_EQ(res.result_int(), 405u);
  EXPECT_EQ(res[bhttp::field::allow], "GET");
  res = call(*router, verb::delete_, "/v2/models/fake/infer");
  EXPECT_EQ(res.result_int(), 405u);
}

struct AuthRouterTest : RouterTest {
  static HttpConfig with_token() {
    HttpConfig c;
    c.auth_token = "s3cret-token";
    return c;
  }
  AuthRouterTest() : RouterTest({}, with_token()) {}
};

TEST_F(AuthRouterTest, ScoringRoutesNeedTheBearerTokenOthersDoNot) {
  const std::string predict = predict_body({array_instance(row_values(0.1f))});
  const std::string infer = infer_body(flat_data({row_values(0.1f)}));
  for (const auto& headers : std::vector<std::vector<std::pair<std::string, std::string>>>{
           {},
           {{"Authorization", "Bearer wrong"}},
           {{"Authorization", "Bearer s3cret-toke"}},
           {{"Authorization", "Basic s3cret-token"}},
           {{"Authorization", "s3cret-token"}}}) {
    auto res = post("/predict", predict, headers);
    EXPECT_EQ(res.result_int(), 401u);
    EXPECT_EQ(res[bhttp::field::www_authenticate], "Bearer");
    EXPECT_EQ(error_of(res).find("s3cret"), std::string::npos);  // never echo a token
    EXPECT_EQ(post("/v2/models/fake/infer", infer, headers).result_int(), 401u);
  }
  const std::vector<std::pair<std::string, std::string>> good{
      {"Authorization", "Bearer s3cret-token"}};
  EXPECT_EQ(post("/predict", predict, good).result_int(), 200u);
  EXPECT_EQ(post("/v2/models/fake/infer", infer, good).result_int(), 200u);
  EXPECT_EQ(post("/predict", predict, {{"Authorization", "bearer s3cret-token"}}).result_int(),
            200u);
  for (const std::string target : {"/health", "/ready", "/metrics", "/v2", "/v2/models/fake",
                                   "/model/info", "/openapi.json"}) {
    EXPECT_EQ(get(target).result_int(), 200u) << target;
  }
}

TEST_F(RouterTest, WhileShuttingDownScoringIs503AndReadinessFails) {
  router->begin_shutdown();
  auto res = post("/predict", predict_body({array_instance(row_values(0.1f))}));
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  EXPECT_EQ(error_of(res), "server is shutting down");
  res = post("/v2/models/fake/infer", infer_body(flat_data({row_values(0.1f)})));
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");

  res = get("/ready");
  EXPECT_EQ(res.result_int(), 503u);
  auto v = parse_json(res.body());
  EXPECT_FALSE(v.at("ready").as_bool());
  EXPECT_EQ(v.at("failing").as_array()[0].as_string(), "server is shutting down");
  EXPECT_EQ(get("/v2/health/ready").result_int(), 503u);
  EXPECT_EQ(get("/v2/models/fake/ready").result_int(), 503u);
  EXPECT_EQ(get("/health").result_int(), 200u);  // still live
  EXPECT_EQ(get("/v2/health/live").result_int(), 200u);
}

TEST_F(RouterTest, ADegradationIsReportedByReadyWithoutFailingIt) {
  auto deps = stack->deps();
  deps.degradations = [] { return std::vector<std::string>{"redis: not connected"}; };
  Router degraded(config, deps);
  auto res = call(degraded, verb::get, "/ready");
  EXPECT_EQ(res.result_int(), 200u);
  auto v = parse_json(res.body());
  EXPECT_TRUE(v.at("ready").as_bool());
  EXPECT_EQ(v.at("degraded").as_array()[0].as_string(), "redis: not connected");
  EXPECT_EQ(call(degraded, verb::get, "/v2/health/ready").result_int(), 200u);
}

TEST_F(RouterTest, MalformedJsonInAnIgnoredKeyIs400NotScored) {
  std::string body = predict_body({array_instance(row_values(0.1f))});
  body.insert(body.size() - 1, ",\"meta\":[tru]");
  EXPECT_EQ(post("/predict", body).result_int(), 400u) << body;
  std::string infer = infer_body(flat_data({row_values(0.1f)}));
  infer.insert(infer.size() - 1, ",\"parameters\":nul");
  EXPECT_EQ(post("/v2/models/fake/infer", infer).result_int(), 400u) << infer;
}

TEST_F(RouterTest, ErrorBodiesAreValidUtf8WhateverTheTargetHolds) {
  auto res = get("/v2/models/caf\xe9/ready");
  EXPECT_EQ(res.result_int(), 404u);
  EXPECT_EQ(res.body().find('\xe9'), std::string::npos);  // lone Latin-1 byte replaced
  EXPECT_NE(res.body().find("caf\xEF\xBF\xBD"), std::string::npos) << res.body();
}

TEST_F(RouterTest, ClosedQueueIs503) {
  stack->queue.close();
  auto res = post("/predict", predict_body({array_instance(row_values(0.1f))}));
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
}

struct SlowModelRouterTest : RouterTest {
  static StackOptions slow() {
    StackOptions o;
    o.model.delay = std::chrono::milliseconds(200);
    o.queue = {4, 0.75, 0.5};
    o.batcher = {1, std::chrono::microseconds(0), 1};
    return o;
  }
  SlowModelRouterTest() : RouterTest(slow()) {}
};

TEST_F(SlowModelRouterTest, QueueFullIs503AndTheQueuedInstancesCompleteHarmlessly) {
  // One worker scoring one row at a time for 200 ms, 4 places in the queue: of 8 instances at
  // most 5 can be taken, so the request is refused as a whole.
  std::vector<std::string> eight(8, array_instance(row_values(0.1f)));
  auto res = post("/predict", predict_body(eight));
  EXPECT_EQ(res.result_int(), 503u) << res.body();
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  EXPECT_EQ(error_of(res), "scoring queue is full, retry later");
  // /ready says why while the queue is at its high watermark (3 of 4) or above: full at the
  // refusal, it stays there for at least one more 200 ms row.
  ASSERT_TRUE(stack->queue.above_high_watermark()) << stack->queue.depth();
  auto ready = get("/ready");
  EXPECT_EQ(ready.result_int(), 503u);
  EXPECT_NE(ready.body().find("queue:"), std::string::npos) << ready.body();
  // Those that were queued are scored and dropped; then the server answers normally.
  ASSERT_TRUE(
      testing::wait_until([&] { return stack->queue.depth() == 0; }, std::chrono::seconds(10)));
  res = post("/predict", predict_body({array_instance(row_values(0.1f))}));
  EXPECT_EQ(res.result_int(), 200u) << res.body();
}

TEST_F(RouterTest, AModelFailureIs500NamingTheInstance) {
  stack.reset();
  StackOptions o;
  o.model.poison = 7.0f;
  stack = std::make_unique<ScoringStack>(o);
  router = std::make_unique<Router>(config, stack->deps());
  auto poison = row_values(0.1f);
  poison[0] = 7.0f;
  auto res =
      post("/predict", predict_body({array_instance(row_values(0.1f)), array_instance(poison)}));
  EXPECT_EQ(res.result_int(), 500u);
  EXPECT_EQ(error_of(res), "instances[1] could not be scored: poison row");
}

TEST_F(RouterTest, WithoutAModelScoringAndModelRoutesAre503) {
  stack->model_loaded = false;
  for (const std::string target : {"/model/info", "/v2/models/fake", "/v2/models/fake/ready"}) {
    auto res = get(target);
    EXPECT_EQ(res.result_int(), 503u) << target;
    EXPECT_EQ(error_of(res), "no model is loaded yet");
  }
  EXPECT_EQ(post("/predict", predict_body({array_instance(row_values(0.1f))})).result_int(), 503u);
  auto ready = get("/ready");
  EXPECT_EQ(ready.result_int(), 503u);
  EXPECT_NE(ready.body().find("model: none loaded"), std::string::npos);
  EXPECT_EQ(get("/openapi.json").result_int(), 200u);  // generic schemas
}

// ---------------------------------------------------------------------------------------------
// Operations routes

TEST_F(RouterTest, ReadyListsEveryFailingCheck) {
  auto res = get("/ready");
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), R"({"ready":true,"failing":[]})");
  EXPECT_EQ(get("/v2/health/ready").body(), R"({"ready":true})");

  stack->set_failures({"kafka: no partitions assigned", "model: warming up"});
  res = get("/ready");
  EXPECT_EQ(res.result_int(), 503u);
  auto v = parse_json(res.body());
  const auto& failing = v.at("failing").as_array();
  ASSERT_EQ(failing.size(), 2u);
  EXPECT_EQ(failing[0].as_string(), "kafka: no partitions assigned");
  EXPECT_EQ(failing[1].as_string(), "model: warming up");
  res = get("/v2/health/ready");
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_FALSE(parse_json(res.body()).at("ready").as_bool());
}

TEST_F(RouterTest, HealthAndServerMetadata) {
  auto res = get("/health");
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), R"({"status":"ok"})");
  EXPECT_EQ(get("/v2/health/live").body(), R"({"live":true})");
  auto v = parse_json(get("/v2").body());
  EXPECT_EQ(v.at("name").as_string(), "vigil");
  EXPECT_FALSE(v.at("version").as_string().empty());
  EXPECT_TRUE(v.at("extensions").is_array());
}

TEST_F(RouterTest, ModelMetadataDescribesTheTensors) {
  for (const std::string target : {"/v2/models/fake", "/v2/models/fake/versions/1"}) {
    auto res = get(target);
    ASSERT_EQ(res.result_int(), 200u) << target;
    auto v = parse_json(res.body());
    EXPECT_EQ(v.at("name").as_string(), "fake");
    EXPECT_EQ(v.at("versions").as_array()[0].as_string(), "1");
    const auto& in = v.at("inputs").as_array()[0];
    EXPECT_EQ(in.at("name").as_string(), "features");
    EXPECT_EQ(in.at("datatype").as_string(), "FP32");
    EXPECT_EQ(in.at("shape").as_array()[0].to_number<int>(), -1);
    EXPECT_EQ(in.at("shape").as_array()[1].to_number<int>(), 30);
    EXPECT_EQ(v.at("outputs").as_array()[0].at("name").as_string(), "score");
  }
  for (const std::string target : {"/v2/models/fake/ready", "/v2/models/fake/versions/1/ready"}) {
    auto res = get(target);
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res.body(), R"({"name":"fake","ready":true})");
  }
}

// Several models: ?model= on /predict and /model/info, /v2/models/{name} for each.
struct TwoModelRouterTest : RouterTest {
  static StackOptions two() {
    StackOptions o;
    testing::FakeModelOptions second;
    second.name = "second";
    second.version = "7";
    second.input_names = {"amount", "hour"};
    second.bias = -1.0;
    o.more_models.push_back(second);
    return o;
  }
  TwoModelRouterTest() : RouterTest(two()) {}
};

TEST_F(TwoModelRouterTest, PredictScoresWithTheModelItNamesAndTheDefaultOneWithoutAName) {
  const float amount = 3.0f, hour = 5.0f;
  auto res = post("/predict?model=second",
                  R"({"instances": [{"transaction_id": "s-1", "amount": 3, "hour": 5}]})");
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  auto v = parse_json(res.body());
  const float row[] = {amount, hour};
  EXPECT_FLOAT_EQ(v.at("predictions").as_array()[0].at("score").to_number<float>(),
                  testing::fake_score(row, 2, -1.0));
  EXPECT_EQ(v.at("model_name").as_string(), "second");
  EXPECT_EQ(v.at("model_version").as_string(), "7");
  // The default model takes its own inputs, and names the other's as unknown.
  res = post("/predict", predict_body({array_instance(row_values(0.5f))}));
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_EQ(parse_json(res.body()).at("model_name").as_string(), "fake");
  res = post("/predict", R"({"instances": [{"amount": 3, "hour": 5}]})");
  EXPECT_EQ(res.result_int(), 422u) << res.body();
  // An unknown model is 404 naming the models served.
  res = post("/predict?model=nope", predict_body({array_instance(row_values(0.5f))}));
  EXPECT_EQ(res.result_int(), 404u);
  EXPECT_NE(res.body().find("'nope' not found; this server serves 'fake', 'second'"),
            std::string::npos)
      << res.body();
  // Every score left by the one exit, with the model that scored it.
  auto rows = stack->sink.records();
  ASSERT_EQ(rows.size(), 1u);  // the one row with a transaction id
  EXPECT_EQ(rows[0].model_name, "second");
}

// A fragment has no place in a request target; one sent is ignored, whatever the query before
// it. An empty query followed by one made Boost.URL read past its buffer (fuzz_http_router; the
// ASan build of this test caught it).
TEST_F(TwoModelRouterTest, AFragmentAfterTheQueryIsIgnored) {
  const std::string body = predict_body({array_instance(row_values(0.5f))});
  for (const char* target : {"/predict?#", "/predict?#model=second", "/predict?&#x"}) {
    auto res = post(target, body);
    ASSERT_EQ(res.result_int(), 200u) << target << ": " << res.body();
    EXPECT_EQ(parse_json(res.body()).at("model_name").as_string(), "fake") << target;
  }
  auto res = post("/predict?model=second#fake",
                  R"({"instances": [{"transaction_id": "f-1", "amount": 3, "hour": 5}]})");
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_EQ(parse_json(res.body()).at("model_name").as_string(), "second");
  EXPECT_EQ(get("/model/info?#").result_int(), 200u);
}

TEST_F(TwoModelRouterTest, EachModelHasItsOwnMetadataInferAndInfo) {
  auto res = get("/v2/models/second");
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  auto v = parse_json(res.body());
  EXPECT_EQ(v.at("version").as_string(), "7");
  EXPECT_EQ(v.at("inputs").as_array()[0].at("shape").as_array()[1].to_number<int>(), 2);
  EXPECT_EQ(get("/v2/models/second/versions/7/ready").result_int(), 200u);
  EXPECT_EQ(get("/v2/models/second/versions/1").result_int(), 404u);
  EXPECT_EQ(get("/v2/models/fake/versions/1").result_int(), 200u);
  res = post("/v2/models/second/infer",
             R"({"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP32",
                             "data": [1, 2]}]})");
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  v = parse_json(res.body());
  const float row[] = {1.0f, 2.0f};
  EXPECT_FLOAT_EQ(v.at("outputs").as_array()[0].at("data").as_array()[0].to_number<float>(),
                  testing::fake_score(row, 2, -1.0));
  EXPECT_EQ(v.at("model_name").as_string(), "second");
  res = post("/v2/models/fake/infer",
             R"({"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP32",
                             "data": [1, 2]}]})");
  EXPECT_EQ(res.result_int(), 422u) << "the default model takes 30 inputs: " << res.body();
  res = get("/model/info?model=second");
  ASSERT_EQ(res.result_int(), 200u);
  EXPECT_EQ(parse_json(res.body()).at("inputs").as_array().size(), 2u);
  EXPECT_EQ(parse_json(get("/model/info").body()).at("name").as_string(), "fake");
  EXPECT_EQ(get("/model/info?model=nope").result_int(), 404u);
}

TEST_F(RouterTest, ModelInfoCarriesTheYamlVersionAndLoadTime) {
  auto res = get("/model/info");
  ASSERT_EQ(res.result_int(), 200u);
  auto v = parse_json(res.body());
  EXPECT_EQ(v.at("name").as_string(), "fake");
  EXPECT_EQ(v.at("version").as_string(), "1");
  EXPECT_EQ(v.at("inputs").as_array().size(), 30u);
  EXPECT_EQ(v.at("output").as_string(), "score");
  EXPECT_DOUBLE_EQ(v.at("threshold").to_number<double>(), 0.5);
  EXPECT_TRUE(v.at("loaded_at_ms").is_int64());
  EXPECT_EQ(v.at("model_yaml").as_string(), "name: fake\nthreshold: 0.5\n");
}

TEST_F(RouterTest, MetricsAreThePrometheusTextOfTheRegistry) {
  post("/predict", predict_body({array_instance(row_values(0.1f))}));
  // The batcher counts a batch's rows after completing them.
  ASSERT_TRUE(testing::wait_until([&] { return stack->batcher.stats().scored() == 1; },
                                  std::chrono::seconds(5)));
  auto res = get("/metrics");
  ASSERT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res[bhttp::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(res.body().find("# TYPE vigil_requests_scored_total counter"), std::string::npos);
  EXPECT_NE(res.body().find("vigil_requests_scored_total{origin=\"http\",model=\"fake\"} 1"),
            std::string::npos)
      << res.body();
}

TEST_F(RouterTest, RecommendIs404WithoutARecommenderAnd503WhenItsModelDidNotLoad) {
  // recommend.model empty: no recommender, the route is off.
  auto off = post("/recommend", R"({"customer_id":"C1"})");
  EXPECT_EQ(off.result_int(), 404u) << off.body();
  EXPECT_NE(off.body().find("recommend.model"), std::string::npos) << off.body();
  // A configured model that did not load: 503 with the reason.
  HttpDeps deps = stack->deps();
  deps.recommender_missing = "no <version>/model.pt under models/scout";
  Router failed(config, deps);
  auto res = call(failed, verb::post, "/recommend", R"({"customer_id":"C1"})");
  EXPECT_EQ(res.result_int(), 503u) << res.body();
  EXPECT_NE(res.body().find("models/scout"), std::string::npos) << res.body();
  EXPECT_EQ(get("/recommend").result_int(), 405u);
}

TEST_F(RouterTest, OpenApiDocumentDescribesEveryRoute) {
  auto res = get("/openapi.json");
  ASSERT_EQ(res.result_int(), 200u);
  auto v = parse_json(res.body());
  EXPECT_EQ(v.at("openapi").as_string().subview().substr(0, 2), "3.");
  const auto& paths = v.at("paths").as_object();
  std::set<std::string> documented;
  for (const auto& p : paths) documented.insert(std::string(p.key()));
  // Every route the router serves, in OpenAPI's {param} spelling.
  for (int id = static_cast<int>(RouteId::kPredict); id <= static_cast<int>(RouteId::kEvents);
       ++id) {
    std::string label = route_label(static_cast<RouteId>(id));
    for (auto [from, to] :
         {std::pair<std::string, std::string>{"{m}", "{model}"}, {"{v}", "{version}"}}) {
      if (auto at = label.find(from); at != std::string::npos) label.replace(at, from.size(), to);
    }
    EXPECT_TRUE(documented.count(label)) << label << " is not documented";
  }
  EXPECT_EQ(documented.size(), static_cast<size_t>(RouteId::kEvents));
  // Every $ref resolves.
  std::function<void(const boost::json::value&)> check_refs = [&](const boost::json::value& n) {
    if (n.is_object()) {
      for (const auto& kv : n.as_object()) {
        if (kv.key() == "$ref") {
          std::string ref(kv.value().as_string());
          ASSERT_EQ(ref.rfind("#/", 0), 0u) << ref;
          const boost::json::value* at = &v;
          std::string rest = ref.substr(2);
          while (!rest.empty()) {
            auto slash = rest.find('/');
            std::string part = rest.substr(0, slash);
            ASSERT_TRUE(at->is_object() && at->as_object().contains(part)) << "dangling " << ref;
            at = &at->as_object().at(part);
            rest = slash == std::string::npos ? "" : rest.substr(slash + 1);
          }
        } else {
          check_refs(kv.value());
        }
      }
    } else if (n.is_array()) {
      for (const auto& e : n.as_array()) check_refs(e);
    }
  };
  check_refs(v);
  // The model's features are named in the instance schema.
  const auto& named = v.at("components").at("schemas").at("NamedInstance");
  EXPECT_EQ(named.at("required").as_array().size(), 30u);
  EXPECT_TRUE(named.at("properties").as_object().contains("f29"));
}

}  // namespace
}  // namespace vigil::http::test

namespace vigil::http::test {
namespace {

TEST(ErrorResponse, AStatusAnswersWithTheHttpStatusOfItsCode) {
  const std::pair<StatusCode, unsigned> cases[] = {
      {StatusCode::kInvalidArgument, 400u},    {StatusCode::kNotFound, 404u},
      {StatusCode::kFailedPrecondition, 409u}, {StatusCode::kUnavailable, 503u},
      {StatusCode::kInternal, 500u},           {StatusCode::kUnknown, 500u}};
  for (const auto& [code, status] : cases) {
    const Response res = error_response(Status::Error(code, "why"));
    EXPECT_EQ(res.result_int(), status) << static_cast<int>(code);
    EXPECT_EQ(res.body(), "{\"error\":\"why\"}");
  }
  EXPECT_EQ(Status::Error("unclassified").code(), StatusCode::kUnknown);
}

// Each answer is written from append_wire's single buffer: it must be the bytes Beast's own
// serializer writes for the same response, whatever its status, version and fields.
TEST(AppendWire, WritesTheBytesBeastsSerializerWrites) {
  std::vector<Response> answers;
  answers.push_back(make_response(200, "{\"predictions\":[]}"));
  answers.push_back(error_response(503, "busy"));  // with Retry-After
  Response close = error_response(404, "no such route");
  close.keep_alive(false);
  answers.push_back(std::move(close));
  Response old = make_response(200, "ok", "text/plain");
  old.version(10);
  old.keep_alive(true);  // HTTP/1.0 keep-alive says so
  answers.push_back(std::move(old));
  Response custom = make_response(299, "");  // a status Beast has no reason phrase for
  custom.reason("Odd");
  custom.set("X-Extra", "a: b");
  answers.push_back(std::move(custom));
  answers.push_back(make_response(200, std::string(100000, 'x')));  // larger than any buffer
  for (Response& res : answers) {
    res.prepare_payload();
    std::ostringstream beast;
    beast << res;
    std::string wire = "kept";  // appended to, not replaced
    append_wire(res, wire);
    EXPECT_EQ(wire, "kept" + beast.str()) << res.result_int();
  }
}

}  // namespace
}  // namespace vigil::http::test

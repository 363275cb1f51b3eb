// libFuzzer target: one HTTP request -> http::Router, without sockets, over a real ScoringQueue
// and Batcher (one worker) with the fake model of the unit tests, so /predict and /v2 infer run
// all the way through the scoring engine and back.
//
// Input layout (text, so corpus files read like requests):
//
//   byte 0     method and router: kVerbs[b & 0x0F]; bit 0x10 set = the router that requires
//              "Authorization: Bearer fuzz-token" on scoring routes. Printable choices:
//              '@' GET  'A' POST  'B' PUT  'C' DELETE ...  'P' GET, auth  'Q' POST, auth ...
//   line 1     the request target ("/predict", "/v2/models/fraud_mlp/infer")
//   lines      headers "Name: value", up to an empty line
//   the rest   the body
//
// Bytes Beast's parser would refuse (control characters in the target, non-token header names)
// are dropped, so the router only sees requests the server could hand it; the body is passed
// as is (the server caps only its size, far above -max_len).
//
// Every answer must be: exactly one call of `respond`, within kAnswerTimeout; a status the
// router documents for bad input (200, 400, 401, 403 (repository routes: no admin token),
// 404, 405, 422) and never 5xx (the scoring
// engine is healthy and far from full here, so a 5xx is a bug); a JSON body that is valid
// UTF-8 (except the Prometheus text of /metrics); errors as {"error": "<non-empty>"}; Allow on
// 405, WWW-Authenticate on 401; scores in [0, 1]; a 200 from a scoring route only for a body
// that is valid JSON (RFC 8259 grammar, fuzz/json_grammar.h). The records HTTP scores leave vigil
// with (Redis, the scores topic) must be valid JSON. Any violation aborts, so libFuzzer keeps the
// input.
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "http/http_deps.h"
#include "http/router.h"
#include "json_grammar.h"
#include "scoring/batcher.h"
#include "scoring/scoring_queue.h"
#include "sinks/score_record.h"
#include "support/fake_model.h"

namespace {

namespace bhttp = boost::beast::http;
using vigil::http::Request;
using vigil::http::Response;

constexpr bhttp::verb kVerbs[16] = {
    bhttp::verb::get,     bhttp::verb::post,    bhttp::verb::put,    bhttp::verb::delete_,
    bhttp::verb::head,    bhttp::verb::options, bhttp::verb::patch,  bhttp::verb::trace,
    bhttp::verb::connect, bhttp::verb::copy,    bhttp::verb::purge,  bhttp::verb::search,
    bhttp::verb::lock,    bhttp::verb::report,  bhttp::verb::notify,
    bhttp::verb::unknown,  // a method Beast does not know: sent as "BREW"
};
constexpr uint8_t kAuthBit = 0x10;
constexpr const char* kToken = "fuzz-token";
constexpr auto kAnswerTimeout = std::chrono::seconds(10);

[[noreturn]] void fail(const std::string& what, const Request& req, const Response* res) {
  std::fprintf(stderr, "fuzz_http_router: %s\n  request: %s %s (%zu body bytes)\n", what.c_str(),
               std::string(req.method_string()).c_str(), std::string(req.target()).c_str(),
               req.body().size());
  if (res != nullptr) {
    std::fprintf(stderr, "  response: %u %s\n", res->result_int(), res->body().c_str());
  }
  std::abort();
}

// The fake model of the unit tests under the served model's name and feature names (Time,
// V1..V28, Amount), so corpus seeds are real requests.
class FuzzModel final : public vigil::scoring::Model {
 public:
  FuzzModel() : fake_(vigil::testing::FakeModelOptions{}) {
    info_ = fake_.info();
    info_.name = "fraud_mlp";
    info_.version = "1";
    info_.input_names = {"Time"};
    for (int i = 1; i <= 28; ++i) info_.input_names.push_back("V" + std::to_string(i));
    info_.input_names.emplace_back("Amount");
  }
  const vigil::scoring::ModelInfo& info() const override { return info_; }
  std::unique_ptr<vigil::scoring::ModelSession> new_session() override {
    return fake_.new_session();
  }

 private:
  vigil::testing::FakeModel fake_;
  vigil::scoring::ModelInfo info_;
};

// Checks the scores HTTP rows leave vigil with (the delivery stage's encoder, for Redis and
// the scores topic): each must be JSON a consumer can read back, whatever id the caller chose.
class CheckingCompletion final : public vigil::scoring::BatchCompletion {
 public:
  void complete(std::vector<vigil::scoring::ScoreRequest>& batch,
                const std::vector<vigil::scoring::ScoreOutcome>& outcomes,
                const vigil::scoring::ModelInfo& model) override {
    for (size_t i = 0; i < batch.size(); ++i) {
      const auto& r = batch[i];
      if (r.origin != vigil::scoring::Origin::kHttp || r.id.empty() || !outcomes[i].status.ok())
        continue;
      std::string json;
      vigil::sinks::append_score_json(json, r.id, outcomes[i].score, outcomes[i].is_fraud,
                                      model.name, model.version, 1, -1,
                                      vigil::sinks::ScoreSource::kHttp);
      boost::system::error_code ec;
      boost::json::parse(json, ec);
      if (ec) {
        std::fprintf(stderr, "fuzz_http_router: score record is not valid JSON: %s\n",
                     json.c_str());
        std::abort();
      }
    }
  }
};

// The scoring engine and two routers (with and without a bearer token), built once and shared
// by every input: the batcher's worker thread lives for the whole run.
struct Stack {
  Stack()
      : queue(vigil::scoring::QueueConfig{16384, 0.8, 0.5}, vigil::SteadyClock::instance(),
              registry),
        batcher(vigil::scoring::BatcherConfig{64, std::chrono::microseconds(0), 1}, queue,
                std::make_shared<FuzzModel>(), vigil::SteadyClock::instance(), registry, &sink) {
    batcher.start();
    vigil::http::HttpDeps deps;
    deps.queue = &queue;
    deps.registry = &registry;
    deps.model_info = [this](size_t i) { return batcher.model_info(i); };
    vigil::http::HttpConfig open_config;
    open_router = std::make_unique<vigil::http::Router>(open_config, deps);
    vigil::http::HttpConfig auth_config;
    auth_config.auth_token = kToken;
    auth_router = std::make_unique<vigil::http::Router>(auth_config, deps);
  }

  vigil::metrics::Registry registry;
  CheckingCompletion sink;  // before the batcher, which completes into it
  vigil::scoring::ScoringQueue queue;
  vigil::scoring::Batcher batcher;
  std::unique_ptr<vigil::http::Router> open_router;
  std::unique_ptr<vigil::http::Router> auth_router;
};

// One request's answer, filled on whichever thread the router answers from.
struct Answer {
  std::mutex mutex;
  std::condition_variable cv;
  int calls = 0;
  Response response;
};

bool is_tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}
// Beast's request-target and field-value characters: no controls (HTAB allowed in values).
bool is_target_char(unsigned char c) {
  return c > 0x20 && c != 0x7F;
}
bool is_value_char(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7F);
}

std::string keep(std::string_view s, bool (*ok)(unsigned char)) {
  std::string out;
  for (char c : s) {
    if (ok(static_cast<unsigned char>(c))) out += c;
  }
  return out;
}

std::string_view next_line(std::string_view& rest) {
  const size_t nl = rest.find('\n');
  std::string_view line = rest.substr(0, nl);
  rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

Request build_request(const uint8_t* data, size_t size) {
  Request req;
  req.version(11);
  const bhttp::verb verb = kVerbs[data[0] & 0x0F];
  if (verb == bhttp::verb::unknown) {
    req.method_string("BREW");
  } else {
    req.method(verb);
  }
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string target = keep(next_line(rest), is_target_char);
  req.target(target.empty() ? "/" : target);  // the parser never yields an empty target
  while (!rest.empty()) {
    const std::string_view line = next_line(rest);
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string name = keep(line.substr(0, colon), is_tchar);
    std::string value = keep(line.substr(colon + 1), is_value_char);
    const size_t first = value.find_first_not_of(" \t");
    value.erase(0, first == std::string::npos ? value.size() : first);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
    if (name.empty()) continue;
    // Framing headers are the parser's business; the router gets the body it framed.
    const bhttp::field f = bhttp::string_to_field(name);
    if (f == bhttp::field::content_length || f == bhttp::field::transfer_encoding) continue;
    req.insert(name, value);
  }
  req.body() = std::string(rest);
  // As the parser leaves it (prepare_payload() would refuse a body on TRACE).
  if (!req.body().empty()) req.content_length(req.body().size());
  return req;
}

bool documented_status(unsigned s) {
  return s == 200 || s == 400 || s == 401 || s == 403 || s == 404 || s == 405 || s == 422;
}

void check_score(const boost::json::value& v, const Request& req, const Response& res) {
  if (!v.is_number()) fail("score is not a number", req, &res);
  const double s = v.to_number<double>();
  if (!(s >= 0.0 && s <= 1.0)) fail("score outside [0, 1]", req, &res);
}

void check_response(const Request& req, const Response& res, bool auth_router) {
  const unsigned status = res.result_int();
  if (!documented_status(status)) fail("status " + std::to_string(status), req, &res);

  const auto content_type = res[bhttp::field::content_type];
  if (content_type.empty()) fail("no Content-Type", req, &res);
  const auto route = vigil::http::match_route(req.target());
  if (content_type != "application/json") {
    if (route.id == vigil::http::RouteId::kMetrics && status == 200) return;  // Prometheus text
    fail("Content-Type " + std::string(content_type), req, &res);
  }

  boost::system::error_code ec;
  boost::json::parse_options strict;  // RFC 8259: valid UTF-8, no comments, no trailing commas
  strict.max_depth = 64;
  const boost::json::value body = boost::json::parse(res.body(), ec, {}, strict);
  if (ec) {
    boost::json::parse_options lax = strict;
    lax.allow_invalid_utf8 = true;
    boost::system::error_code lax_ec;
    boost::json::parse(res.body(), lax_ec, {}, lax);
    fail(lax_ec ? "body is not JSON (" + ec.message() + ")" : "body is JSON but not valid UTF-8",
         req, &res);
  }
  if (!body.is_object()) fail("body is not a JSON object", req, &res);
  const auto& obj = body.as_object();

  if (status >= 400) {
    const auto* error = obj.if_contains("error");
    if (error == nullptr || !error->is_string() || error->as_string().empty()) {
      fail("error answer without an \"error\" message", req, &res);
    }
  }
  if (status == 405 && res[bhttp::field::allow].empty()) fail("405 without Allow", req, &res);
  if (status == 401) {
    if (!auth_router) fail("401 from the router without a token", req, &res);
    if (res[bhttp::field::www_authenticate].empty()) {
      fail("401 without WWW-Authenticate", req, &res);
    }
  }
  if (status != 200) return;

  const bool scoring = route.id == vigil::http::RouteId::kPredict ||
                       route.id == vigil::http::RouteId::kV2Infer ||
                       route.id == vigil::http::RouteId::kV2VersionInfer;
  if (scoring && !vigil::fuzz::JsonGrammar::valid(req.body())) {
    fail("scored a request body that is not valid JSON", req, &res);
  }
  if (route.id == vigil::http::RouteId::kPredict) {
    const auto* p = obj.if_contains("predictions");
    if (p == nullptr || !p->is_array() || p->as_array().empty()) {
      fail("200 from /predict without predictions", req, &res);
    }
    for (const auto& prediction : p->as_array()) {
      if (!prediction.is_object() || !prediction.as_object().contains("score")) {
        fail("prediction without a score", req, &res);
      }
      check_score(prediction.at("score"), req, res);
    }
  } else if (route.id == vigil::http::RouteId::kV2Infer ||
             route.id == vigil::http::RouteId::kV2VersionInfer) {
    const auto* outputs = obj.if_contains("outputs");
    if (outputs == nullptr || !outputs->is_array() || outputs->as_array().size() != 1) {
      fail("200 from infer without one output", req, &res);
    }
    const auto& out = outputs->as_array()[0];
    if (!out.is_object() || !out.as_object().contains("data") || !out.at("data").is_array()) {
      fail("infer output without data", req, &res);
    }
    for (const auto& s : out.at("data").as_array()) check_score(s, req, res);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Stack* stack = new Stack();  // never destroyed: the batcher outlives every input
  static std::shared_ptr<Answer> previous;
  if (previous) {
    // A late second answer to the previous request (e.g. a completion racing an early 503).
    std::lock_guard<std::mutex> lock(previous->mutex);
    if (previous->calls != 1) {
      std::fprintf(stderr, "fuzz_http_router: the previous request was answered %d times\n",
                   previous->calls);
      std::abort();
    }
  }
  if (size == 0) return 0;

  const bool auth = (data[0] & kAuthBit) != 0;
  Request req = build_request(data, size);
  const Request copy = req;  // for messages; the router takes the request

  auto answer = std::make_shared<Answer>();
  vigil::http::Router& router = auth ? *stack->auth_router : *stack->open_router;
  router.handle(std::move(req), [answer](Response res) {
    std::lock_guard<std::mutex> lock(answer->mutex);
    if (++answer->calls == 1) answer->response = std::move(res);
    answer->cv.notify_all();
  });

  std::unique_lock<std::mutex> lock(answer->mutex);
  if (!answer->cv.wait_for(lock, kAnswerTimeout, [&] { return answer->calls > 0; })) {
    fail("no answer within 10 s", copy, nullptr);
  }
  check_response(copy, answer->response, auth);
  // Exactly once: checked now, and again at the next input for a late second call.
  if (answer->calls != 1) fail("answered more than once", copy, &answer->response);
  previous = answer;
  return 0;
}

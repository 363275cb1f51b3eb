#include "http/router.h"

#include <spdlog/spdlog.h>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <optional>
#include <string>

#include "codec/event_decoder.h"
#include "common/clock.h"
#include "http/inference_request.h"
#include "http/openapi.h"
#include "http/prometheus_text.h"
#include "scoring/model_manager.h"
#include "sinks/score_record.h"

#ifndef VIGIL_VERSION
#define VIGIL_VERSION "0.0.0"
#endif

namespace vigil::http {

namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace {

constexpr const char* kJson = "application/json";
constexpr const char* kRetryAfterSeconds = "1";

Response make_response(unsigned status, std::string body, const char* content_type = kJson) {
  Response res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::server, "vigil/" VIGIL_VERSION);
  res.set(bhttp::field::content_type, content_type);
  res.body() = std::move(body);
  return res;
}

Response json_response(unsigned status, const json::value& v) {
  return make_response(status, json::serialize(v));
}

void append_float(std::string& out, float f) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, f);  // shortest text that reads back as f
  out.append(buf, r.ptr);
}

// The float as the double its shortest text denotes (0.98f -> 0.98, not 0.9800000190734863).
double as_short_double(float f) {
  std::string s;
  append_float(s, f);
  return std::stod(s);
}

// Reason codes per instance when "explain" is asked without "top_k".
constexpr int64_t kDefaultTopK = 5;

// The value of `name` in the target's query string (no percent-decoding: values are plain).
std::optional<std::string_view> query_parameter(std::string_view target, std::string_view name) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string_view("true") : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return std::nullopt;
}

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = i;
    while (j < path.size() && path[j] != '/') ++j;
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j;
  }
  return parts;
}

bool is_scoring(RouteId id) {
  return id == RouteId::kPredict || id == RouteId::kV2Infer || id == RouteId::kV2VersionInfer;
}

bool is_repository(RouteId id) {
  return id == RouteId::kRepositoryIndex || id == RouteId::kRepositoryLoad ||
         id == RouteId::kRepositoryUnload;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

// Calls the wrapped Respond at most once, so that the catch-all in handle() cannot answer a
// request a second time.
class OnceRespond {
 public:
  explicit OnceRespond(Respond r) : state_(std::make_shared<State>(std::move(r))) {}
  bool answered() const { return state_->done.load(); }
  Respond as_respond() const {
    return [s = state_](Response res) {
      if (!s->done.exchange(true)) s->respond(std::move(res));
    };
  }

 private:
  struct State {
    explicit State(Respond r) : respond(std::move(r)) {}
    Respond respond;
    std::atomic<bool> done{false};
  };
  std::shared_ptr<State> state_;
};

// One HTTP request's instances in flight. Owned jointly by its ScoreRequests' completions (and
// the submitting thread until it returns), so it outlives the connection when it must. Answers
// exactly once: with every score when the last instance completes, or earlier with a 503 when
// not all instances could be queued.
class ScoringCall {
 public:
  enum class Kind { kPredict, kInfer };

  ScoringCall(Kind kind, size_t n, Respond respond, sinks::ScoreSink* sink,
              const scoring::ScoringQueue* queue)
      : kind_(kind),
        scores_(n, 0.0f),
        fraud_(n, 0),
        remaining_(n),
        respond_(std::move(respond)),
        sink_(sink),
        queue_(queue) {}

  std::vector<std::string> transaction_ids;  // kPredict: one per instance (may be empty)
  std::optional<std::string> infer_id;       // kInfer: echoed "id"

  // Reason codes wanted per instance (0 = none); set before the instances are submitted.
  void explain(uint16_t top_k) {
    top_k_ = top_k;
    reasons_.assign(scores_.size(), {});
  }
  uint16_t top_k() const { return top_k_; }

  // Runs on a scoring worker thread, once per instance.
  void complete(size_t i, const scoring::ScoreOutcome& o) {
    if (o.status.ok()) {
      scores_[i] = o.score;
      fraud_[i] = o.is_fraud ? 1 : 0;
      if (i == 0) model_ = o.model;
      if (top_k_ > 0) reasons_[i] = o.reasons;
      if (sink_ != nullptr && kind_ == Kind::kPredict && !transaction_ids[i].empty() && o.model) {
        sinks::ScoreRecord record;
        record.transaction_id = transaction_ids[i];
        record.score = o.score;
        record.is_fraud = o.is_fraud;
        record.model_name = o.model->name;
        record.model_version = o.model->version;
        record.scored_at_ms = wall_clock_ms();
        for (const auto& r : o.reasons) {
          record.reasons.emplace_back(o.model->input_names[r.input], r.contribution);
        }
        sink_->publish(record);  // counts its own failures; the HTTP answer does not wait on it
      }
    } else {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) {
        if (queue_->closed()) {
          error_ = HttpError{503, "server is shutting down"};
        } else {
          error_ = HttpError{500, where(i) + " could not be scored: " + o.status.message()};
        }
      }
    }
    // acq_rel: the last completion sees every other completion's writes.
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) finish();
  }

  // Answers `answer` now; the `not_queued` instances that never entered the queue will not
  // complete, and those that did complete without effect on the answer.
  void abandon(size_t not_queued, Response answer) {
    if (!answered_.exchange(true)) respond_(std::move(answer));
    if (remaining_.fetch_sub(not_queued, std::memory_order_acq_rel) == not_queued) finish();
  }

 private:
  std::string where(size_t i) const {
    return kind_ == Kind::kPredict ? "instances[" + std::to_string(i) + "]"
                                   : "inputs[0] row " + std::to_string(i);
  }

  void finish() {
    if (answered_.exchange(true)) return;
    if (error_) {
      respond_(error_response(error_->status, error_->message));
      return;
    }
    respond_(make_response(200, kind_ == Kind::kPredict ? predict_body() : infer_body()));
  }

  std::string predict_body() const {
    std::string out;
    out.reserve(64 + scores_.size() * 48);
    out += "{\"predictions\":[";
    for (size_t i = 0; i < scores_.size(); ++i) {
      out += i ? ",{" : "{";
      if (!transaction_ids[i].empty()) {
        out += "\"transaction_id\":";
        sinks::append_json_string(out, transaction_ids[i]);
        out += ',';
      }
      out += "\"score\":";
      append_float(out, scores_[i]);
      out += fraud_[i] ? ",\"is_fraud\":true" : ",\"is_fraud\":false";
      if (top_k_ > 0) {
        out += ",\"reasons\":[";
        for (size_t j = 0; j < reasons_[i].size(); ++j) {
          out += j ? ",{\"feature\":" : "{\"feature\":";
          sinks::append_json_string(out, model_->input_names[reasons_[i][j].input]);
          out += ",\"contribution\":";
          append_float(out, reasons_[i][j].contribution);
          out += '}';
        }
        out += ']';
      }
      out += '}';
    }
    out += "],";
    append_model(out);
    out += '}';
    return out;
  }

  std::string infer_body() const {
    std::string out;
    out.reserve(128 + scores_.size() * 12);
    out += '{';
    append_model(out);
    if (infer_id) {
      out += ",\"id\":";
      sinks::append_json_string(out, *infer_id);
    }
    out += ",\"outputs\":[{\"name\":";
    sinks::append_json_string(out, model_->output_name);
    out += ",\"datatype\":\"FP32\",\"shape\":[" + std::to_string(scores_.size()) + "],\"data\":[";
    for (size_t i = 0; i < scores_.size(); ++i) {
      if (i) out += ',';
      append_float(out, scores_[i]);
    }
    out += "]}]}";
    return out;
  }

  void append_model(std::string& out) const {
    out += "\"model_name\":";
    sinks::append_json_string(out, model_->name);
    out += ",\"model_version\":";
    sinks::append_json_string(out, model_->version);
  }

  const Kind kind_;
  uint16_t top_k_ = 0;
  std::vector<std::vector<scoring::Reason>> reasons_;  // per instance, when top_k_ > 0
  std::vector<float> scores_;
  std::vector<uint8_t> fraud_;
  std::shared_ptr<const scoring::ModelInfo> model_;  // the model that scored instance 0
  std::atomic<size_t> remaining_;
  std::atomic<bool> answered_{false};
  std::mutex error_mutex_;
  std::optional<HttpError> error_;  // the first failure
  Respond respond_;
  sinks::ScoreSink* const sink_;
  const scoring::ScoringQueue* const queue_;
};

// Queues one ScoreRequest per row; on the first rejection answers 503 for the whole call.
void submit(const std::shared_ptr<ScoringCall>& call, std::vector<std::vector<float>>& rows,
            const std::vector<std::string>* ids, scoring::ScoringQueue& queue) {
  const size_t n = rows.size();
  for (size_t i = 0; i < n; ++i) {
    scoring::ScoreRequest r;
    if (ids != nullptr) r.id = (*ids)[i];
    r.features = std::move(rows[i]);
    r.origin = scoring::Origin::kHttp;
    r.explain_top_k = call->top_k();
    r.done = [call, i](scoring::ScoreRequest&, const scoring::ScoreOutcome& o) {
      call->complete(i, o);
    };
    const auto pushed = queue.try_push(r, scoring::Priority::kHigh);
    if (pushed != scoring::ScoringQueue::PushResult::kOk) {
      call->abandon(n - i, error_response(503, pushed == scoring::ScoringQueue::PushResult::kFull
                                                   ? "scoring queue is full, retry later"
                                                   : "server is shutting down"));
      return;
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Routes

RouteMatch match_route(std::string_view target) {
  const auto q = target.find('?');
  const auto parts = split_path(target.substr(0, q));
  RouteMatch m;
  const size_t n = parts.size();
  auto is = [&](size_t i, std::string_view s) { return i < n && parts[i] == s; };
  if (n == 1 && is(0, "predict")) {
    m.id = RouteId::kPredict;
  } else if (n == 1 && is(0, "health")) {
    m.id = RouteId::kHealth;
  } else if (n == 1 && is(0, "ready")) {
    m.id = RouteId::kReady;
  } else if (n == 1 && is(0, "metrics")) {
    m.id = RouteId::kMetrics;
  } else if (n == 1 && is(0, "openapi.json")) {
    m.id = RouteId::kOpenApi;
  } else if (n == 2 && is(0, "model") && is(1, "info")) {
    m.id = RouteId::kModelInfo;
  } else if (is(0, "v2")) {
    if (n == 1) {
      m.id = RouteId::kV2Server;
    } else if (n == 3 && is(1, "health") && is(2, "live")) {
      m.id = RouteId::kV2Live;
    } else if (n == 3 && is(1, "health") && is(2, "ready")) {
      m.id = RouteId::kV2Ready;
    } else if (n == 3 && is(1, "repository") && is(2, "index")) {
      m.id = RouteId::kRepositoryIndex;
    } else if (n == 5 && is(1, "repository") && is(2, "models") &&
               (is(4, "load") || is(4, "unload"))) {
      m.model = std::string(parts[3]);
      m.id = is(4, "load") ? RouteId::kRepositoryLoad : RouteId::kRepositoryUnload;
    } else if (n >= 3 && is(1, "models")) {
      m.model = std::string(parts[2]);
      size_t rest = 3;
      bool versioned = false;
      if (n >= 5 && is(3, "versions")) {
        m.version = std::string(parts[4]);
        versioned = true;
        rest = 5;
      }
      if (n == rest) {
        m.id = versioned ? RouteId::kV2ModelVersion : RouteId::kV2Model;
      } else if (n == rest + 1 && is(rest, "ready")) {
        m.id = versioned ? RouteId::kV2ModelVersionReady : RouteId::kV2ModelReady;
      } else if (n == rest + 1 && is(rest, "infer")) {
        m.id = versioned ? RouteId::kV2VersionInfer : RouteId::kV2Infer;
      }
    }
  }
  if (m.id == RouteId::kUnmatched) {
    m.model.clear();
    m.version.clear();
  }
  return m;
}

const char* route_label(RouteId id) {
  switch (id) {
    case RouteId::kUnmatched:
      return "unmatched";
    case RouteId::kPredict:
      return "/predict";
    case RouteId::kV2Server:
      return "/v2";
    case RouteId::kV2Live:
      return "/v2/health/live";
    case RouteId::kV2Ready:
      return "/v2/health/ready";
    case RouteId::kV2Model:
      return "/v2/models/{m}";
    case RouteId::kV2ModelReady:
      return "/v2/models/{m}/ready";
    case RouteId::kV2ModelVersion:
      return "/v2/models/{m}/versions/{v}";
    case RouteId::kV2ModelVersionReady:
      return "/v2/models/{m}/versions/{v}/ready";
    case RouteId::kV2Infer:
      return "/v2/models/{m}/infer";
    case RouteId::kV2VersionInfer:
      return "/v2/models/{m}/versions/{v}/infer";
    case RouteId::kHealth:
      return "/health";
    case RouteId::kReady:
      return "/ready";
    case RouteId::kModelInfo:
      return "/model/info";
    case RouteId::kMetrics:
      return "/metrics";
    case RouteId::kOpenApi:
      return "/openapi.json";
    case RouteId::kRepositoryIndex:
      return "/v2/repository/index";
    case RouteId::kRepositoryLoad:
      return "/v2/repository/models/{m}/load";
    case RouteId::kRepositoryUnload:
      return "/v2/repository/models/{m}/unload";
  }
  return "unmatched";
}

Response error_response(unsigned status, std::string_view message) {
  std::string body = "{\"error\":";
  sinks::append_json_string(body, std::string(message));
  body += '}';
  Response res = make_response(status, std::move(body));
  if (status == 503) res.set(bhttp::field::retry_after, kRetryAfterSeconds);
  return res;
}

// ---------------------------------------------------------------------------------------------
// Router

struct Router::Schema {
  std::shared_ptr<const scoring::ModelInfo> info;
  codec::FeatureSchema features;
  InferSpec infer;
};

Router::Router(const HttpConfig& config, HttpDeps deps) : config_(config), deps_(std::move(deps)) {
  VIGIL_CHECK(deps_.queue != nullptr);
  VIGIL_CHECK(deps_.registry != nullptr);
  VIGIL_CHECK(static_cast<bool>(deps_.model_info));
}

Router::~Router() = default;

void Router::handle(Request req, Respond respond) {
  OnceRespond once(std::move(respond));
  const Respond answer = once.as_respond();
  try {
    const RouteMatch route = match_route(req.target());
    dispatch(route, req, answer);
  } catch (const std::exception& e) {
    auto log = deps_.logger ? deps_.logger : spdlog::default_logger();
    log->error("http: {} {}: unexpected exception: {}", std::string(req.method_string()),
               std::string(req.target()), e.what());
    answer(error_response(500, "internal error"));
  }
}

void Router::dispatch(const RouteMatch& route, Request& req, const Respond& respond) {
  if (route.id == RouteId::kUnmatched) {
    respond(error_response(
        404, "no route for " + std::string(req.method_string()) + " " + std::string(req.target())));
    return;
  }
  const bhttp::verb expected =
      is_scoring(route.id) || is_repository(route.id) ? bhttp::verb::post : bhttp::verb::get;
  if (req.method() != expected) {
    Response res = error_response(405, "method " + std::string(req.method_string()) +
                                           " not allowed on " + route_label(route.id) + ", use " +
                                           std::string(bhttp::to_string(expected)));
    res.set(bhttp::field::allow, bhttp::to_string(expected));
    respond(std::move(res));
    return;
  }

  switch (route.id) {
    case RouteId::kPredict:
      predict(req, respond);
      return;
    case RouteId::kV2Infer:
    case RouteId::kV2VersionInfer:
      infer(route, req, respond);
      return;
    case RouteId::kRepositoryIndex:
    case RouteId::kRepositoryLoad:
    case RouteId::kRepositoryUnload:
      repository(route, req, respond);
      return;
    case RouteId::kHealth:
      respond(make_response(200, R"({"status":"ok"})"));
      return;
    case RouteId::kV2Live:
      respond(make_response(200, R"({"live":true})"));
      return;
    case RouteId::kReady:
      respond(ready_response(false));
      return;
    case RouteId::kV2Ready:
      respond(ready_response(true));
      return;
    case RouteId::kV2Server:
      respond(json_response(
          200, json::object{
                   {"name", "vigil"}, {"version", VIGIL_VERSION}, {"extensions", json::array{}}}));
      return;
    case RouteId::kV2Model:
    case RouteId::kV2ModelVersion: {
      auto info = model_for(route, respond);
      if (!info) return;
      json::array inputs{json::object{{"name", kInferInputName},
                                      {"datatype", "FP32"},
                                      {"shape", json::array{-1, info->width()}}}};
      json::array outputs{json::object{
          {"name", info->output_name}, {"datatype", "FP32"}, {"shape", json::array{-1}}}};
      json::array versions;
      if (deps_.models) {
        for (const auto& v : deps_.models->index()) versions.emplace_back(v.version);
      } else {
        versions.emplace_back(info->version);
      }
      respond(json_response(200, json::object{{"name", info->name},
                                              {"version", info->version},
                                              {"versions", std::move(versions)},
                                              {"platform", "pytorch_torchscript"},
                                              {"inputs", std::move(inputs)},
                                              {"outputs", std::move(outputs)}}));
      return;
    }
    case RouteId::kV2ModelReady:
    case RouteId::kV2ModelVersionReady: {
      auto info = model_for(route, respond);
      if (!info) return;
      const bool ready = !shutting_down();
      respond(
          json_response(ready ? 200 : 503, json::object{{"name", info->name}, {"ready", ready}}));
      return;
    }
    case RouteId::kModelInfo: {
      auto info = deps_.model_info();
      if (!info) {
        respond(error_response(503, "no model is loaded yet"));
        return;
      }
      respond(model_info_response(*info));
      return;
    }
    case RouteId::kMetrics:
      respond(make_response(200, render_prometheus(*deps_.registry), kPrometheusContentType));
      return;
    case RouteId::kOpenApi: {
      auto info = deps_.model_info();
      respond(make_response(200, openapi_document(info.get(), VIGIL_VERSION)));
      return;
    }
    case RouteId::kUnmatched:
      break;
  }
  respond(error_response(500, "route not implemented"));
}

bool Router::authorized(const Request& req) const {
  if (config_.auth_token.empty()) return true;
  auto it = req.find(bhttp::field::authorization);
  if (it == req.end()) return false;
  std::string_view value = it->value();
  constexpr std::string_view kBearer = "Bearer ";
  if (value.size() < kBearer.size()) return false;
  for (size_t i = 0; i < kBearer.size(); ++i) {  // the scheme is case-insensitive
    if (std::tolower(static_cast<unsigned char>(value[i])) !=
        std::tolower(static_cast<unsigned char>(kBearer[i]))) {
      return false;
    }
  }
  return constant_time_equal(value.substr(kBearer.size()), config_.auth_token);
}

std::shared_ptr<const Router::Schema> Router::schema_for(
    std::shared_ptr<const scoring::ModelInfo> info) {
  std::lock_guard<std::mutex> lock(schema_mutex_);
  if (!schema_ || schema_->info != info) {
    schema_ = std::make_shared<const Schema>(
        Schema{info, codec::FeatureSchema(info->input_names),
               InferSpec{kInferInputName, info->width(), info->output_name}});
  }
  return schema_;
}

std::shared_ptr<const scoring::ModelInfo> Router::model_for(const RouteMatch& route,
                                                            const Respond& respond) {
  auto info = deps_.model_info();
  if (!info) {
    respond(error_response(503, "no model is loaded yet"));
    return nullptr;
  }
  if (route.model != info->name) {
    respond(error_response(
        404, "model '" + route.model + "' not found; this server serves '" + info->name + "'"));
    return nullptr;
  }
  if (!route.version.empty() && route.version != info->version) {
    respond(error_response(404, "model '" + info->name + "' has no version '" + route.version +
                                    "'; the version served is '" + info->version + "'"));
    return nullptr;
  }
  return info;
}

// The gate of both scoring routes: 401 without the bearer token, 503 while shutting down.
bool Router::admit(const Request& req, const Respond& respond) const {
  if (!authorized(req)) {
    Response res = error_response(401, "missing or wrong bearer token");
    res.set(bhttp::field::www_authenticate, "Bearer");
    respond(std::move(res));
    return false;
  }
  if (shutting_down()) {
    respond(error_response(503, "server is shutting down"));
    return false;
  }
  return true;
}

void Router::predict(Request& req, const Respond& respond) {
  if (!admit(req, respond)) return;
  auto info = deps_.model_info();
  if (!info) {
    respond(error_response(503, "no model is loaded yet"));
    return;
  }
  auto schema = schema_for(info);
  PredictRequest decoded;
  if (auto err = decode_predict(req.body(), schema->features, config_.max_instances, decoded)) {
    respond(error_response(err->status, err->message));
    return;
  }
  // Reason codes: "explain"/"top_k" in the body or the query string (the query wins).
  const std::string_view target = req.target();
  if (auto e = query_parameter(target, "explain")) decoded.explain = (*e == "true" || *e == "1");
  if (auto k = query_parameter(target, "top_k")) {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(k->data(), k->data() + k->size(), v);
    if (ec != std::errc() || end != k->data() + k->size()) {
      respond(error_response(422, "top_k must be an integer, got '" + std::string(*k) + "'"));
      return;
    }
    decoded.top_k = v;
  }
  uint16_t top_k = 0;
  if (decoded.explain) {
    const int64_t k = decoded.top_k.value_or(kDefaultTopK);
    if (k < 1 || k > static_cast<int64_t>(info->width())) {
      respond(error_response(422, "top_k must be within [1, " + std::to_string(info->width()) +
                                      "] (the model's inputs), got " + std::to_string(k)));
      return;
    }
    if (info->baseline.size() != info->width()) {
      respond(error_response(422, "explain: model " + info->name + " version " + info->version +
                                      " has no baseline in its model.yaml, so no reason codes"));
      return;
    }
    top_k = static_cast<uint16_t>(k);
  }
  auto call = std::make_shared<ScoringCall>(ScoringCall::Kind::kPredict, decoded.rows.size(),
                                            respond, deps_.score_sink, deps_.queue);
  if (top_k > 0) call->explain(top_k);
  call->transaction_ids = std::move(decoded.transaction_ids);
  // The call keeps its own copy of the ids for the answer; the requests carry them as their id.
  submit(call, decoded.rows, &call->transaction_ids, *deps_.queue);
}

void Router::infer(const RouteMatch& route, Request& req, const Respond& respond) {
  if (!admit(req, respond)) return;
  auto info = model_for(route, respond);
  if (!info) return;
  auto schema = schema_for(info);
  InferRequest decoded;
  if (auto err = decode_infer(req.body(), schema->infer, config_.max_instances, decoded)) {
    respond(error_response(err->status, err->message));
    return;
  }
  auto call = std::make_shared<ScoringCall>(ScoringCall::Kind::kInfer, decoded.rows.size(), respond,
                                            deps_.score_sink, deps_.queue);
  call->infer_id = std::move(decoded.id);
  submit(call, decoded.rows, nullptr, *deps_.queue);
}

std::vector<std::string> Router::readiness_failures() const {
  std::vector<std::string> failing;
  if (shutting_down()) failing.emplace_back("server is shutting down");
  if (!deps_.model_info()) failing.emplace_back("model: none loaded");
  const auto* q = deps_.queue;
  if (q->above_high_watermark()) {
    failing.push_back("queue: " + std::to_string(q->depth()) + " of " +
                      std::to_string(q->capacity()) +
                      " requests waiting, at or above the high watermark");
  }
  if (deps_.readiness_failures) {
    for (auto& reason : deps_.readiness_failures()) failing.push_back(std::move(reason));
  }
  return failing;
}

Response Router::ready_response(bool kserve) const {
  const auto failing = readiness_failures();
  json::array reasons;
  for (const auto& r : failing) reasons.emplace_back(r);
  json::object body{{"ready", failing.empty()}};
  if (!kserve || !failing.empty()) body["failing"] = std::move(reasons);
  if (deps_.degradations) {
    json::array degraded;
    for (const auto& d : deps_.degradations()) degraded.emplace_back(d);
    if (!kserve || !degraded.empty()) body["degraded"] = std::move(degraded);
  }
  return json_response(failing.empty() ? 200 : 503, body);
}

Response Router::model_info_response(const scoring::ModelInfo& info) const {
  json::array inputs;
  for (const auto& n : info.input_names) inputs.emplace_back(n);
  json::object body{{"name", info.name},
                    {"version", info.version},
                    {"description", info.description},
                    {"inputs", std::move(inputs)},
                    {"output", info.output_name},
                    {"threshold", as_short_double(info.threshold)},
                    {"path", info.path},
                    {"device", info.device},
                    {"loaded_at_ms", info.loaded_at_ms},
                    {"reason_codes", info.baseline.size() == info.width()},
                    {"model_yaml", info.metadata_text}};
  if (auto shadow = deps_.shadow_info ? deps_.shadow_info() : nullptr) {
    body["shadow"] = json::object{{"version", shadow->version},
                                  {"path", shadow->path},
                                  {"threshold", as_short_double(shadow->threshold)},
                                  {"loaded_at_ms", shadow->loaded_at_ms}};
  } else {
    body["shadow"] = nullptr;
  }
  return json_response(200, body);
}

}  // namespace vigil::http

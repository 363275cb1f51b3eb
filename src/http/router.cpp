#include "http/router.h"

#include <spdlog/spdlog.h>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <charconv>
#include <optional>
#include <string>

#include "codec/event_decoder.h"
#include "common/clock.h"
#include "common/json_text.h"
#include "common/log.h"
#include "http/inference_request.h"
#include "http/inline_batch.h"
#include "http/openapi.h"
#include "http/prometheus_text.h"
#include "http/responses.h"
#include "http/scoring_call.h"
#include "recommend/recommend_service.h"
#include "scoring/model_manager.h"
#include "sinks/score_lookup.h"
#include "sinks/score_record.h"

namespace vigil::http {

namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace {

// Reason codes per instance when "explain" is asked without "top_k".
constexpr int64_t kDefaultTopK = 5;

// The value of the first `name` parameter in the target's query string, percent-decoded
// (Boost.URL, RFC 3986: "%2B" is '+', and a '+' stays a '+', so a browser's
// encodeURIComponent and a bare base64 token both arrive as sent). A parameter without a value
// is "true"; a target that is not a valid URI reference has no parameters. No work without a
// '?'. A request target has no fragment (RFC 9112); one sent is cut off first: Boost.URL 1.81
// reads past its buffer iterating the parameters of an empty query followed by a fragment
// ("/predict?#x", found by fuzz_http_router).
std::optional<std::string> query_parameter(std::string_view target, std::string_view name) {
  target = target.substr(0, target.find('#'));
  if (target.find('?') == std::string_view::npos) return std::nullopt;
  auto url = boost::urls::parse_uri_reference(target);
  if (!url) return std::nullopt;
  boost::urls::encoding_opts literal_plus;
  literal_plus.space_as_plus = false;
  for (const auto& param : url->params(literal_plus)) {
    if (param.key == name) return param.has_value ? param.value : std::string("true");
  }
  return std::nullopt;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

}  // namespace

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
  VIGIL_CHECK(deps_.models.empty() || deps_.models.size() == model_count());
  schemas_.resize(model_count());
}

Router::~Router() = default;

void Router::handle(Request req, Respond respond) {
  const RouteMatch route = match_route(req.target());
  handle(route, std::move(req), std::move(respond));
}

void Router::handle(const RouteMatch& route, Request req, Respond respond,
                    InlineBatch* inline_batch) {
  OnceRespond once(std::move(respond));
  const Respond answer = once.as_respond();
  try {
    dispatch(route, req, answer, inline_batch);
  } catch (const std::exception& e) {
    // A bug could make every request throw: one line per interval, with a count of the rest.
    static RateLimitedLog log{"http", std::chrono::milliseconds(5000)};
    log.error("http: {} {}: unexpected exception: {}", log_escape(req.method_string()),
              log_escape(req.target()), log_escape(e.what()));
    answer(error_response(500, "internal error"));
  }
}

// 404 for an unknown route, 405 (with Allow) for the wrong method; true when it may proceed.
static bool route_and_method_exist(const RouteMatch& route, const Request& req,
                                   const Respond& respond) {
  if (route.id == RouteId::kUnmatched) {
    respond(error_response(
        404, "no route for " + std::string(req.method_string()) + " " + std::string(req.target())));
    return false;
  }
  const bhttp::verb expected =
      is_scoring(route.id) || is_repository(route.id) ? bhttp::verb::post : bhttp::verb::get;
  if (req.method() == expected) return true;
  Response res = error_response(405, "method " + std::string(req.method_string()) +
                                         " not allowed on " + route_label(route.id) + ", use " +
                                         std::string(bhttp::to_string(expected)));
  res.set(bhttp::field::allow, bhttp::to_string(expected));
  respond(std::move(res));
  return false;
}

void Router::dispatch(const RouteMatch& route, Request& req, const Respond& respond,
                      InlineBatch* inline_batch) {
  if (!route_and_method_exist(route, req, respond)) return;
  switch (route.id) {
    case RouteId::kPredict:
      predict(req, respond, inline_batch);
      return;
    case RouteId::kV2Infer:
    case RouteId::kV2VersionInfer:
      infer(route, req, respond, inline_batch);
      return;
    case RouteId::kRepositoryIndex:
    case RouteId::kRepositoryLoad:
    case RouteId::kRepositoryUnload:
      repository(route, req, respond);
      return;
    case RouteId::kScoreLookup:
      score_lookup(route, req, respond);
      return;
    case RouteId::kRecommend:
      recommend(req, respond);
      return;
    case RouteId::kHealth:
    case RouteId::kV2Live:
      respond(live_response(route.id == RouteId::kV2Live));
      return;
    case RouteId::kReady:
      respond(ready_response(false));
      return;
    case RouteId::kV2Ready:
      respond(ready_response(true));
      return;
    case RouteId::kV2Server:
      respond(json_response(200, json::object{{"name", "vigil"},
                                              {"version", server_version()},
                                              {"extensions", server_extensions()}}));
      return;
    case RouteId::kV2Model:
    case RouteId::kV2ModelVersion:
      model_metadata(route, respond);
      return;
    case RouteId::kV2ModelReady:
    case RouteId::kV2ModelVersionReady:
      model_ready(route, respond);
      return;
    case RouteId::kModelInfo:
      model_info(req, respond);
      return;
    case RouteId::kMetrics:
      respond(make_response(200, render_prometheus(*deps_.registry), kPrometheusContentType));
      return;
    case RouteId::kOpenApi: {
      auto info = deps_.model_info(0);
      respond(make_response(200, openapi_document(info.get(), server_version())));
      return;
    }
    case RouteId::kLivePage:
      if (deps_.events == nullptr) {
        respond(error_response(404, "the live view is off (http.max_event_subscribers = 0)"));
      } else {
        respond(make_response(200, std::string(deps_.events->page()), "text/html; charset=utf-8"));
      }
      return;
    case RouteId::kEvents: {
      // Streams are the server's (it holds the connection open); called alone, the router can
      // only say why it would refuse one.
      Response refusal;
      auto subscriber = subscribe_events(
          req, [] {}, refusal);
      if (subscriber == nullptr) {
        respond(std::move(refusal));
        return;
      }
      deps_.events->unsubscribe(subscriber);  // nobody would serve it: free its slot
      break;                                  // a bug in the caller: 500 below
    }
    case RouteId::kUnmatched:
      break;
  }
  respond(error_response(500, "route not implemented"));
}

// GET /v1/scores/{transaction_id}: 200 with the record vigil cached in Redis, 404 when there is
// none (never scored, or expired after redis.ttl_s), 503 + Retry-After when Redis cannot be
// asked. Same bearer token as the scoring routes. Answered from the lookup thread.
void Router::score_lookup(const RouteMatch& route, Request& req, const Respond& respond) {
  if (!admit(req, respond)) return;
  if (deps_.lookup == nullptr) {
    respond(error_response(503, "score lookups need Redis, and redis.url is empty"));
    return;
  }
  const std::string& id = route.transaction_id;
  if (id.empty() || id.size() > codec::EventDecoder::kMaxTransactionIdBytes) {
    respond(error_response(422, "transaction_id must be 1 to " +
                                    std::to_string(codec::EventDecoder::kMaxTransactionIdBytes) +
                                    " bytes"));
    return;
  }
  deps_.lookup->get(id, [respond, id](const sinks::LookupResult& r) {
    switch (r.kind) {
      case sinks::LookupResult::Kind::kFound:
        respond(make_response(200, r.value));
        return;
      case sinks::LookupResult::Kind::kMissing: {
        std::string message = "no score for transaction ";
        append_json_string(message, id);
        respond(error_response(404, message + " (never scored, or expired)"));
        return;
      }
      case sinks::LookupResult::Kind::kUnavailable:
      case sinks::LookupResult::Kind::kBusy:
        respond(error_response(503, "score lookups unavailable: " + r.why));
        return;
    }
  });
}

void Router::model_ready(const RouteMatch& route, const Respond& respond) {
  if (recommender_model(route, /*ready=*/true, respond)) return;
  size_t index = 0;
  auto info = model_for(route, respond, index);
  if (!info) return;
  const bool ready = !shutting_down();
  respond(json_response(ready ? 200 : 503, json::object{{"name", info->name}, {"ready", ready}}));
}

void Router::model_info(const Request& req, const Respond& respond) {
  size_t index = 0;
  auto info = model_in_query(req.target(), respond, index);
  if (!info) return;
  respond(model_info_response(*info, index));
}

void Router::model_metadata(const RouteMatch& route, const Respond& respond) {
  if (recommender_model(route, /*ready=*/false, respond)) return;
  size_t index = 0;
  auto info = model_for(route, respond, index);
  if (!info) return;
  json::array inputs{json::object{
      {"name", kInferInputName}, {"datatype", "FP32"}, {"shape", json::array{-1, info->width()}}}};
  json::array outputs{
      json::object{{"name", info->output_name}, {"datatype", "FP32"}, {"shape", json::array{-1}}}};
  json::array versions;
  if (!deps_.models.empty()) {
    for (const auto& v : deps_.models[index]->index()) versions.emplace_back(v.version);
  } else {
    versions.emplace_back(info->version);
  }
  respond(json_response(200, json::object{{"name", info->name},
                                          {"version", info->version},
                                          {"versions", std::move(versions)},
                                          {"platform", "pytorch_torchscript"},
                                          {"inputs", std::move(inputs)},
                                          {"outputs", std::move(outputs)}}));
}

// The credentials of "Authorization: Bearer <token>" (the scheme is case-insensitive); none
// without that header or with another scheme.
static std::optional<std::string_view> bearer_token(const Request& req) {
  auto it = req.find(bhttp::field::authorization);
  if (it == req.end()) return std::nullopt;
  std::string_view value = it->value();
  constexpr std::string_view kBearer = "Bearer ";
  if (value.size() < kBearer.size()) return std::nullopt;
  for (size_t i = 0; i < kBearer.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) !=
        std::tolower(static_cast<unsigned char>(kBearer[i]))) {
      return std::nullopt;
    }
  }
  return value.substr(kBearer.size());
}

bool Router::authorized(const Request& req) const {
  if (config_.auth_token.empty()) return true;
  const auto token = bearer_token(req);
  return token && constant_time_equal(*token, config_.auth_token);
}

// The gate of the repository routes, which change (load, unload) or reveal (index: versions
// and why one was refused, file names included) what is served: they take http.admin_token,
// never the scoring token. Without an admin token configured they are off (403): an operator
// turns them on deliberately. Missing credentials are 401 + WWW-Authenticate, wrong ones
// (the scoring token included) 403; then 503 while shutting down.
bool Router::admit_admin(const Request& req, const Respond& respond) const {
  if (config_.admin_token.empty()) {
    respond(error_response(
        403, "the repository API is off: set http.admin_token (or http.admin_token_file)"));
    return false;
  }
  const auto token = bearer_token(req);
  if (!token) {
    Response res = error_response(401,
                                  "missing bearer token: the repository API takes the "
                                  "admin token (http.admin_token)");
    res.set(bhttp::field::www_authenticate, R"(Bearer realm="vigil-admin")");
    respond(std::move(res));
    return false;
  }
  if (!constant_time_equal(*token, config_.admin_token)) {
    respond(error_response(
        403, "wrong bearer token: the repository API takes the admin token (http.admin_token)"));
    return false;
  }
  if (shutting_down()) {
    respond(error_response(503, "server is shutting down"));
    return false;
  }
  return true;
}

std::shared_ptr<const Router::Schema> Router::schema_for(
    size_t index, std::shared_ptr<const scoring::ModelInfo> info) {
  std::lock_guard<std::mutex> lock(schema_mutex_);
  std::shared_ptr<const Schema>& schema = schemas_[index];
  if (!schema || schema->info != info) {
    schema = std::make_shared<const Schema>(
        Schema{info, codec::FeatureSchema(info->input_names),
               InferSpec{kInferInputName, info->width(), info->output_name}});
  }
  return schema;
}

size_t Router::model_count() const {
  return deps_.model_names.empty() ? 1 : deps_.model_names.size();
}

std::optional<size_t> Router::model_index(std::string_view name) const {
  if (deps_.model_names.empty()) {
    auto info = deps_.model_info(0);
    if (info && info->name == name) return 0;
    return std::nullopt;
  }
  for (size_t i = 0; i < deps_.model_names.size(); ++i) {
    if (deps_.model_names[i] == name) return i;
  }
  return std::nullopt;
}

std::string Router::served_model_names() const {
  std::string served;
  for (size_t i = 0; i < model_count(); ++i) {
    std::string n;
    if (!deps_.model_names.empty()) {
      n = deps_.model_names[i];
    } else if (auto info = deps_.model_info(i)) {
      n = info->name;
    }
    served += (served.empty() ? "'" : ", '") + n + "'";
  }
  return served;
}

std::shared_ptr<const scoring::ModelInfo> Router::find_model(std::string_view name,
                                                             const Respond& respond,
                                                             size_t& index) {
  const auto found = model_index(name);
  if (!found) {
    if (deps_.model_names.empty() && !deps_.model_info(0)) {
      respond(error_response(503, "no model is loaded yet"));
      return nullptr;
    }
    if (deps_.recommender != nullptr && name == deps_.recommender->name()) {
      respond(error_response(404, "model '" + std::string(name) +
                                      "' is the recommender: ask it with POST /recommend"));
      return nullptr;
    }
    respond(error_response(404, "model '" + std::string(name) + "' not found; this server serves " +
                                    served_model_names()));
    return nullptr;
  }
  index = *found;
  auto info = deps_.model_info(index);
  if (!info) respond(error_response(503, "no model is loaded yet"));
  return info;
}

std::shared_ptr<const scoring::ModelInfo> Router::model_in_query(std::string_view target,
                                                                 const Respond& respond,
                                                                 size_t& index) {
  if (auto name = query_parameter(target, "model")) return find_model(*name, respond, index);
  index = 0;
  auto info = deps_.model_info(0);
  if (!info) respond(error_response(503, "no model is loaded yet"));
  return info;
}

std::shared_ptr<const scoring::ModelInfo> Router::model_for(const RouteMatch& route,
                                                            const Respond& respond, size_t& index) {
  auto info = find_model(route.model, respond, index);
  if (!info) return nullptr;
  if (!route.version.empty() && route.version != info->version) {
    respond(error_response(404, "model '" + info->name + "' has no version '" + route.version +
                                    "'; the version served is '" + info->version + "'"));
    return nullptr;
  }
  return info;
}

// The gate of both scoring routes: 401 without the bearer token, 503 while shutting down.
std::shared_ptr<EventFeed> Router::subscribe_events(const Request& req, std::function<void()> wake,
                                                    Response& refusal) {
  if (deps_.events == nullptr) {
    refusal = error_response(404, "the live view is off (http.max_event_subscribers = 0)");
    return nullptr;
  }
  if (!authorized(req) && !token_in_query(req.target())) {
    refusal = error_response(401, "missing or wrong bearer token (header, or ?access_token=)");
    refusal.set(bhttp::field::www_authenticate, "Bearer");
    return nullptr;
  }
  if (shutting_down()) {
    refusal = error_response(503, "server is shutting down");
    return nullptr;
  }
  auto subscriber = deps_.events->subscribe(std::move(wake));
  if (subscriber == nullptr) {
    refusal = error_response(503, "too many event streams open (http.max_event_subscribers = " +
                                      std::to_string(config_.max_event_subscribers) + ")");
  }
  return subscriber;
}

// ?access_token=<token> in the target's query string, percent-decoded (the live page sends
// encodeURIComponent(token), so a base64 token's '+', '/' and '=' arrive as %2B, %2F, %3D).
bool Router::token_in_query(std::string_view target) const {
  if (config_.auth_token.empty()) return true;
  const auto token = query_parameter(target, "access_token");
  return token && constant_time_equal(*token, config_.auth_token);
}

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

void Router::submit_rows(const std::shared_ptr<ScoringCall>& call,
                         std::vector<std::vector<float>>& rows, const std::vector<std::string>* ids,
                         InlineBatch* inline_batch) {
  if (inline_batch != nullptr) {
    inline_batch->add(call, rows, ids);
  } else {
    submit(call, rows, ids, *deps_.queue);
  }
}

void Router::predict(Request& req, const Respond& respond, InlineBatch* inline_batch) {
  if (!admit(req, respond)) return;
  size_t index = 0;
  auto info = model_in_query(req.target(), respond, index);
  if (!info) return;
  auto schema = schema_for(index, info);
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
                                            respond, deps_.queue);
  if (top_k > 0) call->explain(top_k);
  call->score_with(static_cast<uint16_t>(index));
  call->transaction_ids = std::move(decoded.transaction_ids);
  // The call keeps its own copy of the ids for the answer; the requests carry them as their id.
  submit_rows(call, decoded.rows, &call->transaction_ids, inline_batch);
}

void Router::infer(const RouteMatch& route, Request& req, const Respond& respond,
                   InlineBatch* inline_batch) {
  if (!admit(req, respond)) return;
  size_t index = 0;
  auto info = model_for(route, respond, index);
  if (!info) return;
  auto schema = schema_for(index, info);
  InferRequest decoded;
  if (auto err = decode_infer(req.body(), schema->infer, config_.max_instances, decoded)) {
    respond(error_response(err->status, err->message));
    return;
  }
  auto call = std::make_shared<ScoringCall>(ScoringCall::Kind::kInfer, decoded.rows.size(), respond,
                                            deps_.queue);
  call->infer_id = std::move(decoded.id);
  call->score_with(static_cast<uint16_t>(index));
  submit_rows(call, decoded.rows, nullptr, inline_batch);
}

std::vector<std::string> Router::readiness_failures() const {
  std::vector<std::string> failing;
  if (shutting_down()) failing.emplace_back("server is shutting down");
  if (!deps_.model_info(0)) failing.emplace_back("model: none loaded");
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

json::array Router::server_extensions() const {
  json::array extensions;
  if (!deps_.models.empty()) extensions.emplace_back("model_repository");
  return extensions;
}

Response Router::live_response(bool kserve) const {
  // Liveness: only what a restart would cure (a scoring worker hung past its bound, so its
  // partitions' commits are frozen). Everything else is readiness.
  const std::vector<std::string> failing =
      deps_.liveness_failures ? deps_.liveness_failures() : std::vector<std::string>{};
  if (failing.empty()) {
    return make_response(200, kserve ? R"({"live":true})" : R"({"status":"ok"})");
  }
  json::array reasons;
  for (const auto& r : failing) reasons.emplace_back(r);
  json::object body = kserve ? json::object{{"live", false}} : json::object{{"status", "failing"}};
  body["failing"] = std::move(reasons);
  return json_response(503, body);
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

Response Router::model_info_response(const scoring::ModelInfo& info, size_t index) const {
  json::array inputs;
  for (const auto& n : info.input_names) inputs.emplace_back(n);
  json::object body{{"name", info.name},
                    {"version", info.version},
                    {"description", info.description},
                    {"inputs", std::move(inputs)},
                    {"output", info.output_name},
                    {"threshold", as_short_double(info.threshold)},
                    {"device", info.device},
                    {"loaded_at_ms", info.loaded_at_ms},
                    {"reason_codes", info.baseline.size() == info.width()},
                    {"model_yaml", info.metadata_text}};
  if (auto shadow = deps_.shadow_info ? deps_.shadow_info(index) : nullptr) {
    body["shadow"] = json::object{{"version", shadow->version},
                                  {"threshold", as_short_double(shadow->threshold)},
                                  {"loaded_at_ms", shadow->loaded_at_ms}};
  } else {
    body["shadow"] = nullptr;
  }
  return json_response(200, body);
}

}  // namespace vigil::http

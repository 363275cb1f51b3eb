// The HTTP side-port's request -> response logic, without sockets: the server feeds it parsed
// requests and writes what it answers; tests call it directly.
//
// Routes (GET unless marked):
//   POST /predict[?model=m]                         {"instances": [...]}  -> {"predictions": [...]}
//   POST /recommend                                 {"customer_id", "k", "exclude_seen"}
//                                                   -> {"recommendations": [...]}
//                                                   (router_recommend.cpp)
//   GET  /v2  /v2/health/live  /v2/health/ready     Open Inference Protocol (KServe v2)
//   GET  /v2/models/{m}[/versions/{v}][/ready]
//   POST /v2/models/{m}[/versions/{v}]/infer
//   GET  /health  /ready  /model/info[?model=m]  /metrics  /openapi.json
//   GET  /v1/scores/{transaction_id}                the score record cached in Redis
//   GET  /  /ui                                     the live view (an HTML page)
//   GET  /v1/events                                 its server-sent events (the server streams
//                                                   them; the router only admits the stream)
//   POST /v2/repository/index                       versions and their state
//   POST /v2/repository/models/{m}/load|unload      {"parameters": {"version": "2",
//                                                    "shadow": true}} (both optional)
//
// Auth: the scoring routes, score lookups and the live view's stream take http.auth_token (when
// set); the repository routes take http.admin_token and are off (403) without one. Nothing
// else needs a token, and unauthenticated answers carry no filesystem path.
//
// Errors are {"error": "<what is wrong, naming the field or index>"} with 400 (not JSON),
// 401 (bearer token missing, or the scoring token wrong), 403 (repository routes: admin token
// wrong or not configured), 404 (route, model or
// version), 409 (unload of the only servable version), 400 (a version refused by load),
// 405 (method; Allow names the right one), 413 (body over http.max_body_bytes, from the server),
// 422 (wrong shape, type, count; unknown/missing feature; NaN), 503 + Retry-After (queue full,
// shutting down, no model, request_timeout passed), 500 (a bug, or the model failed).
//
// Scoring: every instance becomes one ScoreRequest (origin kHttp, Priority::kHigh) on the same
// queue as the Kafka events. The answer is given when the last instance completes (a shared
// counter); if some instance cannot be queued (queue full, closed) the request is answered 503
// at once and its instances already queued complete harmlessly later.
//
// Threads: handle() runs on io threads (any number at once). `respond` is called exactly once,
// either before handle() returns (everything but scoring) or on a scoring worker thread; it must
// not block. The state of a scoring call is shared by its ScoreRequests, so completions that
// arrive after the connection or even the server are gone touch only that state, the queue and
// the score sink.
#pragma once

#include <atomic>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/array.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/event_streams.h"
#include "http/http_config.h"
#include "http/http_deps.h"
#include "http/responses.h"
#include "http/route.h"

namespace vigil::http {

class InlineBatch;
class ScoringCall;

class Router {
 public:
  Router(const HttpConfig& config, HttpDeps deps);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Answers `req` by calling `respond` exactly once (see the threads note above).
  void handle(Request req, Respond respond);
  // The same, for a request whose target the caller has matched already. With `inline_batch`
  // (the server's io thread's), scoring rows go through it (scored on that thread when the
  // batcher is idle); without, straight to the queue.
  void handle(const RouteMatch& route, Request req, Respond respond,
              InlineBatch* inline_batch = nullptr);

  // From now on the scoring routes answer 503 + Retry-After and the readiness routes fail.
  // Thread-safe, idempotent.
  void begin_shutdown() { shutting_down_.store(true, std::memory_order_release); }
  bool shutting_down() const { return shutting_down_.load(std::memory_order_acquire); }

  // Why the process is not ready (empty = ready): shutting down, no model, queue at or above its
  // high watermark, and HttpDeps::readiness_failures.
  std::vector<std::string> readiness_failures() const;

  // GET /v1/events: the bearer token (header, or ?access_token= since browsers' EventSource
  // cannot send headers), not shutting down, the live view on, a subscriber slot free. Returns
  // the new stream (woken through `wake`), or null with `refusal` set to the answer to give.
  std::shared_ptr<EventFeed> subscribe_events(const Request& req, std::function<void()> wake,
                                              Response& refusal);

 private:
  struct Schema;
  void dispatch(const RouteMatch& route, Request& req, const Respond& respond,
                InlineBatch* inline_batch);
  // Hands a call's rows to `inline_batch`, or to the queue without one.
  void submit_rows(const std::shared_ptr<ScoringCall>& call, std::vector<std::vector<float>>& rows,
                   const std::vector<std::string>* ids, InlineBatch* inline_batch);
  bool authorized(const Request& req) const;
  bool token_in_query(std::string_view target) const;
  // Answers 401 or 503 and returns false when a scoring request may not proceed.
  bool admit(const Request& req, const Respond& respond) const;
  // Answers 401, 403 or 503 and returns false when a repository request may not proceed.
  bool admit_admin(const Request& req, const Respond& respond) const;
  // The Open Inference Protocol extensions served, for GET /v2.
  boost::json::array server_extensions() const;
  std::shared_ptr<const Schema> schema_for(size_t index,
                                           std::shared_ptr<const scoring::ModelInfo> info);
  size_t model_count() const;
  // The names of the models served, quoted and comma-separated, for a 404 naming them.
  std::string served_model_names() const;
  // The index of the model served as `name`, if one is.
  std::optional<size_t> model_index(std::string_view name) const;
  // The current version of the model called `name` and its index; otherwise answers 404
  // (naming the models served) or 503 (not loaded yet) and returns null.
  std::shared_ptr<const scoring::ModelInfo> find_model(std::string_view name,
                                                       const Respond& respond, size_t& index);
  // The model ?model= names in `target`, else the default one; as find_model.
  std::shared_ptr<const scoring::ModelInfo> model_in_query(std::string_view target,
                                                           const Respond& respond, size_t& index);
  void predict(Request& req, const Respond& respond, InlineBatch* inline_batch);
  void infer(const RouteMatch& route, Request& req, const Respond& respond,
             InlineBatch* inline_batch);
  void model_metadata(const RouteMatch& route, const Respond& respond);
  void model_ready(const RouteMatch& route, const Respond& respond);
  void model_info(const Request& req, const Respond& respond);
  // The repository extension (router_repository.cpp).
  void repository(const RouteMatch& route, Request& req, const Respond& respond);
  void score_lookup(const RouteMatch& route, Request& req, const Respond& respond);
  // POST /recommend (router_recommend.cpp).
  void recommend(Request& req, const Respond& respond);
  // /v2/models/{m}[/versions/{v}] and .../ready when {m} is the recommender's model: answers
  // (its metadata, or whether it is ready) and returns true; false for any other model.
  bool recommender_model(const RouteMatch& route, bool ready, const Respond& respond);
  // The current model when `route` names it (and its version, when given); otherwise answers
  // 404 (or 503 without a model) and returns null.
  std::shared_ptr<const scoring::ModelInfo> model_for(const RouteMatch& route,
                                                      const Respond& respond, size_t& index);
  Response ready_response(bool kserve) const;
  // /health and /v2/health/live: 200, or 503 naming what a restart would cure.
  Response live_response(bool kserve) const;
  Response model_info_response(const scoring::ModelInfo& info, size_t index) const;

  const HttpConfig config_;
  const HttpDeps deps_;
  std::atomic<bool> shutting_down_{false};
  std::mutex schema_mutex_;
  // By model index: for the last version of it seen.
  std::vector<std::shared_ptr<const Schema>> schemas_;
};

}  // namespace vigil::http

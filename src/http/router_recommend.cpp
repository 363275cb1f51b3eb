// POST /recommend: the top k terminals for a customer, from the recommender model
// (recommend::Recommender, docs/scout.md):
//
//   {"customer_id": "C000123", "k": 10, "exclude_seen": false}
//   -> {"customer_id", "model_name", "model_version", "cold_start",
//       "recommendations": [{"terminal_id", "score"}, ...]}   best first, ties in id order
//
// customer_id is required (a non-empty string of at most 256 bytes); k is 1..100 (default 10);
// exclude_seen (default false) leaves out the terminals the customer visited in the model's
// training data. An unknown customer gets the most popular terminals, "cold_start": true.
// Errors name the field: 400 (not JSON), 422 (a field), 503 + Retry-After (queue full,
// shutting down, the configured model not loaded), 404 (recommend.model empty).
// It takes the scoring token (http.auth_token) like /predict. The answer comes from the
// recommender's worker thread; this io thread does not wait for it.
#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <optional>

#include "http/inference_request.h"
#include "http/router.h"
#include "recommend/recommend_service.h"

namespace vigil::http {

namespace json = boost::json;

namespace {

constexpr size_t kMaxCustomerIdBytes = 256;
constexpr int kDefaultK = 10;

struct RecommendRequest {
  std::string customer_id;
  int k = kDefaultK;
  bool exclude_seen = false;
};

std::optional<HttpError> parse_recommend(std::string_view body, RecommendRequest& out) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return HttpError{400, "body is not JSON: " + ec.message()};
  if (!v.is_object()) return HttpError{422, "body must be a JSON object"};
  const json::object& root = v.as_object();
  const json::value* id = root.if_contains("customer_id");
  if (id == nullptr || !id->is_string() || id->as_string().empty() ||
      id->as_string().size() > kMaxCustomerIdBytes) {
    return HttpError{422, "customer_id must be a string of 1 to " +
                              std::to_string(kMaxCustomerIdBytes) + " bytes"};
  }
  out.customer_id = std::string(id->as_string());
  if (const json::value* k = root.if_contains("k")) {
    double n = 0;  // 0: not a number
    if (k->is_int64()) {
      n = static_cast<double>(std::clamp<int64_t>(k->as_int64(), -1, recommend::kMaxK + 1));
    } else if (k->is_uint64()) {
      n = static_cast<double>(std::min<uint64_t>(k->as_uint64(), recommend::kMaxK + 1));
    } else if (k->is_double()) {
      n = k->as_double();
    }
    if (!(n >= 1 && n <= recommend::kMaxK) || n != std::floor(n)) {
      return HttpError{422, "k must be an integer within [1, " + std::to_string(recommend::kMaxK) +
                                "], got " + json::serialize(*k)};
    }
    out.k = static_cast<int>(n);
  }
  if (const json::value* e = root.if_contains("exclude_seen")) {
    if (!e->is_bool()) return HttpError{422, "exclude_seen must be true or false"};
    out.exclude_seen = e->as_bool();
  }
  return std::nullopt;
}

}  // namespace

void Router::recommend(Request& req, const Respond& respond) {
  if (!admit(req, respond)) return;
  recommend::RecommendService* r = deps_.recommender;
  if (r == nullptr) {
    if (deps_.recommender_missing.empty()) {
      respond(error_response(404, "no recommender: recommend.model is empty"));
    } else {
      respond(error_response(503, "no recommender: " + deps_.recommender_missing));
    }
    return;
  }
  RecommendRequest parsed;
  if (auto err = parse_recommend(req.body(), parsed)) {
    respond(error_response(err->status, err->message));
    return;
  }
  const std::string name = r->name();
  std::string customer = parsed.customer_id;
  const bool queued = r->recommend(
      std::move(parsed.customer_id), parsed.k, parsed.exclude_seen,
      [respond, customer, name](Result<recommend::Recommendation> res) {
        if (!res.ok()) {
          respond(error_response(res.status()));
          return;
        }
        json::array items;
        items.reserve(res->items.size());
        for (size_t i = 0; i < res->items.size(); ++i) {
          items.push_back(json::object{{"terminal_id", res->items[i]},
                                       {"score", as_short_double(res->scores[i])}});
        }
        respond(json_response(200, json::object{{"customer_id", customer},
                                                {"model_name", name},
                                                {"model_version", res->version},
                                                {"cold_start", res->cold_start},
                                                {"recommendations", std::move(items)}}));
      });
  if (!queued) {
    respond(error_response(503, "the recommendation queue is full (or the server is stopping)"));
  }
}

bool Router::recommender_model(const RouteMatch& route, bool ready, const Respond& respond) {
  recommend::RecommendService* r = deps_.recommender;
  if (r == nullptr || route.model != r->name()) return false;
  const std::string version = r->version();
  if (!route.version.empty() && route.version != version) {
    respond(error_response(404, "model '" + r->name() + "' has no version '" + route.version +
                                    "'; the version served is '" + version + "'"));
    return true;
  }
  if (ready) {
    const bool up = !shutting_down();
    respond(json_response(up ? 200 : 503, json::object{{"name", r->name()}, {"ready", up}}));
    return true;
  }
  // What POST /recommend takes and answers, in the protocol's terms.
  auto tensor = [](const char* name, const char* type, int64_t size) {
    return json::object{{"name", name}, {"datatype", type}, {"shape", json::array{size}}};
  };
  respond(json_response(
      200, json::object{
               {"name", r->name()},
               {"version", version},
               {"versions", json::array{json::value(version)}},
               {"platform", "pytorch_torchscript"},
               {"inputs", json::array{tensor("customer_id", "BYTES", 1), tensor("k", "INT32", 1),
                                      tensor("exclude_seen", "BOOL", 1)}},
               {"outputs",
                json::array{tensor("terminal_id", "BYTES", -1), tensor("score", "FP32", -1)}}}));
  return true;
}

}  // namespace vigil::http

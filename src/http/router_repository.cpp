// The Open Inference Protocol's model repository extension, over scoring::ModelManager:
//
//   POST /v2/repository/index               {"ready": true}? -> [{"name", "version", "state",
//                                                                  "reason"}, ...]
//   POST /v2/repository/models/{m}/load     {"parameters": {"version": "2", "shadow": true}}?
//   POST /v2/repository/models/{m}/unload   {"parameters": {"version": "2"}}?
//
// Every route takes the admin token (http.admin_token; see Router::admit_admin), not the scoring
// token, and is off (403) without one.
//
// load without a version serves the highest one; with "shadow": true the version shadows the
// served one instead. unload without a version unloads the served one (the highest other
// version is served instead; 409 when there is none); unloading the shadow version ends the
// shadow. A version load refuses answers 400 with the reason, and the served one stays. The
// load runs on the manager's thread: this io thread does not wait for it.
#include <boost/json.hpp>
#include <optional>

#include "http/inference_request.h"
#include "http/router.h"
#include "scoring/model_manager.h"

namespace vigil::http {

namespace json = boost::json;

namespace {

struct RepositoryParameters {
  std::string version;  // empty: not given
  bool shadow = false;
  bool ready_only = false;
};

// Parses the optional body; an error names the field.
std::optional<HttpError> parse_parameters(std::string_view body, RepositoryParameters& out) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return std::nullopt;
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return HttpError{400, "body is not JSON: " + ec.message()};
  if (!v.is_object()) return HttpError{422, "body must be a JSON object"};
  const json::object& root = v.as_object();
  if (const json::value* ready = root.if_contains("ready")) {
    if (!ready->is_bool()) return HttpError{422, "ready must be true or false"};
    out.ready_only = ready->as_bool();
  }
  const json::value* params = root.if_contains("parameters");
  if (params == nullptr || params->is_null()) return std::nullopt;
  if (!params->is_object()) return HttpError{422, "parameters must be an object"};
  const json::object& p = params->as_object();
  if (const json::value* version = p.if_contains("version")) {
    if (version->is_string()) {
      out.version = std::string(version->as_string());
    } else if (version->is_int64() && version->as_int64() >= 0) {
      out.version = std::to_string(version->as_int64());
    } else {
      return HttpError{422, "parameters.version must be a version number or its string"};
    }
  }
  if (const json::value* shadow = p.if_contains("shadow")) {
    if (!shadow->is_bool()) return HttpError{422, "parameters.shadow must be true or false"};
    out.shadow = shadow->as_bool();
  }
  return std::nullopt;
}

}  // namespace

void Router::repository(const RouteMatch& route, Request& req, const Respond& respond) {
  if (!admit_admin(req, respond)) return;
  if (deps_.models.empty()) {
    respond(error_response(404, "this server has no model repository (a model was given)"));
    return;
  }
  RepositoryParameters params;
  if (auto err = parse_parameters(req.body(), params)) {
    respond(error_response(err->status, err->message));
    return;
  }
  if (route.id == RouteId::kRepositoryIndex) {
    json::array index;
    for (scoring::ModelManager* models : deps_.models) {
      for (const auto& v : models->index()) {
        if (params.ready_only && v.state != "READY") continue;
        index.push_back(json::object{{"name", models->name()},
                                     {"version", v.version},
                                     {"state", v.state},
                                     {"reason", v.reason}});
      }
    }
    Response res{boost::beast::http::status::ok, 11};
    res.set(boost::beast::http::field::content_type, "application/json");
    res.body() = json::serialize(index);
    respond(std::move(res));
    return;
  }
  scoring::ModelManager* models = nullptr;
  for (scoring::ModelManager* m : deps_.models) {
    if (m->name() == route.model) models = m;
  }
  if (models == nullptr) {
    respond(error_response(
        404, "model '" + route.model + "' not found; this server serves " + served_model_names()));
    return;
  }
  const std::string name = models->name();
  auto done = [respond, name](const scoring::ModelManager::Reply& reply) {
    if (!reply.ok()) {
      respond(error_response(reply.status()));  // its code says 400, 404, 409 or 503
      return;
    }
    Response res{boost::beast::http::status::ok, 11};
    res.set(boost::beast::http::field::content_type, "application/json");
    res.body() = json::serialize(json::object{{"name", name}, {"message", *reply}});
    respond(std::move(res));
  };
  if (route.id == RouteId::kRepositoryLoad) {
    models->load(params.version, params.shadow, std::move(done));
  } else {
    models->unload(params.version, std::move(done));
  }
}

}  // namespace vigil::http

// The route table of the HTTP side-port: request target -> RouteId (+ its parameters), each
// route's label for metrics. Implemented in routes.cpp.
#pragma once

#include <string>
#include <string_view>

namespace vigil::http {

// The name of the one input tensor in Open Inference Protocol requests and metadata.
inline constexpr const char* kInferInputName = "features";

enum class RouteId {
  kUnmatched,
  kPredict,
  kRecommend,
  kV2Server,
  kV2Live,
  kV2Ready,
  kV2Model,
  kV2ModelReady,
  kV2ModelVersion,
  kV2ModelVersionReady,
  kV2Infer,
  kV2VersionInfer,
  kHealth,
  kReady,
  kModelInfo,
  kMetrics,
  kOpenApi,
  kRepositoryIndex,
  kRepositoryLoad,
  kRepositoryUnload,
  kScoreLookup,
  kLivePage,
  kEvents,
};

struct RouteMatch {
  RouteId id = RouteId::kUnmatched;
  std::string model;           // {m}
  std::string version;         // {v}
  std::string transaction_id;  // {transaction_id}, percent-decoded
};

// Matches a request target (the query string is ignored) against the route templates.
RouteMatch match_route(std::string_view target);
// The route template, used as the `route` metric label ("unmatched" for 404s).
const char* route_label(RouteId id);

// Scoring routes (POST, bearer token: /predict, infer, /recommend) and repository routes
// (POST, bearer token).
bool is_scoring(RouteId id);
bool is_repository(RouteId id);

inline constexpr size_t kRouteCount = static_cast<size_t>(RouteId::kEvents) + 1;

}  // namespace vigil::http

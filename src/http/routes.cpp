// The route table: request target -> RouteId (+ model, version), and each route's label.
#include <optional>
#include <string>
#include <vector>

#include "common/percent.h"
#include "http/route.h"

namespace vigil::http {

namespace {

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

}  // namespace

bool is_scoring(RouteId id) {
  return id == RouteId::kPredict || id == RouteId::kV2Infer || id == RouteId::kV2VersionInfer ||
         id == RouteId::kRecommend;
}

bool is_repository(RouteId id) {
  return id == RouteId::kRepositoryIndex || id == RouteId::kRepositoryLoad ||
         id == RouteId::kRepositoryUnload;
}

RouteMatch match_route(std::string_view target) {
  const auto q = target.find('?');
  const auto parts = split_path(target.substr(0, q));
  RouteMatch m;
  const size_t n = parts.size();
  auto is = [&](size_t i, std::string_view s) { return i < n && parts[i] == s; };
  if (n == 0 || (n == 1 && is(0, "ui"))) {
    m.id = RouteId::kLivePage;
  } else if (n == 2 && is(0, "v1") && is(1, "events")) {
    m.id = RouteId::kEvents;
  } else if (n == 1 && is(0, "predict")) {
    m.id = RouteId::kPredict;
  } else if (n == 1 && is(0, "recommend")) {
    m.id = RouteId::kRecommend;
  } else if (n == 1 && is(0, "health")) {
    m.id = RouteId::kHealth;
  } else if (n == 1 && is(0, "ready")) {
    m.id = RouteId::kReady;
  } else if (n == 1 && is(0, "metrics")) {
    m.id = RouteId::kMetrics;
  } else if (n == 1 && is(0, "openapi.json")) {
    m.id = RouteId::kOpenApi;
  } else if (n == 3 && is(0, "v1") && is(1, "scores")) {
    if (auto id = percent_decode(parts[2])) {
      m.id = RouteId::kScoreLookup;
      m.transaction_id = std::move(*id);
    }
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
    m.transaction_id.clear();
  }
  return m;
}

const char* route_label(RouteId id) {
  switch (id) {
    case RouteId::kUnmatched:
      return "unmatched";
    case RouteId::kPredict:
      return "/predict";
    case RouteId::kRecommend:
      return "/recommend";
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
    case RouteId::kScoreLookup:
      return "/v1/scores/{transaction_id}";
    case RouteId::kLivePage:
      return "/";
    case RouteId::kEvents:
      return "/v1/events";
  }
  return "unmatched";
}

}  // namespace vigil::http

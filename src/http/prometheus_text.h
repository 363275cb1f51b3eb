// Prometheus exposition of the process's metrics registry.
#pragma once

#include <string>

#include "common/metrics.h"

namespace vigil::http {

// The registry in the Prometheus text format 0.0.4 (what GET /metrics serves), written by
// prometheus-cpp's TextSerializer so that escaping and number formatting follow the reference.
std::string render_prometheus(const metrics::Registry& registry);

// The Content-Type of that text.
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace vigil::http

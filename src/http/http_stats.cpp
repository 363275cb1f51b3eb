#include "http/http_stats.h"

namespace vigil::http {

HttpStats::HttpStats(metrics::Registry& r)
    : registry_(r),
      connections_(r.gauge("vigil_http_connections", "Open HTTP connections")),
      rejected_(
          r.counter("vigil_http_connections_rejected_total",
                    "HTTP connections closed at once because http.max_connections were open")),
      read_timeouts_(
          r.counter("vigil_http_read_timeouts_total",
                    "HTTP requests that did not arrive whole within http.read_timeout_ms "
                    "(the connection was closed)")),
      request_timeouts_(r.counter("vigil_http_request_timeouts_total",
                                  "Scoring requests not answered within http.request_timeout_ms "
                                  "(answered 503)")) {}

void HttpStats::request_answered(const char* route, unsigned status,
                                 std::chrono::nanoseconds elapsed) {
  metrics::Counter* counter = nullptr;
  metrics::Histogram* duration = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = routes_.find(std::string_view(route));
    if (it == routes_.end()) {
      it = routes_.emplace(route, RouteSeries{}).first;
      it->second.duration = &registry_.histogram(
          "vigil_http_request_duration_seconds",
          "Time from an HTTP request fully read to its response ready, by route",
          metrics::latency_buckets_seconds(), {{"route", route}});
    }
    auto& slot = it->second.by_status[status];
    if (slot == nullptr) {
      slot = &registry_.counter("vigil_http_requests_total",
                                "HTTP requests answered, by route and status",
                                {{"route", route}, {"code", std::to_string(status)}});
    }
    counter = slot;
    duration = it->second.duration;
  }
  counter->inc();
  duration->observe(std::chrono::duration<double>(elapsed).count());
}

}  // namespace vigil::http

#include "http/http_stats.h"

namespace vigil::http {

HttpStats::HttpStats(metrics::Registry& r)
    : registry_(r),
      connections_(r.gauge("vigil_http_connections", "Open HTTP connections")),
      rejected_(
          r.counter("vigil_http_connections_rejected_total",
                    "HTTP connections closed at once because http.max_connections were open")),
      displaced_(r.counter("vigil_http_connections_displaced_total",
                           "HTTP connections without a whole request header yet, closed to make "
                           "room for a new one at http.max_connections")),
      header_timeouts_(r.counter("vigil_http_header_timeouts_total",
                                 "HTTP connections closed because a request header did not "
                                 "arrive whole within http.header_timeout_ms")),
      read_timeouts_(
          r.counter("vigil_http_read_timeouts_total",
                    "HTTP requests that did not arrive whole within http.read_timeout_ms "
                    "(the connection was closed)")),
      request_timeouts_(r.counter("vigil_http_request_timeouts_total",
                                  "Scoring requests not answered within http.request_timeout_ms "
                                  "(answered 503)")) {}

void HttpStats::request_answered(RouteId route, unsigned status, std::chrono::nanoseconds elapsed) {
  counter_of(route, status).inc();
  duration_of(route).observe(std::chrono::duration<double>(elapsed).count());
}

metrics::Histogram& HttpStats::duration_of(RouteId route) {
  auto& slot = routes_[static_cast<size_t>(route)].duration;
  if (metrics::Histogram* h = slot.load(std::memory_order_acquire)) return *h;
  std::lock_guard<std::mutex> lock(mutex_);
  metrics::Histogram* h =
      &registry_.histogram("vigil_http_request_duration_seconds",
                           "Time from an HTTP request fully read to its response ready, by route",
                           metrics::latency_buckets_seconds(), {{"route", route_label(route)}});
  slot.store(h, std::memory_order_release);
  return *h;
}

metrics::Counter& HttpStats::counter_of(RouteId route, unsigned status) {
  size_t i = 0;
  while (i < kStatusSlots && kStatuses[i] != status) ++i;
  auto register_counter = [&] {
    return &registry_.counter("vigil_http_requests_total",
                              "HTTP requests answered, by route and status",
                              {{"route", route_label(route)}, {"code", std::to_string(status)}});
  };
  if (i == kStatusSlots) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& c = other_statuses_[{route, status}];
    if (c == nullptr) c = register_counter();
    return *c;
  }
  auto& slot = routes_[static_cast<size_t>(route)].by_status[i];
  if (metrics::Counter* c = slot.load(std::memory_order_acquire)) return *c;
  std::lock_guard<std::mutex> lock(mutex_);
  metrics::Counter* c = register_counter();  // the same series if another thread raced us
  slot.store(c, std::memory_order_release);
  return *c;
}

HttpStats::Figures HttpStats::figures() const {
  Figures f;
  for (const RouteSeries& route : routes_) {
    if (const metrics::Histogram* h = route.duration.load(std::memory_order_acquire)) {
      f.duration.add(h->snapshot());
    }
    for (const auto& slot : route.by_status) {
      if (const metrics::Counter* c = slot.load(std::memory_order_acquire))
        f.requests += c->value();
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [_, c] : other_statuses_) f.requests += c->value();
  return f;
}

}  // namespace vigil::http

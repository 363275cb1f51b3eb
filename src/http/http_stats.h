// The HTTP side-port's metrics, with verbs the server calls. Thread-safe.
//
//   vigil_http_requests_total{route,code}           answers, by route template and status
//   vigil_http_request_duration_seconds{route}      request fully read -> response ready
//   vigil_http_connections                          open connections
//   vigil_http_connections_rejected_total           closed at once: over http.max_connections
//   vigil_http_connections_displaced_total          closed to make room for a new connection:
//                                                   the oldest without a whole request header
//   vigil_http_header_timeouts_total                a header did not arrive within header_timeout
//   vigil_http_read_timeouts_total                  a request did not arrive within read_timeout
//   vigil_http_request_timeouts_total               scoring did not answer within request_timeout
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "common/metrics.h"
#include "http/route.h"

namespace vigil::http {

class HttpStats {
 public:
  explicit HttpStats(metrics::Registry& registry);

  // Labelled with the route's template ("/v2/models/{m}/infer"), so cardinality stays bounded.
  // Lock-free once a (route, status) pair has been seen (the series are found, not looked up).
  void request_answered(RouteId route, unsigned status, std::chrono::nanoseconds elapsed);
  void connection_opened() { connections_.add(1); }
  void connection_closed() { connections_.add(-1); }
  void connection_rejected() { rejected_.inc(); }
  void connection_displaced() { displaced_.inc(); }
  void header_timed_out() { header_timeouts_.inc(); }
  void read_timed_out() { read_timeouts_.inc(); }
  void request_timed_out() { request_timeouts_.inc(); }

  // What the live view shows of the side-port (src/live). Any thread.
  struct Figures {
    uint64_t requests = 0;                  // answered since start, every route and status
    metrics::Histogram::Snapshot duration;  // request read -> response ready, every route
  };
  Figures figures() const;

  double connections() const { return connections_.value(); }
  uint64_t read_timeouts() const { return read_timeouts_.value(); }
  uint64_t request_timeouts() const { return request_timeouts_.value(); }
  uint64_t rejected_connections() const { return rejected_.value(); }
  uint64_t displaced_connections() const { return displaced_.value(); }
  uint64_t header_timeouts() const { return header_timeouts_.value(); }

 private:
  // The statuses the router answers, each with a slot; others are looked up under the lock.
  static constexpr unsigned kStatuses[] = {200, 400, 401, 403, 404, 405, 409, 413, 422, 500, 503};
  static constexpr size_t kStatusSlots = sizeof(kStatuses) / sizeof(kStatuses[0]);
  struct RouteSeries {
    std::atomic<metrics::Histogram*> duration{nullptr};
    std::array<std::atomic<metrics::Counter*>, kStatusSlots> by_status{};
  };
  metrics::Histogram& duration_of(RouteId route);
  metrics::Counter& counter_of(RouteId route, unsigned status);

  metrics::Registry& registry_;
  metrics::Gauge& connections_;
  metrics::Counter& rejected_;
  metrics::Counter& displaced_;
  metrics::Counter& header_timeouts_;
  metrics::Counter& read_timeouts_;
  metrics::Counter& request_timeouts_;
  // The registry's lookups take its lock and scan: each series is found once, under mutex_,
  // and kept here.
  std::array<RouteSeries, kRouteCount> routes_;
  mutable std::mutex mutex_;
  std::map<std::pair<RouteId, unsigned>, metrics::Counter*> other_statuses_;  // guarded
};

}  // namespace vigil::http

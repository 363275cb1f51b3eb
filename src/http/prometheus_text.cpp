#include "http/prometheus_text.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <limits>
#include <sstream>

namespace vigil::http {

namespace {

prometheus::MetricType to_prometheus(metrics::Type t) {
  switch (t) {
    case metrics::Type::kCounter:
      return prometheus::MetricType::Counter;
    case metrics::Type::kGauge:
      return prometheus::MetricType::Gauge;
    case metrics::Type::kHistogram:
      return prometheus::MetricType::Histogram;
  }
  return prometheus::MetricType::Untyped;
}

}  // namespace

std::string render_prometheus(const metrics::Registry& registry) {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& f : registry.collect()) {
    prometheus::MetricFamily pf;
    pf.name = f.name;
    pf.help = f.help;
    pf.type = to_prometheus(f.type);
    for (const auto& s : f.series) {
      prometheus::ClientMetric m;
      for (const auto& [name, value] : s.labels) m.label.push_back({name, value});
      switch (f.type) {
        case metrics::Type::kCounter:
          m.counter.value = s.value;
          break;
        case metrics::Type::kGauge:
          m.gauge.value = s.value;
          break;
        case metrics::Type::kHistogram: {
          const auto& h = s.histogram;
          m.histogram.sample_count = h.count;  // equals the +Inf bucket (see Histogram)
          m.histogram.sample_sum = h.sum;
          // cumulative_counts has one entry per bound, then +Inf.
          for (size_t i = 0; i < h.cumulative_counts.size(); ++i) {
            const double le = i < h.upper_bounds.size() ? h.upper_bounds[i]
                                                        : std::numeric_limits<double>::infinity();
            m.histogram.bucket.push_back({h.cumulative_counts[i], le});
          }
          break;
        }
      }
      pf.metric.push_back(std::move(m));
    }
    families.push_back(std::move(pf));
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace vigil::http

// The Prometheus exposition of the metrics registry, checked by hand and by promtool.
#include "http/prometheus_text.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "http/http_stats.h"

namespace vigil::http {
namespace {

bool promtool_available() {
  return std::system("command -v promtool >/dev/null 2>&1") == 0;
}

// Runs `promtool check metrics` on `text`; returns its exit status and fills `output`.
int promtool_check(const std::string& text, std::string& output) {
  const auto dir = std::filesystem::temp_directory_path();
  const auto tag = std::to_string(reinterpret_cast<uintptr_t>(&text)) + "_" +
                   std::to_string(::testing::UnitTest::GetInstance()->random_seed());
  const auto in = dir / ("vigil_metrics_" + tag + ".txt");
  const auto out = dir / ("vigil_promtool_" + tag + ".txt");
  std::ofstream(in) << text;
  const std::string cmd =
      "promtool check metrics < " + in.string() + " > " + out.string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream f(out);
  output.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  std::filesystem::remove(in);
  std::filesystem::remove(out);
  return rc;
}

void fill(metrics::Registry& r) {
  r.counter("vigil_events_consumed_total", "Events read from Kafka").inc(42);
  r.counter("vigil_requests_failed_total", "Requests that could not be scored, by reason",
            {{"reason", "model_error"}})
      .inc(3);
  r.counter("vigil_requests_failed_total", "Requests that could not be scored, by reason",
            {{"reason", "quote\"back\\slash\nnewline"}})
      .inc();
  r.gauge("vigil_queue_depth", "Requests waiting in the scoring queue").set(7);
  r.gauge_callback("vigil_consumer_lag", "Consumer lag in records, by partition",
                   {{"partition", "0"}}, &r, [] { return 12.0; });
  auto& h = r.histogram("vigil_model_compute_seconds", "Forward pass time",
                        metrics::latency_buckets_seconds());
  h.observe(0.0002);
  h.observe(0.003);
  h.observe(100.0);  // beyond every bound: +Inf only
  HttpStats stats(r);
  stats.request_answered(RouteId::kPredict, 200, std::chrono::microseconds(800));
  stats.request_answered(RouteId::kV2Infer, 422, std::chrono::microseconds(100));
  stats.connection_opened();
}

TEST(PrometheusText, WritesCountersGaugesAndCumulativeHistograms) {
  metrics::Registry r;
  fill(r);
  const std::string text = render_prometheus(r);
  EXPECT_NE(text.find("# HELP vigil_events_consumed_total Events read from Kafka\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE vigil_events_consumed_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("vigil_events_consumed_total 42\n"), std::string::npos) << text;
  EXPECT_NE(text.find("vigil_requests_failed_total{reason=\"model_error\"} 3\n"),
            std::string::npos);
  // Label values are escaped.
  EXPECT_NE(text.find(R"(reason="quote\"back\\slash\nnewline")"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE vigil_queue_depth gauge\nvigil_queue_depth 7\n"), std::string::npos);
  EXPECT_NE(text.find("vigil_consumer_lag{partition=\"0\"} 12\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE vigil_model_compute_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("vigil_model_compute_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("vigil_model_compute_seconds_count 3\n"), std::string::npos);
  EXPECT_NE(text.find("vigil_http_requests_total{route=\"/predict\",code=\"200\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vigil_http_request_duration_seconds_count{route=\"/predict\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("vigil_http_connections 1\n"), std::string::npos);
  r.remove_callbacks(&r);
}

TEST(PrometheusText, PassesPromtoolCheckMetrics) {
  if (!promtool_available()) GTEST_SKIP() << "promtool is not installed";
  metrics::Registry r;
  fill(r);
  std::string output;
  const std::string text = render_prometheus(r);
  EXPECT_EQ(promtool_check(text, output), 0) << output << "\n---\n" << text;
  EXPECT_EQ(output, "") << "promtool has remarks:\n" << output;
  r.remove_callbacks(&r);
}

TEST(PrometheusText, AnEmptyRegistryIsAnEmptyDocument) {
  metrics::Registry r;
  EXPECT_EQ(render_prometheus(r), "");
}

}  // namespace
}  // namespace vigil::http

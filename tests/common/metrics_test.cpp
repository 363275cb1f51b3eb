#include "common/metrics.h"

#include <gtest/gtest.h>

namespace vigil::metrics {
namespace {

TEST(Metrics, SameNameAndLabelsGiveTheSameCounter) {
  Registry r;
  auto& a = r.counter("c_total", "help", {{"k", "v"}});
  auto& b = r.counter("c_total", "help", {{"k", "v"}});
  auto& c = r.counter("c_total", "help", {{"k", "w"}});
  a.inc();
  b.inc(2);
  c.inc();
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(a.value(), 3u);
  auto families = r.collect();
  ASSERT_EQ(families.size(), 1u);
  EXPECT_EQ(families[0].series.size(), 2u);
}

TEST(Metrics, HistogramCountsAreCumulativeWithInfBucket) {
  Histogram h({1.0, 2.0, 4.0});
  for (double v : {0.5, 1.0, 1.5, 3.0, 100.0}) h.observe(v);
  auto s = h.snapshot();
  EXPECT_EQ(s.cumulative_counts, (std::vector<uint64_t>{2, 3, 4, 5}));
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.sum, 106.0);
}

TEST(Metrics, GaugeCallbacksAreReadAtCollectionAndRemovedWithTheirOwner) {
  Registry r;
  int owner = 0;
  double v = 1.0;
  r.gauge_callback("g", "help", {}, &owner, [&] { return v; });
  v = 7.0;
  ASSERT_EQ(r.collect().size(), 1u);
  EXPECT_DOUBLE_EQ(r.collect()[0].series[0].value, 7.0);
  r.remove_callbacks(&owner);
  EXPECT_TRUE(r.collect().empty());
}

}  // namespace
}  // namespace vigil::metrics

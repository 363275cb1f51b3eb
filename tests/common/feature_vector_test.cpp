#include "common/feature_vector.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

std::vector<float> iota(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) + 0.5f;
  return v;
}

TEST(FeatureVector, HoldsValuesInlineAndOnTheHeapAlike) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{30}, FeatureVector::kInline,
                   FeatureVector::kInline + 1, size_t{1024}}) {
    const auto values = iota(n);
    FeatureVector f = values;
    ASSERT_EQ(f.size(), n);
    EXPECT_TRUE(std::equal(f.begin(), f.end(), values.begin(), values.end())) << n;
    FeatureVector copy = f;
    FeatureVector moved = std::move(f);
    EXPECT_EQ(f.size(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty
    EXPECT_TRUE(std::equal(copy.begin(), copy.end(), values.begin(), values.end())) << n;
    EXPECT_TRUE(std::equal(moved.begin(), moved.end(), values.begin(), values.end())) << n;
  }
}

TEST(FeatureVector, ResizeKeepsValuesAndZeroesNewOnes) {
  FeatureVector f{1.0f, 2.0f};
  f.resize(40);
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_EQ(f[1], 2.0f);
  EXPECT_EQ(f[39], 0.0f);
  f.assign(3, 7.0f);
  EXPECT_EQ(f.size(), 3u);
  EXPECT_EQ(f[2], 7.0f);
}

TEST(FeatureVector, MoveAssignmentReplacesHeapStorageWithInlineValues) {
  FeatureVector big = iota(100);
  FeatureVector small{3.0f};
  big = std::move(small);
  ASSERT_EQ(big.size(), 1u);
  EXPECT_EQ(big[0], 3.0f);
}

}  // namespace
}  // namespace vigil

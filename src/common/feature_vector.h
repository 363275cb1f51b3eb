// FeatureVector: the features of one request, stored inline up to kInline values (a heap
// buffer beyond). With a std::vector every request cost a malloc on the producing thread and
// a free on the scoring worker, which (measured with perf in scoring_bench) cost more CPU than
// the default model's forward pass itself.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <vector>

#include "common/inline_buffer.h"

namespace vigil {

class FeatureVector : public InlineBuffer<float, 32> {
 public:
  using InlineBuffer::assign;

  FeatureVector() = default;
  FeatureVector(std::initializer_list<float> values) { assign(values.begin(), values.size()); }
  FeatureVector(const std::vector<float>& values) {  // NOLINT(google-explicit-constructor)
    assign(values.data(), values.size());
  }
  FeatureVector& operator=(const std::vector<float>& values) {
    assign(values.data(), values.size());
    return *this;
  }
  FeatureVector& operator=(std::initializer_list<float> values) {
    assign(values.begin(), values.size());
    return *this;
  }

  void assign(size_t n, float value) {
    resize(n);
    std::fill(begin(), end(), value);
  }

  float& operator[](size_t i) { return data()[i]; }
  float operator[](size_t i) const { return data()[i]; }
};

}  // namespace vigil

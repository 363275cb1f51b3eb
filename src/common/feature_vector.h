// FeatureVector: the features of one request, stored inline up to kInline values (a heap
// buffer beyond). Requests cross threads by the hundred thousand per second; with a
// std::vector every one of them cost a malloc on the producing thread and a free on the
// scoring worker, which (measured with perf in scoring_bench) cost more CPU than the default
// model's forward pass itself.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <vector>

namespace vigil {

class FeatureVector {
 public:
  static constexpr size_t kInline = 32;

  FeatureVector() = default;
  FeatureVector(std::initializer_list<float> values) { assign(values.begin(), values.size()); }
  FeatureVector(const std::vector<float>& values) {  // NOLINT(google-explicit-constructor)
    assign(values.data(), values.size());
  }
  FeatureVector(const FeatureVector& o) { assign(o.data(), o.size()); }
  FeatureVector(FeatureVector&& o) noexcept { take(o); }
  FeatureVector& operator=(const FeatureVector& o) {
    if (this != &o) assign(o.data(), o.size());
    return *this;
  }
  FeatureVector& operator=(FeatureVector&& o) noexcept {
    if (this != &o) take(o);
    return *this;
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
  // Size changes keep the first min(old, new) values; new ones are zero.
  void resize(size_t n) {
    if (n > capacity()) {
      auto bigger = std::make_unique<float[]>(n);
      std::memcpy(bigger.get(), data(), size_ * sizeof(float));
      heap_ = std::move(bigger);
      heap_capacity_ = n;
    }
    if (n > size_) std::fill(data() + size_, data() + n, 0.0f);
    size_ = n;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  float* data() { return heap_ ? heap_.get() : inline_; }
  const float* data() const { return heap_ ? heap_.get() : inline_; }
  float* begin() { return data(); }
  float* end() { return data() + size_; }
  const float* begin() const { return data(); }
  const float* end() const { return data() + size_; }
  float& operator[](size_t i) { return data()[i]; }
  float operator[](size_t i) const { return data()[i]; }

 private:
  size_t capacity() const { return heap_ ? heap_capacity_ : kInline; }
  void assign(const float* values, size_t n) {
    size_ = 0;
    resize(n);
    if (n) std::memcpy(data(), values, n * sizeof(float));
  }
  void take(FeatureVector& o) {
    if (o.heap_) {
      heap_ = std::move(o.heap_);
      heap_capacity_ = o.heap_capacity_;
    } else {
      heap_.reset();
      std::memcpy(inline_, o.inline_, o.size_ * sizeof(float));
    }
    size_ = o.size_;
    o.size_ = 0;
    o.heap_capacity_ = 0;
  }

  size_t size_ = 0;
  std::unique_ptr<float[]> heap_;
  size_t heap_capacity_ = 0;
  float inline_[kInline];
};

}  // namespace vigil

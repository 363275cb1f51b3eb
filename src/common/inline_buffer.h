// InlineBuffer<T, N>: up to N trivially copyable values stored inside the object, a heap
// buffer beyond; the storage under FeatureVector and InlineString. Requests cross threads by
// the hundred thousand per second: with a std::vector or a std::string every one of them
// cost a malloc on the producing thread and a free on the scoring worker. A heap buffer, once
// there, is kept when the contents shrink, so a reused object stops allocating.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <type_traits>

namespace vigil {

template <typename T, size_t N>
class InlineBuffer {
  static_assert(std::is_trivially_copyable_v<T>, "values are copied with memcpy");

 public:
  static constexpr size_t kInline = N;

  InlineBuffer() = default;
  InlineBuffer(const InlineBuffer& o) { assign(o.data(), o.size()); }
  InlineBuffer(InlineBuffer&& o) noexcept { take(o); }
  InlineBuffer& operator=(const InlineBuffer& o) {
    if (this != &o) assign(o.data(), o.size());
    return *this;
  }
  InlineBuffer& operator=(InlineBuffer&& o) noexcept {
    if (this != &o) take(o);
    return *this;
  }

  // Replaces the contents with values[0..n).
  void assign(const T* values, size_t n) {
    size_ = 0;
    resize(n);
    if (n) std::memmove(data(), values, n * sizeof(T));
  }
  // Size changes keep the first min(old, new) values; new ones are zero.
  void resize(size_t n) {
    if (n > capacity()) {
      auto bigger = std::make_unique<T[]>(n);
      if (size_) std::memcpy(bigger.get(), data(), size_ * sizeof(T));
      heap_ = std::move(bigger);
      heap_capacity_ = n;
    }
    if (n > size_) std::fill(data() + size_, data() + n, T{});
    size_ = n;
  }
  void clear() { size_ = 0; }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T* data() { return heap_ ? heap_.get() : inline_; }
  const T* data() const { return heap_ ? heap_.get() : inline_; }
  T* begin() { return data(); }
  T* end() { return data() + size_; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size_; }

 private:
  size_t capacity() const { return heap_ ? heap_capacity_ : N; }
  void take(InlineBuffer& o) {
    if (o.heap_) {
      heap_ = std::move(o.heap_);
      heap_capacity_ = o.heap_capacity_;
    } else {
      heap_.reset();
      heap_capacity_ = 0;
      if (o.size_) std::memcpy(inline_, o.inline_, o.size_ * sizeof(T));
    }
    size_ = o.size_;
    o.size_ = 0;
    o.heap_capacity_ = 0;
  }

  size_t size_ = 0;
  std::unique_ptr<T[]> heap_;
  size_t heap_capacity_ = 0;
  T inline_[N];
};

}  // namespace vigil

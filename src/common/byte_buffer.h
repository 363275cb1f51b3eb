// ByteBuffer: bytes appended back to back into one heap buffer that is kept across clear(),
// with room for a piece of unknown length taken by its bound and given back once written. A
// std::string's resize() zero-fills the room first: for the score records of a batch (a bound
// of about a kilobyte a record with features logged, of which half is written) that memset was
// 1.5% of a velocity stream's CPU (perf, stream_bench --velocity --deployed).
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace vigil {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;

  const char* data() const { return data_.get(); }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  std::string_view view() const { return {data_.get(), size_}; }
  void clear() { size_ = 0; }

  void append(std::string_view bytes) {
    char* p = grow(bytes.size());
    if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
  }
  // Appends `bound` bytes of unspecified value and returns where they begin: write into them,
  // then give back what was not written with trim(end).
  char* grow(size_t bound) {
    if (bound > capacity_ - size_) reallocate(size_ + bound);
    char* p = data_.get() + size_;
    size_ += bound;
    return p;
  }
  // Ends the contents at `end` (inside them): after grow(), where the writing stopped.
  void trim(const char* end) { size_ = static_cast<size_t>(end - data_.get()); }

 private:
  void reallocate(size_t at_least) {
    size_t capacity = capacity_ < 256 ? 256 : 2 * capacity_;
    if (capacity < at_least) capacity = at_least;
    std::unique_ptr<char[]> bigger(new char[capacity]);  // not value-initialised: not zeroed
    if (size_) std::memcpy(bigger.get(), data_.get(), size_);
    data_ = std::move(bigger);
    capacity_ = capacity;
  }

  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace vigil

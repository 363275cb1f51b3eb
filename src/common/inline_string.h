// InlineString: a short string stored inside the object up to kInline bytes (a heap buffer
// beyond), for transaction ids: a std::string keeps only 15 bytes inline, so a UUID-sized id
// cost a malloc on the consumer thread and a free on a scoring worker for every record.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

namespace vigil {

class InlineString {
 public:
  static constexpr size_t kInline = 48;

  InlineString() = default;
  InlineString(std::string_view s) { assign(s); }    // NOLINT(google-explicit-constructor)
  InlineString(const std::string& s) { assign(s); }  // NOLINT(google-explicit-constructor)
  InlineString(const char* s) { assign(s); }         // NOLINT(google-explicit-constructor)
  InlineString(const InlineString& o) { assign(o.view()); }
  InlineString(InlineString&& o) noexcept { take(o); }
  InlineString& operator=(const InlineString& o) {
    if (this != &o) assign(o.view());
    return *this;
  }
  InlineString& operator=(InlineString&& o) noexcept {
    if (this != &o) take(o);
    return *this;
  }
  InlineString& operator=(std::string_view s) {
    assign(s);
    return *this;
  }
  InlineString& operator=(const std::string& s) {
    assign(s);
    return *this;
  }
  InlineString& operator=(const char* s) {
    assign(s);
    return *this;
  }

  // Keeps any heap buffer it has, so a reused object stops allocating.
  void assign(std::string_view s) {
    if (s.size() > capacity()) {
      heap_ = std::make_unique<char[]>(s.size());
      heap_capacity_ = s.size();
    }
    if (!s.empty()) std::memmove(data(), s.data(), s.size());
    size_ = s.size();
  }
  void clear() { size_ = 0; }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  char* data() { return heap_ ? heap_.get() : inline_; }
  const char* data() const { return heap_ ? heap_.get() : inline_; }
  std::string_view view() const { return {data(), size_}; }
  operator std::string_view() const { return view(); }  // NOLINT(google-explicit-constructor)
  std::string str() const { return std::string(view()); }

  friend bool operator==(const InlineString& a, std::string_view b) { return a.view() == b; }
  friend bool operator==(std::string_view a, const InlineString& b) { return a == b.view(); }
  friend bool operator!=(const InlineString& a, std::string_view b) { return a.view() != b; }
  friend std::ostream& operator<<(std::ostream& os, const InlineString& s) {
    return os << s.view();
  }

 private:
  size_t capacity() const { return heap_ ? heap_capacity_ : kInline; }
  void take(InlineString& o) {
    if (o.heap_) {
      heap_ = std::move(o.heap_);
      heap_capacity_ = o.heap_capacity_;
    } else {
      heap_.reset();
      heap_capacity_ = 0;
      std::memcpy(inline_, o.inline_, o.size_);
    }
    size_ = o.size_;
    o.size_ = 0;
    o.heap_capacity_ = 0;
  }

  size_t size_ = 0;
  std::unique_ptr<char[]> heap_;
  size_t heap_capacity_ = 0;
  char inline_[kInline];
};

}  // namespace vigil

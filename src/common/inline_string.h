// InlineString: a short string stored inline up to kInline bytes (a heap buffer beyond), for
// transaction ids: std::string keeps only 15 bytes inline, so a UUID-sized id cost a malloc
// on the consumer thread and a free on a scoring worker for every record.
#pragma once

#include <ostream>
#include <string>
#include <string_view>

#include "common/inline_buffer.h"

namespace vigil {

class InlineString : public InlineBuffer<char, 48> {
 public:
  InlineString() = default;
  InlineString(std::string_view s) { assign(s); }    // NOLINT(google-explicit-constructor)
  InlineString(const std::string& s) { assign(s); }  // NOLINT(google-explicit-constructor)
  InlineString(const char* s) { assign(s); }         // NOLINT(google-explicit-constructor)
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

  void assign(std::string_view s) { InlineBuffer::assign(s.data(), s.size()); }

  std::string_view view() const { return {data(), size()}; }
  operator std::string_view() const { return view(); }  // NOLINT(google-explicit-constructor)
  std::string str() const { return std::string(view()); }

  friend bool operator==(const InlineString& a, std::string_view b) { return a.view() == b; }
  friend bool operator==(std::string_view a, const InlineString& b) { return a == b.view(); }
  friend bool operator!=(const InlineString& a, std::string_view b) { return a.view() != b; }
  friend std::ostream& operator<<(std::ostream& os, const InlineString& s) {
    return os << s.view();
  }
};

}  // namespace vigil

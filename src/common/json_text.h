// Writing JSON text by hand on hot paths (score records, HTTP answers): strings escaped and
// made valid UTF-8, numbers in their shortest round-trip form.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace vigil {

// Appends `s` to `out` as a JSON string literal (quotes and escapes included). Bytes that
// are not well-formed UTF-8 become U+FFFD, so the result is always valid JSON text.
void append_json_string(std::string& out, std::string_view s);

// The same written at `p`, which has room for json_string_bound(s) bytes; returns the end.
// For a record written in one pass into a buffer sized once (sinks/score_record.cpp).
char* write_json_string(char* p, std::string_view s);
// An escape takes at most 6 bytes (\u00XX) per input byte, U+FFFD 3; plus the quotes.
inline size_t json_string_bound(std::string_view s) {
  return 6 * s.size() + 2;
}

// The most any write_number writes.
inline constexpr size_t kMaxNumberChars = 32;

// Writes `value` at `p` (room for kMaxNumberChars) as the shortest text that reads back as the
// same value (std::to_chars); returns the end. A whole floating-point number of magnitude
// under 1e5 (a count, a flag) takes the integer conversion, several times faster and the same
// text: to_chars prefers fixed notation when it is no longer than scientific, which it never
// is below 1e5 (-0 keeps its sign).
template <typename T>
char* write_number(char* p, T value) {
  if constexpr (std::is_floating_point_v<T>) {
    if (value > T(-1e5) && value < T(1e5) && value == static_cast<T>(static_cast<int32_t>(value)) &&
        !(value == 0 && std::signbit(value))) {
      return std::to_chars(p, p + kMaxNumberChars, static_cast<int32_t>(value)).ptr;
    }
  }
  return std::to_chars(p, p + kMaxNumberChars, value).ptr;
}

// Appends `value` as write_number writes it.
template <typename T>
void append_number(std::string& out, T value) {
  char buf[kMaxNumberChars];
  out.append(buf, static_cast<size_t>(write_number(buf, value) - buf));
}

}  // namespace vigil

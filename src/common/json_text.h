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

// Appends `value` as the shortest text that reads back as the same value (std::to_chars).
// A whole floating-point number of magnitude under 1e5 (a count, a flag) takes the integer
// conversion, several times faster and the same text: to_chars prefers fixed notation when
// it is no longer than scientific, which it never is below 1e5 (-0 keeps its sign).
template <typename T>
void append_number(std::string& out, T value) {
  char buf[32];
  if constexpr (std::is_floating_point_v<T>) {
    if (value > T(-1e5) && value < T(1e5) && value == static_cast<T>(static_cast<int32_t>(value)) &&
        !(value == 0 && std::signbit(value))) {
      const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<int32_t>(value));
      out.append(buf, r.ptr);
      return;
    }
  }
  const auto r = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, r.ptr);
}

}  // namespace vigil

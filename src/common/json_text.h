// Writing JSON text by hand on hot paths (score records, HTTP answers): strings escaped and
// made valid UTF-8, numbers in their shortest round-trip form.
#pragma once

#include <charconv>
#include <string>
#include <string_view>

namespace vigil {

// Appends `s` to `out` as a JSON string literal (quotes and escapes included). Bytes that
// are not well-formed UTF-8 become U+FFFD, so the result is always valid JSON text.
void append_json_string(std::string& out, std::string_view s);

// Appends `value` as the shortest text that reads back as the same value (std::to_chars).
template <typename T>
void append_number(std::string& out, T value) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, r.ptr);
}

}  // namespace vigil

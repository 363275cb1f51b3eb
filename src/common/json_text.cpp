#include "common/json_text.h"

#include <cstring>

namespace vigil {

namespace {
// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF), or 0 when it is not one.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

char* write_json_string(char* p, std::string_view s) {
  *p++ = '"';
  // Runs of plain ASCII are copied at once.
  size_t run = 0;
  auto flush_run = [&](size_t end) {
    if (end > run) {
      std::memcpy(p, s.data() + run, end - run);
      p += end - run;
    }
  };
  auto put = [&](std::string_view text) {
    std::memcpy(p, text.data(), text.size());
    p += text.size();
  };
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x80 && c != '"' && c != '\\') continue;
    flush_run(i);
    run = i + 1;
    switch (c) {
      case '"':
        put("\\\"");
        break;
      case '\\':
        put("\\\\");
        break;
      case '\n':
        put("\\n");
        break;
      case '\r':
        put("\\r");
        break;
      case '\t':
        put("\\t");
        break;
      default:
        if (u < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          const char esc[] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 0xF]};
          put(std::string_view(esc, sizeof esc));
        } else if (size_t n = utf8_sequence_length(s, i)) {
          put(s.substr(i, n));
          i += n - 1;
          run = i + 1;
        } else {
          put("\xEF\xBF\xBD");  // U+FFFD: the output stays valid UTF-8 whatever came in
        }
    }
  }
  flush_run(s.size());
  *p++ = '"';
  return p;
}

void append_json_string(std::string& out, std::string_view s) {
  const size_t start = out.size();
  out.resize(start + json_string_bound(s));
  char* end = write_json_string(out.data() + start, s);
  out.resize(static_cast<size_t>(end - out.data()));
}

}  // namespace vigil

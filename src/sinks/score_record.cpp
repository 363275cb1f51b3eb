#include "sinks/score_record.h"

#include <cstdio>

namespace vigil::sinks {

namespace {
// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF), or 0 when it is not one.
size_t utf8_sequence_length(const std::string& s, size_t i) {
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

void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else if (static_cast<unsigned char>(c) < 0x80) {
          out += c;
        } else if (size_t n = utf8_sequence_length(s, i)) {
          out.append(s, i, n);
          i += n - 1;
        } else {
          out += "\xEF\xBF\xBD";  // U+FFFD: the output stays valid UTF-8 whatever came in
        }
    }
  }
  out += '"';
}

std::string to_json(const ScoreRecord& r) {
  std::string out;
  out.reserve(160 + r.transaction_id.size());
  out += "{\"transaction_id\":";
  append_json_string(out, r.transaction_id);
  char buf[64];
  std::snprintf(buf, sizeof buf, ",\"score\":%.9g", static_cast<double>(r.score));
  out += buf;
  out += r.is_fraud ? ",\"is_fraud\":true" : ",\"is_fraud\":false";
  out += ",\"model_name\":";
  append_json_string(out, r.model_name);
  out += ",\"model_version\":";
  append_json_string(out, r.model_version);
  out += ",\"scored_at_ms\":" + std::to_string(r.scored_at_ms);
  if (r.event_time_ms) out += ",\"event_time_ms\":" + std::to_string(*r.event_time_ms);
  out += '}';
  return out;
}

}  // namespace vigil::sinks

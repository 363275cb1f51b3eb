#include "sinks/score_record.h"

#include <charconv>

namespace vigil::sinks {

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

template <typename T>
void append_number(std::string& out, T value) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, r.ptr);
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  // Runs of plain ASCII are appended at once.
  size_t run = 0;
  auto flush_run = [&](size_t end) {
    if (end > run) out.append(s.data() + run, end - run);
  };
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x80 && c != '"' && c != '\\') continue;
    flush_run(i);
    run = i + 1;
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
        if (u < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          const char esc[] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 0xF]};
          out.append(esc, sizeof esc);
        } else if (size_t n = utf8_sequence_length(s, i)) {
          out.append(s.data() + i, n);
          i += n - 1;
          run = i + 1;
        } else {
          out += "\xEF\xBF\xBD";  // U+FFFD: the output stays valid UTF-8 whatever came in
        }
    }
  }
  flush_run(s.size());
  out += '"';
}

void append_score_json(std::string& out, std::string_view transaction_id, float score,
                       bool is_fraud, std::string_view model_name, std::string_view model_version,
                       int64_t scored_at_ms, int64_t event_time_ms, const ReasonField* reasons,
                       size_t n_reasons) {
  out += "{\"transaction_id\":";
  append_json_string(out, transaction_id);
  out += ",\"score\":";
  append_number(out, score);
  out += is_fraud ? ",\"is_fraud\":true" : ",\"is_fraud\":false";
  out += ",\"model_name\":";
  append_json_string(out, model_name);
  out += ",\"model_version\":";
  append_json_string(out, model_version);
  out += ",\"scored_at_ms\":";
  append_number(out, scored_at_ms);
  if (event_time_ms >= 0) {
    out += ",\"event_time_ms\":";
    append_number(out, event_time_ms);
  }
  if (n_reasons > 0) {
    out += ",\"reasons\":[";
    for (size_t i = 0; i < n_reasons; ++i) {
      out += i ? ",{\"feature\":" : "{\"feature\":";
      append_json_string(out, reasons[i].feature);
      out += ",\"contribution\":";
      append_number(out, reasons[i].contribution);
      out += '}';
    }
    out += ']';
  }
  out += '}';
}

void append_shadow_json(std::string& out, std::string_view transaction_id, float score,
                        float shadow_score, bool agree, std::string_view model_name,
                        std::string_view model_version, std::string_view shadow_version,
                        int64_t scored_at_ms, int64_t event_time_ms) {
  out += "{\"transaction_id\":";
  append_json_string(out, transaction_id);
  out += ",\"score\":";
  append_number(out, score);
  out += ",\"shadow_score\":";
  append_number(out, shadow_score);
  out += agree ? ",\"agree\":true" : ",\"agree\":false";
  out += ",\"model_name\":";
  append_json_string(out, model_name);
  out += ",\"model_version\":";
  append_json_string(out, model_version);
  out += ",\"shadow_version\":";
  append_json_string(out, shadow_version);
  out += ",\"scored_at_ms\":";
  append_number(out, scored_at_ms);
  if (event_time_ms >= 0) {
    out += ",\"event_time_ms\":";
    append_number(out, event_time_ms);
  }
  out += '}';
}

std::string to_json(const ScoreRecord& r) {
  std::string out;
  out.reserve(160 + r.transaction_id.size());
  std::vector<ReasonField> reasons;
  reasons.reserve(r.reasons.size());
  for (const auto& [feature, contribution] : r.reasons) reasons.push_back({feature, contribution});
  append_score_json(out, r.transaction_id, r.score, r.is_fraud, r.model_name, r.model_version,
                    r.scored_at_ms, r.event_time_ms.value_or(-1), reasons.data(), reasons.size());
  return out;
}

}  // namespace vigil::sinks

#include "sinks/score_record.h"

#include <cstdio>

namespace vigil::sinks {

void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
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

// The score as it leaves vigil: the value written to the `scores` topic and to Redis.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace vigil::sinks {

struct ScoreRecord {
  std::string transaction_id;
  float score = 0.0f;
  bool is_fraud = false;
  std::string model_name;
  std::string model_version;
  int64_t scored_at_ms = 0;              // wall clock when scored
  std::optional<int64_t> event_time_ms;  // upstream event time, when the event had one
};

// {"transaction_id":..,"score":..,"is_fraud":..,"model_name":..,"model_version":..,
//  "scored_at_ms":..[,"event_time_ms":..]} — scores printed with 9 significant digits so that
// they parse back to the same float.
std::string to_json(const ScoreRecord& r);

// Appends `s` to `out` as a JSON string literal (quotes and escapes included). Bytes that
// are not well-formed UTF-8 become U+FFFD, so the result is always valid JSON text.
void append_json_string(std::string& out, const std::string& s);

}  // namespace vigil::sinks

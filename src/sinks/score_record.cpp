#include "sinks/score_record.h"

#include "common/json_text.h"

namespace vigil::sinks {

const std::string* FeatureKeys::keys_of(const std::vector<std::string>& names) {
  if (names != names_) {
    names_ = names;
    keys_.clear();
    for (const std::string& n : names) {
      std::string key;
      append_json_string(key, n);
      key += ':';
      keys_.push_back(std::move(key));
    }
  }
  return keys_.data();
}

void append_score_json(std::string& out, std::string_view transaction_id, float score,
                       bool is_fraud, std::string_view model_name, std::string_view model_version,
                       int64_t scored_at_ms, int64_t event_time_ms, ScoreSource source,
                       const ReasonField* reasons, size_t n_reasons,
                       const FeatureFields* features) {
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
  out += source == ScoreSource::kKafka ? ",\"source\":\"kafka\"" : ",\"source\":\"http\"";
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
  if (features != nullptr) {
    out += ",\"features\":{";
    for (size_t i = 0; i < features->count; ++i) {
      if (i) out += ',';
      out += features->keys[i];
      append_number(out, features->values[i]);
    }
    out += "},\"feature_spec\":";
    append_json_string(out, features->spec_hash);
    out += features->partial ? ",\"history\":\"partial\"" : ",\"history\":\"complete\"";
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

}  // namespace vigil::sinks

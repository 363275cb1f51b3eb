// The score as it leaves vigil: the value written to the `scores` topic and to Redis.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/byte_buffer.h"

namespace vigil::sinks {

// Where a score came from: a streamed Kafka record, or an HTTP call. Redis keeps a streamed
// transaction's record against HTTP: an HTTP score is cached only where no record exists
// (SET NX), so a caller choosing a streamed transaction's id cannot overwrite its score.
enum class ScoreSource { kKafka, kHttp };
inline const char* to_string(ScoreSource s) {
  return s == ScoreSource::kKafka ? "kafka" : "http";
}

// {"transaction_id":..,"score":..,"is_fraud":..,"model_name":..,"model_version":..,
//  "scored_at_ms":..[,"event_time_ms":..],"source":"kafka"|"http"[,"reasons":[..]]}, appended
// to `out`: the one score formatter, used by the delivery stage for every record, streamed or
// HTTP, for Redis and Kafka alike (one pass, no printf, no temporary string; `out` only grows
// when its capacity is short). The score is printed as the shortest decimal that parses back
// to the same float (std::to_chars). `event_time_ms` < 0 means unknown (omitted).
// With `reasons` (n_reasons > 0) the record ends with
// ,"reasons":[{"feature":"V14","contribution":0.31},...].
// With `features` (velocity features vigil computed, src/features) it ends with
// ,"features":{"tx_amount":57.3,...},"feature_spec":"fnv1a64:..","history":"complete"|"partial".
struct ReasonField {
  std::string_view feature;
  float contribution = 0.0f;
};
struct FeatureFields {
  // `count` names as JSON object keys, in the order of `values`: from FeatureKeys.
  const std::string* keys = nullptr;
  const float* values = nullptr;
  size_t count = 0;
  std::string_view spec_hash;
  bool partial = false;
};
// The logged features' names as JSON object keys ("tx_amount":, quoted, escaped, with the
// colon), escaped once and reused for as long as the names stay the same, instead of once per
// record. One per encoding thread or batch: not thread-safe.
class FeatureKeys {
 public:
  const std::string* keys_of(const std::vector<std::string>& names);

 private:
  std::vector<std::string> names_;
  std::vector<std::string> keys_;
};

void append_score_json(std::string& out, std::string_view transaction_id, float score,
                       bool is_fraud, std::string_view model_name, std::string_view model_version,
                       int64_t scored_at_ms, int64_t event_time_ms, ScoreSource source,
                       const ReasonField* reasons = nullptr, size_t n_reasons = 0,
                       const FeatureFields* features = nullptr);
// The same appended to a ByteBuffer (the delivery stage's batches): no room zero-filled.
void append_score_json(ByteBuffer& out, std::string_view transaction_id, float score, bool is_fraud,
                       std::string_view model_name, std::string_view model_version,
                       int64_t scored_at_ms, int64_t event_time_ms, ScoreSource source,
                       const ReasonField* reasons = nullptr, size_t n_reasons = 0,
                       const FeatureFields* features = nullptr);

// The record of the `scores.shadow` topic: {"transaction_id":..,"score":..,"shadow_score":..,
// "agree":..,"model_name":..,"model_version":..,"shadow_version":..,"scored_at_ms":..
// [,"event_time_ms":..]}; `agree`: both models decided alike at their thresholds.
void append_shadow_json(std::string& out, std::string_view transaction_id, float score,
                        float shadow_score, bool agree, std::string_view model_name,
                        std::string_view model_version, std::string_view shadow_version,
                        int64_t scored_at_ms, int64_t event_time_ms);

// JSON string escaping: common/json_text.h (vigil::append_json_string).

}  // namespace vigil::sinks

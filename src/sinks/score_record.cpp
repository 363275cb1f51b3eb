#include "sinks/score_record.h"

#include <cstring>

#include "common/byte_buffer.h"
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

namespace {

// Writes a record at a pointer into a buffer sized once for it: no capacity check, no call per
// piece into std::string (which cost more than the text itself, measured: 450 ns a record with
// nine features when appended piece by piece).
struct Cursor {
  char* p;
  template <size_t N>
  void lit(const char (&text)[N]) {
    std::memcpy(p, text, N - 1);
    p += N - 1;
  }
  void raw(std::string_view text) {
    std::memcpy(p, text.data(), text.size());
    p += text.size();
  }
  void str(std::string_view text) { p = write_json_string(p, text); }
  template <typename T>
  void num(T value) {
    p = write_number(p, value);
  }
};

// Grows `out` by `bound` bytes, lets `write` fill them from the old end, and trims to what it
// wrote.
template <typename Write>
void append_bounded(std::string& out, size_t bound, Write&& write) {
  const size_t start = out.size();
  out.resize(start + bound);
  Cursor c{out.data() + start};
  write(c);
  out.resize(static_cast<size_t>(c.p - out.data()));
}
// The same without filling the room first.
template <typename Write>
void append_bounded(ByteBuffer& out, size_t bound, Write&& write) {
  Cursor c{out.grow(bound)};
  write(c);
  out.trim(c.p);
}

// Room for the field names and punctuation of a record; every variable piece adds its own bound.
constexpr size_t kRecordLiterals = 256;

template <typename Out>
void append_score_record(Out& out, std::string_view transaction_id, float score, bool is_fraud,
                         std::string_view model_name, std::string_view model_version,
                         int64_t scored_at_ms, int64_t event_time_ms, ScoreSource source,
                         const ReasonField* reasons, size_t n_reasons,
                         const FeatureFields* features) {
  size_t bound = kRecordLiterals + json_string_bound(transaction_id) +
                 json_string_bound(model_name) + json_string_bound(model_version) +
                 3 * kMaxNumberChars;
  for (size_t i = 0; i < n_reasons; ++i) {
    bound += 32 + json_string_bound(reasons[i].feature) + kMaxNumberChars;
  }
  if (features != nullptr) {
    bound += 64 + json_string_bound(features->spec_hash);
    for (size_t i = 0; i < features->count; ++i) {
      bound += 1 + features->keys[i].size() + kMaxNumberChars;
    }
  }
  append_bounded(out, bound, [&](Cursor& c) {
    c.lit("{\"transaction_id\":");
    c.str(transaction_id);
    c.lit(",\"score\":");
    c.num(score);
    if (is_fraud) {
      c.lit(",\"is_fraud\":true");
    } else {
      c.lit(",\"is_fraud\":false");
    }
    c.lit(",\"model_name\":");
    c.str(model_name);
    c.lit(",\"model_version\":");
    c.str(model_version);
    c.lit(",\"scored_at_ms\":");
    c.num(scored_at_ms);
    if (event_time_ms >= 0) {
      c.lit(",\"event_time_ms\":");
      c.num(event_time_ms);
    }
    if (source == ScoreSource::kKafka) {
      c.lit(",\"source\":\"kafka\"");
    } else {
      c.lit(",\"source\":\"http\"");
    }
    if (n_reasons > 0) {
      c.lit(",\"reasons\":[");
      for (size_t i = 0; i < n_reasons; ++i) {
        if (i) c.lit(",");
        c.lit("{\"feature\":");
        c.str(reasons[i].feature);
        c.lit(",\"contribution\":");
        c.num(reasons[i].contribution);
        c.lit("}");
      }
      c.lit("]");
    }
    if (features != nullptr) {
      c.lit(",\"features\":{");
      for (size_t i = 0; i < features->count; ++i) {
        if (i) c.lit(",");
        c.raw(features->keys[i]);
        c.num(features->values[i]);
      }
      c.lit("},\"feature_spec\":");
      c.str(features->spec_hash);
      if (features->partial) {
        c.lit(",\"history\":\"partial\"");
      } else {
        c.lit(",\"history\":\"complete\"");
      }
    }
    c.lit("}");
  });
}

}  // namespace

void append_score_json(std::string& out, std::string_view transaction_id, float score,
                       bool is_fraud, std::string_view model_name, std::string_view model_version,
                       int64_t scored_at_ms, int64_t event_time_ms, ScoreSource source,
                       const ReasonField* reasons, size_t n_reasons,
                       const FeatureFields* features) {
  append_score_record(out, transaction_id, score, is_fraud, model_name, model_version, scored_at_ms,
                      event_time_ms, source, reasons, n_reasons, features);
}

void append_score_json(ByteBuffer& out, std::string_view transaction_id, float score, bool is_fraud,
                       std::string_view model_name, std::string_view model_version,
                       int64_t scored_at_ms, int64_t event_time_ms, ScoreSource source,
                       const ReasonField* reasons, size_t n_reasons,
                       const FeatureFields* features) {
  append_score_record(out, transaction_id, score, is_fraud, model_name, model_version, scored_at_ms,
                      event_time_ms, source, reasons, n_reasons, features);
}

void append_shadow_json(std::string& out, std::string_view transaction_id, float score,
                        float shadow_score, bool agree, std::string_view model_name,
                        std::string_view model_version, std::string_view shadow_version,
                        int64_t scored_at_ms, int64_t event_time_ms) {
  const size_t bound = kRecordLiterals + json_string_bound(transaction_id) +
                       json_string_bound(model_name) + json_string_bound(model_version) +
                       json_string_bound(shadow_version) + 4 * kMaxNumberChars;
  append_bounded(out, bound, [&](Cursor& c) {
    c.lit("{\"transaction_id\":");
    c.str(transaction_id);
    c.lit(",\"score\":");
    c.num(score);
    c.lit(",\"shadow_score\":");
    c.num(shadow_score);
    if (agree) {
      c.lit(",\"agree\":true");
    } else {
      c.lit(",\"agree\":false");
    }
    c.lit(",\"model_name\":");
    c.str(model_name);
    c.lit(",\"model_version\":");
    c.str(model_version);
    c.lit(",\"shadow_version\":");
    c.str(shadow_version);
    c.lit(",\"scored_at_ms\":");
    c.num(scored_at_ms);
    if (event_time_ms >= 0) {
      c.lit(",\"event_time_ms\":");
      c.num(event_time_ms);
    }
    c.lit("}");
  });
}

}  // namespace vigil::sinks

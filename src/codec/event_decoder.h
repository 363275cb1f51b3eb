// Decoding transaction events (JSON) into model-ordered float features, with a precise
// reason for every rejection. Used by the Kafka source (whole events) and by the HTTP
// routes (feature objects/arrays inside a request).
//
// Accepted event shapes:
//   {"transaction_id": "t-1", "features": {"Time": 0.0, "V1": -1.35, ..., "Amount": 149.62}}
//   {"transaction_id": "t-1", "features": [0.0, -1.35, ..., 149.62]}      (model order)
// Optional: "event_time_ms": <integer, ms since the epoch>. Other top-level keys are ignored,
// so upstream producers may add fields; unknown *feature* names are rejected.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/feature_vector.h"
#include "common/inline_string.h"

namespace vigil::codec {

// The model's input feature names, in order.
class FeatureSchema {
 public:
  explicit FeatureSchema(std::vector<std::string> names);
  size_t width() const { return names_.size(); }
  const std::vector<std::string>& names() const { return names_; }
  // Position of `name`, or -1.
  int index_of(std::string_view name) const;

 private:
  std::vector<std::string> names_;
  std::unordered_map<std::string_view, int> index_;  // views into names_
};

enum class DecodeError {
  kNone,
  kMalformedJson,
  kTooLarge,
  kBadTransactionId,
  kMissingFeature,
  kUnknownFeature,
  kDuplicateFeature,
  kWrongType,
  kNonFinite,
  kWrongCount,
  kMissingField,  // a raw transaction's entity, time or amount (raw_transaction.h)
  kOutOfRange,    // a negative amount, an event time too far in the future
};

// Stable snake_case name, used in DLQ headers and metric labels.
const char* to_string(DecodeError e);

struct DecodeStatus {
  DecodeError code = DecodeError::kNone;
  std::string message;  // names the field, e.g. "missing feature 'V3'"
  bool ok() const { return code == DecodeError::kNone; }
  static DecodeStatus Error(DecodeError c, std::string m) { return {c, std::move(m)}; }
};

struct DecodedEvent {
  InlineString transaction_id;
  FeatureVector features;
  std::optional<int64_t> event_time_ms;
};

// "array", "object", "number", ... for error messages.
const char* type_name(simdjson::ondemand::json_type t);

// Reads one number as float32, rejecting NaN/Infinity literals, non-numbers and values outside
// the float32 range; `what` names it in messages ("feature 'V1'", "features[3]").
DecodeStatus read_number(simdjson::ondemand::value v, const std::string& what, float& out);

// Decodes the value `v` (a JSON object of named features or an array in model order) into
// `out` (resized to the schema width). `where` prefixes messages ("features", "instances[3]").
DecodeStatus decode_features(simdjson::ondemand::value v, const FeatureSchema& schema,
                             std::vector<float>& out, const std::string& where);
// The same into `out[0..schema.width())`, with `seen` as scratch space (kept between calls so
// that the hot path allocates nothing). Builds no string unless there is an error; named
// features that arrive in model order skip the name lookup. With `transaction_id`, an object
// may also carry a "transaction_id" key (a string of 1 to kMaxTransactionIdBytes bytes),
// stored there: the shape of an HTTP /predict instance.
DecodeStatus decode_features(simdjson::ondemand::value v, const FeatureSchema& schema, float* out,
                             std::string_view where, std::vector<uint8_t>& seen,
                             std::string* transaction_id = nullptr);

// Decodes whole events. Owns a simdjson parser and a padded copy buffer, so it is not
// thread-safe: use one per thread.
class EventDecoder {
 public:
  static constexpr size_t kMaxTransactionIdBytes = 256;

  EventDecoder(const FeatureSchema& schema, size_t max_event_bytes);
  DecodeStatus decode(std::string_view json, DecodedEvent& out) {
    return decode(json, out.transaction_id, out.features, out.event_time_ms);
  }
  // Decodes straight into the caller's storage (a ScoreRequest's fields). In steady state it
  // allocates nothing (ids up to InlineString::kInline bytes, features up to
  // FeatureVector::kInline) and builds no string unless the event is rejected.
  DecodeStatus decode(std::string_view json, InlineString& transaction_id, FeatureVector& features,
                      std::optional<int64_t>& event_time_ms);

 private:
  const FeatureSchema& schema_;
  size_t max_event_bytes_;
  simdjson::ondemand::parser parser_;
  std::string buffer_;
  std::vector<uint8_t> seen_;
};

// Reads `v` to its end and returns the first JSON error in it. On-demand parsing checks only
// what is read, so fields a decoder ignores must be walked with this to stay strict JSON.
simdjson::error_code validate_json(simdjson::ondemand::value v, size_t depth = 0);

// NaN / Infinity literals (as Python's json module writes them), which are not JSON.
bool is_non_finite_literal(std::string_view raw);

// The status of a JSON error `ec` found in `where` ("" for the event itself).
DecodeStatus malformed(simdjson::error_code ec, std::string_view where);

// Parses `json` (at most `max_event_bytes`, copied into `buffer` with simdjson's padding) into
// `doc` and its top-level object `obj`: too_large, malformed_json, or wrong_type when it is
// valid JSON of another type.
DecodeStatus open_event(std::string_view json, size_t max_event_bytes,
                        simdjson::ondemand::parser& parser, std::string& buffer,
                        simdjson::ondemand::document& doc, simdjson::ondemand::object& obj);

// A string field `v` into `out`; otherwise `code` naming `what`.
DecodeStatus read_string(simdjson::ondemand::value v, const std::string& what, DecodeError code,
                         std::string& out);
// A transaction_id field: a string of 1 to EventDecoder::kMaxTransactionIdBytes bytes.
DecodeStatus read_transaction_id(simdjson::ondemand::value v, std::string& out);
// An integer time field `what` (ms since the epoch, not before 1970) into `out`.
DecodeStatus read_epoch_ms(simdjson::ondemand::value v, const std::string& what, int64_t& out);
// out_of_range naming `what` when `time_ms` is more than `max_future_ms` after `reference_ms`
// (a record's Kafka timestamp: the same on every replay); INT64_MIN skips the check.
DecodeStatus check_not_in_future(const std::string& what, int64_t time_ms, int64_t reference_ms,
                                 int64_t max_future_ms);

// Copies `json` into `buffer` with simdjson's required padding and returns a view of it.
simdjson::padded_string_view pad_into(std::string_view json, std::string& buffer);

}  // namespace vigil::codec

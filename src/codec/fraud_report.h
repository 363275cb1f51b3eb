// Decoding fraud reports, the second input of terminal risk features (src/features,
// terminal_days.h): confirmed frauds (chargebacks, analysts' decisions) that arrive days after
// their transactions, on their own topic (fraud.reports):
//
//   {"transaction_id": "T1", "customer_id": "C42", "terminal_id": "M7",
//    "event_time_ms": 1522541801790, "reported_at_ms": 1522973801790, "is_fraud": true}
//
// event_time_ms is the transaction's, reported_at_ms the report's. Other top-level keys are
// ignored (their JSON is still checked). Every rejection names the field:
//   - transaction_id missing, not a string, empty or too long: bad_transaction_id;
//   - terminal_id missing or empty, a time or is_fraud missing: missing_field;
//   - a field of the wrong JSON type (times are integers, is_fraud a boolean, customer_id a
//     string): wrong_type;
//   - a time before 1970, reported_at_ms before event_time_ms or more than max_future_ms after
//     the record's reference time (its Kafka timestamp): out_of_range.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "codec/event_decoder.h"

namespace vigil::codec {

struct FraudReport {
  std::string transaction_id;
  std::string customer_id;  // empty when absent
  std::string terminal_id;
  int64_t event_time_ms = 0;
  int64_t reported_at_ms = 0;
  bool is_fraud = false;
};

// Owns a simdjson parser and a padded copy buffer: one per thread.
class FraudReportDecoder {
 public:
  static constexpr int64_t kDefaultMaxFutureMs = 86'400'000;

  explicit FraudReportDecoder(size_t max_event_bytes, int64_t max_future_ms = kDefaultMaxFutureMs);
  // Decodes `json` into `out` (its strings reuse their capacity). `reference_ms` is the time
  // the report may not be more than max_future_ms after; INT64_MIN skips that check.
  DecodeStatus decode(std::string_view json, int64_t reference_ms, FraudReport& out);

 private:
  size_t max_event_bytes_;
  int64_t max_future_ms_;
  simdjson::ondemand::parser parser_;
  std::string buffer_;
};

}  // namespace vigil::codec

// Decoding raw transaction events, the input of velocity features (src/features):
//
//   {"transaction_id": "T1", "customer_id": "C42", "terminal_id": "M7", "amount": 57.3,
//    "event_time_ms": 1522541801790}
//
// The entity, time and amount fields are named by the feature spec (features.yaml); other
// top-level keys are ignored (their JSON is still checked), so labels and upstream additions
// may ride along. Every rejection names the field:
//   - transaction_id missing, not a string, empty or too long: bad_transaction_id;
//   - the entity missing or empty, the amount or the time missing: missing_field;
//   - a field of the wrong JSON type (the time must be an integer): wrong_type;
//   - the amount negative or beyond float32 (the precision it is kept in), the time before
//     1970 or more than max_future_ms after the record's reference time (its Kafka
//     timestamp: the same on every replay): out_of_range;
//   - the amount NaN, Infinity or beyond the double range: non_finite.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "codec/event_decoder.h"

namespace vigil::codec {

// Which fields hold the entity, the event time and the amount.
struct RawFields {
  std::string entity = "customer_id";
  std::string time = "event_time_ms";
  std::string amount = "amount";
  // With terminal features: a missing or empty terminal_id is refused (missing_field).
  bool require_terminal = false;
};

struct RawTransaction {
  std::string transaction_id;
  std::string entity;
  std::string terminal_id;  // empty when absent
  int64_t event_time_ms = 0;
  double amount = 0.0;
};

// Owns a simdjson parser and a padded copy buffer: one per thread.
class RawTransactionDecoder {
 public:
  // An event time more than a day after the record's reference time is refused.
  static constexpr int64_t kDefaultMaxFutureMs = 86'400'000;

  RawTransactionDecoder(RawFields fields, size_t max_event_bytes,
                        int64_t max_future_ms = kDefaultMaxFutureMs);
  // Decodes `json` into `out` (its strings reuse their capacity). `reference_ms` is the time
  // the event may not be more than max_future_ms after; INT64_MIN skips that check.
  DecodeStatus decode(std::string_view json, int64_t reference_ms, RawTransaction& out);

 private:
  RawFields fields_;
  size_t max_event_bytes_;
  int64_t max_future_ms_;
  simdjson::ondemand::parser parser_;
  std::string buffer_;
};

}  // namespace vigil::codec

#include "codec/fraud_report.h"

#include <utility>

namespace vigil::codec {

FraudReportDecoder::FraudReportDecoder(size_t max_event_bytes, int64_t max_future_ms)
    : max_event_bytes_(max_event_bytes), max_future_ms_(max_future_ms) {}

DecodeStatus FraudReportDecoder::decode(std::string_view json, int64_t reference_ms,
                                        FraudReport& out) {
  out.transaction_id.clear();
  out.customer_id.clear();
  out.terminal_id.clear();
  simdjson::ondemand::document doc;
  simdjson::ondemand::object obj;
  if (auto st = open_event(json, max_event_bytes_, parser_, buffer_, doc, obj); !st.ok()) {
    return st;
  }
  bool have_id = false, have_terminal = false, have_time = false, have_reported = false,
       have_verdict = false;
  for (auto field : obj) {
    std::string_view key;
    if (auto ec = field.unescaped_key().get(key)) return malformed(ec, "");
    simdjson::ondemand::value v;
    if (auto ec = field.value().get(v)) return malformed(ec, key);
    DecodeStatus st;
    if (key == "transaction_id") {
      st = read_transaction_id(v, out.transaction_id);
      have_id = true;
    } else if (key == "terminal_id") {
      st = read_string(v, "terminal_id", DecodeError::kWrongType, out.terminal_id);
      have_terminal = true;
    } else if (key == "customer_id") {
      st = read_string(v, "customer_id", DecodeError::kWrongType, out.customer_id);
    } else if (key == "event_time_ms") {
      st = read_epoch_ms(v, "event_time_ms", out.event_time_ms);
      have_time = true;
    } else if (key == "reported_at_ms") {
      st = read_epoch_ms(v, "reported_at_ms", out.reported_at_ms);
      have_reported = true;
    } else if (key == "is_fraud") {
      if (v.get_bool().get(out.is_fraud)) {
        st = DecodeStatus::Error(DecodeError::kWrongType, "'is_fraud' must be true or false");
      }
      have_verdict = true;
    } else if (auto ec = validate_json(v)) {  // ignored, but still strict JSON
      return malformed(ec, key);
    }
    if (!st.ok()) return st;
  }
  const char* trailing = nullptr;
  if (doc.current_location().get(trailing) == simdjson::SUCCESS && trailing != nullptr) {
    return DecodeStatus::Error(DecodeError::kMalformedJson, "malformed JSON: trailing content");
  }
  auto missing = [](const char* field) {
    return DecodeStatus::Error(DecodeError::kMissingField,
                               std::string("missing or empty field '") + field + "'");
  };
  if (!have_id) {
    return DecodeStatus::Error(DecodeError::kBadTransactionId, "missing field 'transaction_id'");
  }
  if (!have_terminal || out.terminal_id.empty()) return missing("terminal_id");
  if (!have_time) return missing("event_time_ms");
  if (!have_reported) return missing("reported_at_ms");
  if (!have_verdict) return missing("is_fraud");
  if (out.reported_at_ms < out.event_time_ms) {
    return DecodeStatus::Error(DecodeError::kOutOfRange,
                               "'reported_at_ms' is before the transaction's 'event_time_ms'");
  }
  return check_not_in_future("reported_at_ms", out.reported_at_ms, reference_ms, max_future_ms_);
}

}  // namespace vigil::codec

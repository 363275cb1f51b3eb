#include "codec/raw_transaction.h"

#include <cmath>
#include <limits>
#include <utility>

namespace vigil::codec {

using simdjson::ondemand::json_type;

RawTransactionDecoder::RawTransactionDecoder(RawFields fields, size_t max_event_bytes,
                                             int64_t max_future_ms)
    : fields_(std::move(fields)),
      max_event_bytes_(max_event_bytes),
      max_future_ms_(max_future_ms) {}

namespace {

DecodeStatus error(DecodeError code, std::string message) {
  return DecodeStatus::Error(code, std::move(message));
}

}  // namespace

DecodeStatus RawTransactionDecoder::decode(std::string_view json, int64_t reference_ms,
                                           RawTransaction& out) {
  out.transaction_id.clear();
  out.entity.clear();
  out.terminal_id.clear();
  simdjson::ondemand::document doc;
  simdjson::ondemand::object obj;
  if (auto st = open_event(json, max_event_bytes_, parser_, buffer_, doc, obj); !st.ok()) {
    return st;
  }
  bool have_id = false, have_entity = false, have_time = false, have_amount = false;
  for (auto field : obj) {
    std::string_view key;
    if (auto ec = field.unescaped_key().get(key)) return malformed(ec, "");
    simdjson::ondemand::value v;
    if (auto ec = field.value().get(v)) return malformed(ec, key);
    if (key == "transaction_id") {
      if (auto st = read_transaction_id(v, out.transaction_id); !st.ok()) return st;
      have_id = true;
    } else if (key == fields_.entity) {
      if (auto st = read_string(v, fields_.entity, DecodeError::kWrongType, out.entity); !st.ok()) {
        return st;
      }
      have_entity = true;
    } else if (key == "terminal_id") {
      if (auto st = read_string(v, "terminal_id", DecodeError::kWrongType, out.terminal_id);
          !st.ok()) {
        return st;
      }
    } else if (key == fields_.time) {
      json_type t;
      if (auto ec = v.type().get(t)) return malformed(ec, key);
      if (t != json_type::number || v.get_int64().get(out.event_time_ms)) {
        return error(DecodeError::kWrongType,
                     "'" + fields_.time + "' must be an integer (ms since the epoch)");
      }
      have_time = true;
    } else if (key == fields_.amount) {
      json_type t;
      if (auto ec = v.type().get(t)) {
        if (is_non_finite_literal(v.raw_json_token())) {
          return error(DecodeError::kNonFinite, "'" + fields_.amount + "' is NaN or Infinity");
        }
        return malformed(ec, key);
      }
      if (t != json_type::number) {
        return error(DecodeError::kWrongType,
                     "'" + fields_.amount + "' must be a number, got " + type_name(t));
      }
      if (auto ec = v.get_double().get(out.amount)) {
        if (ec == simdjson::NUMBER_ERROR || ec == simdjson::NUMBER_OUT_OF_RANGE) {
          return error(DecodeError::kNonFinite, "'" + fields_.amount + "' is not a finite number");
        }
        return malformed(ec, key);
      }
      if (!std::isfinite(out.amount)) {
        return error(DecodeError::kNonFinite, "'" + fields_.amount + "' is not a finite number");
      }
      if (out.amount < 0) {
        return error(DecodeError::kOutOfRange, "'" + fields_.amount + "' is negative");
      }
      if (out.amount > std::numeric_limits<float>::max()) {  // kept as float32
        return error(DecodeError::kOutOfRange,
                     "'" + fields_.amount + "' is beyond the float32 range");
      }
      have_amount = true;
    } else if (auto ec = validate_json(v)) {  // ignored, but still strict JSON
      return malformed(ec, key);
    }
  }
  const char* trailing = nullptr;
  if (doc.current_location().get(trailing) == simdjson::SUCCESS && trailing != nullptr) {
    return error(DecodeError::kMalformedJson, "malformed JSON: trailing content");
  }
  if (!have_id) return error(DecodeError::kBadTransactionId, "missing field 'transaction_id'");
  if (!have_entity || out.entity.empty()) {
    return error(DecodeError::kMissingField, "missing or empty field '" + fields_.entity + "'");
  }
  if (!have_amount) {
    return error(DecodeError::kMissingField, "missing field '" + fields_.amount + "'");
  }
  if (!have_time) return error(DecodeError::kMissingField, "missing field '" + fields_.time + "'");
  if (fields_.require_terminal && out.terminal_id.empty()) {
    return error(DecodeError::kMissingField, "missing or empty field 'terminal_id'");
  }
  if (out.event_time_ms < 0) {
    return error(DecodeError::kOutOfRange, "'" + fields_.time + "' is before 1970");
  }
  return check_not_in_future(fields_.time, out.event_time_ms, reference_ms, max_future_ms_);
}

}  // namespace vigil::codec

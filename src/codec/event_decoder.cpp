#include "codec/event_decoder.h"

#include <cmath>
#include <limits>

namespace vigil::codec {

using simdjson::ondemand::json_type;

FeatureSchema::FeatureSchema(std::vector<std::string> names) : names_(std::move(names)) {
  for (size_t i = 0; i < names_.size(); ++i) index_.emplace(names_[i], static_cast<int>(i));
}

int FeatureSchema::index_of(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? -1 : it->second;
}

const char* to_string(DecodeError e) {
  switch (e) {
    case DecodeError::kNone:
      return "none";
    case DecodeError::kMalformedJson:
      return "malformed_json";
    case DecodeError::kTooLarge:
      return "too_large";
    case DecodeError::kBadTransactionId:
      return "bad_transaction_id";
    case DecodeError::kMissingFeature:
      return "missing_feature";
    case DecodeError::kUnknownFeature:
      return "unknown_feature";
    case DecodeError::kDuplicateFeature:
      return "duplicate_feature";
    case DecodeError::kWrongType:
      return "wrong_type";
    case DecodeError::kNonFinite:
      return "non_finite";
    case DecodeError::kWrongCount:
      return "wrong_feature_count";
    case DecodeError::kMissingField:
      return "missing_field";
    case DecodeError::kOutOfRange:
      return "out_of_range";
  }
  return "unknown";
}

simdjson::padded_string_view pad_into(std::string_view json, std::string& buffer) {
  buffer.assign(json.data(), json.size());
  buffer.resize(json.size() + simdjson::SIMDJSON_PADDING);
  return simdjson::padded_string_view(buffer.data(), json.size(), buffer.size());
}

const char* type_name(json_type t) {
  switch (t) {
    case json_type::array:
      return "array";
    case json_type::object:
      return "object";
    case json_type::number:
      return "number";
    case json_type::string:
      return "string";
    case json_type::boolean:
      return "boolean";
    case json_type::null:
      return "null";
  }
  return "unknown";
}

DecodeStatus malformed(simdjson::error_code ec, std::string_view where) {
  return DecodeStatus::Error(DecodeError::kMalformedJson,
                             "malformed JSON" +
                                 (where.empty() ? std::string() : " in " + std::string(where)) +
                                 ": " + simdjson::error_message(ec));
}

DecodeStatus read_string(simdjson::ondemand::value v, const std::string& what, DecodeError code,
                         std::string& out) {
  std::string_view s;
  if (v.get_string().get(s)) return DecodeStatus::Error(code, "'" + what + "' must be a string");
  out.assign(s.data(), s.size());
  return {};
}

DecodeStatus read_transaction_id(simdjson::ondemand::value v, std::string& out) {
  if (auto st = read_string(v, "transaction_id", DecodeError::kBadTransactionId, out); !st.ok()) {
    return st;
  }
  if (out.empty() || out.size() > EventDecoder::kMaxTransactionIdBytes) {
    return DecodeStatus::Error(DecodeError::kBadTransactionId,
                               "transaction_id must be 1 to " +
                                   std::to_string(EventDecoder::kMaxTransactionIdBytes) + " bytes");
  }
  return {};
}

DecodeStatus read_epoch_ms(simdjson::ondemand::value v, const std::string& what, int64_t& out) {
  simdjson::ondemand::json_type t;
  if (auto ec = v.type().get(t)) return malformed(ec, what);
  if (t != simdjson::ondemand::json_type::number || v.get_int64().get(out)) {
    return DecodeStatus::Error(DecodeError::kWrongType,
                               "'" + what + "' must be an integer (ms since the epoch)");
  }
  if (out < 0)
    return DecodeStatus::Error(DecodeError::kOutOfRange, "'" + what + "' is before 1970");
  return {};
}

DecodeStatus check_not_in_future(const std::string& what, int64_t time_ms, int64_t reference_ms,
                                 int64_t max_future_ms) {
  if (reference_ms == INT64_MIN || time_ms <= reference_ms ||
      time_ms - reference_ms <= max_future_ms) {
    return {};
  }
  return DecodeStatus::Error(DecodeError::kOutOfRange,
                             "'" + what + "' is " + std::to_string(time_ms - reference_ms) +
                                 " ms after the record's timestamp (limit " +
                                 std::to_string(max_future_ms) + " ms)");
}

// NaN / Infinity literals are named as such rather than reported as a parse error.
bool is_non_finite_literal(std::string_view raw) {
  if (!raw.empty() && (raw[0] == '-' || raw[0] == '+')) raw.remove_prefix(1);
  return raw.rfind("NaN", 0) == 0 || raw.rfind("Infinity", 0) == 0 || raw.rfind("inf", 0) == 0 ||
         raw.rfind("nan", 0) == 0;
}

namespace {

// read_number with the value's name built only when there is an error: `what()` returns it.
template <typename Name>
DecodeStatus read_number_named(simdjson::ondemand::value v, const Name& what, float& out) {
  json_type t;
  if (auto ec = v.type().get(t)) {
    if (is_non_finite_literal(v.raw_json_token())) {
      return DecodeStatus::Error(DecodeError::kNonFinite, what() + " is NaN or Infinity");
    }
    return malformed(ec, what());
  }
  if (t != json_type::number) {
    return DecodeStatus::Error(DecodeError::kWrongType,
                               what() + " must be a number, got " + type_name(t));
  }
  double d;
  if (auto ec = v.get_double().get(d)) {
    if (is_non_finite_literal(v.raw_json_token())) {
      return DecodeStatus::Error(DecodeError::kNonFinite, what() + " is NaN or Infinity");
    }
    if (ec == simdjson::NUMBER_ERROR || ec == simdjson::NUMBER_OUT_OF_RANGE) {
      return DecodeStatus::Error(DecodeError::kNonFinite, what() + " is not a finite number");
    }
    return malformed(ec, what());
  }
  if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max()) {
    return DecodeStatus::Error(DecodeError::kNonFinite,
                               what() + " is outside the float32 range or not finite");
  }
  out = static_cast<float>(d);
  return {};
}

}  // namespace

DecodeStatus read_number(simdjson::ondemand::value v, const std::string& what, float& out) {
  return read_number_named(
      v, [&] { return what; }, out);
}

// Reads `v` to its end, token by token, and returns the first error. On-demand parsing checks
// only what is read: a value that is merely skipped has its brackets matched but its scalars
// unchecked (`{"x": nul}` would pass), so ignored fields are walked with this instead.
// Recursion stops at simdjson's default depth limit.
simdjson::error_code validate_json(simdjson::ondemand::value v, size_t depth) {
  if (depth >= simdjson::DEFAULT_MAX_DEPTH) return simdjson::DEPTH_ERROR;
  json_type t;
  if (auto ec = v.type().get(t)) return ec;
  switch (t) {
    case json_type::object: {
      simdjson::ondemand::object obj;
      if (auto ec = v.get_object().get(obj)) return ec;
      for (auto field : obj) {
        std::string_view key;
        if (auto ec = field.unescaped_key().get(key)) return ec;
        simdjson::ondemand::value fv;
        if (auto ec = field.value().get(fv)) return ec;
        if (auto ec = validate_json(fv, depth + 1)) return ec;
      }
      return simdjson::SUCCESS;
    }
    case json_type::array: {
      simdjson::ondemand::array arr;
      if (auto ec = v.get_array().get(arr)) return ec;
      for (auto element : arr) {
        simdjson::ondemand::value ev;
        if (auto ec = element.get(ev)) return ec;
        if (auto ec = validate_json(ev, depth + 1)) return ec;
      }
      return simdjson::SUCCESS;
    }
    case json_type::number: {
      // get_double(), not get_int64(): integers beyond 64 bits are valid JSON too.
      double d;
      return v.get_double().get(d);
    }
    case json_type::string: {
      std::string_view s;
      return v.get_string().get(s);
    }
    case json_type::boolean: {
      bool b;
      return v.get_bool().get(b);
    }
    case json_type::null: {
      bool is_null = false;
      if (auto ec = v.is_null().get(is_null)) return ec;
      return is_null ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    }
  }
  return simdjson::TAPE_ERROR;
}

DecodeStatus decode_features(simdjson::ondemand::value v, const FeatureSchema& schema,
                             std::vector<float>& out, const std::string& where) {
  out.assign(schema.width(), 0.0f);
  std::vector<uint8_t> seen;
  return decode_features(v, schema, out.data(), where, seen);
}

namespace {

// The array form: `width` numbers in model order.
DecodeStatus decode_feature_array(simdjson::ondemand::value v, size_t width, float* out,
                                  std::string_view where) {
  simdjson::ondemand::array arr;
  if (auto ec = v.get_array().get(arr)) return malformed(ec, where);
  size_t i = 0;
  for (auto element : arr) {
    simdjson::ondemand::value ev;
    if (auto ec = element.get(ev)) return malformed(ec, where);
    if (i < width) {
      auto st = read_number_named(
          ev, [&] { return std::string(where) + "[" + std::to_string(i) + "]"; }, out[i]);
      if (!st.ok()) return st;
    }
    ++i;
  }
  if (i != width) {
    return DecodeStatus::Error(DecodeError::kWrongCount,
                               std::string(where) + " must have " + std::to_string(width) +
                                   " values in model order, got " + std::to_string(i));
  }
  return {};
}

// An HTTP instance's "transaction_id": once, a string of 1 to kMaxTransactionIdBytes bytes.
DecodeStatus read_instance_id(simdjson::ondemand::value v, std::string_view where, bool& have_id,
                              std::string& out) {
  if (have_id) {
    return DecodeStatus::Error(DecodeError::kBadTransactionId,
                               std::string(where) + ": duplicate field 'transaction_id'");
  }
  std::string_view id;
  if (v.get_string().get(id) || id.empty() || id.size() > EventDecoder::kMaxTransactionIdBytes) {
    return DecodeStatus::Error(DecodeError::kBadTransactionId,
                               std::string(where) + ".transaction_id must be a string of 1 to " +
                                   std::to_string(EventDecoder::kMaxTransactionIdBytes) + " bytes");
  }
  out.assign(id);
  have_id = true;
  return {};
}

// The object form: every feature by name once (model order is the fast path), plus an optional
// "transaction_id" when `transaction_id` is given.
DecodeStatus decode_feature_object(simdjson::ondemand::value v, const FeatureSchema& schema,
                                   float* out, std::string_view where, std::vector<uint8_t>& seen,
                                   std::string* transaction_id) {
  const size_t width = schema.width();
  simdjson::ondemand::object obj;
  if (auto ec = v.get_object().get(obj)) return malformed(ec, where);
  seen.assign(width, 0);
  const auto& names = schema.names();
  size_t next = 0;  // the feature expected next when the event lists them in model order
  bool have_id = false;
  for (auto field : obj) {
    std::string_view key;
    if (auto ec = field.unescaped_key().get(key)) return malformed(ec, where);
    int idx;
    if (next < width && key == names[next]) {
      idx = static_cast<int>(next);  // fast path: model order, no hash lookup
    } else {
      idx = schema.index_of(key);
    }
    if (idx < 0 && transaction_id != nullptr && key == "transaction_id") {
      auto st = read_instance_id(field.value(), where, have_id, *transaction_id);
      if (!st.ok()) return st;
      continue;
    }
    if (idx < 0) {
      return DecodeStatus::Error(
          DecodeError::kUnknownFeature,
          std::string(where) + ": unknown feature '" + std::string(key) + "'");
    }
    if (seen[idx]) {
      return DecodeStatus::Error(
          DecodeError::kDuplicateFeature,
          std::string(where) + ": duplicate feature '" + std::string(key) + "'");
    }
    seen[idx] = 1;
    next = static_cast<size_t>(idx) + 1;
    auto st = read_number_named(
        field.value(), [&] { return std::string(where) + ": feature '" + std::string(key) + "'"; },
        out[idx]);
    if (!st.ok()) return st;
  }
  std::string missing;
  size_t n_missing = 0;
  for (size_t i = 0; i < width; ++i) {
    if (!seen[i]) {
      missing += (n_missing++ ? ", '" : "'") + names[i] + "'";
    }
  }
  if (n_missing > 0) {
    return DecodeStatus::Error(
        DecodeError::kMissingFeature,
        std::string(where) + ": missing feature" + (n_missing > 1 ? "s " : " ") + missing);
  }
  return {};
}

}  // namespace

DecodeStatus decode_features(simdjson::ondemand::value v, const FeatureSchema& schema, float* out,
                             std::string_view where, std::vector<uint8_t>& seen,
                             std::string* transaction_id) {
  const size_t width = schema.width();
  json_type t;
  if (auto ec = v.type().get(t)) return malformed(ec, where);

  if (t == json_type::array) return decode_feature_array(v, width, out, where);
  if (t != json_type::object) {
    return DecodeStatus::Error(DecodeError::kWrongType,
                               std::string(where) +
                                   " must be an object of named features or an array, got " +
                                   type_name(t));
  }
  return decode_feature_object(v, schema, out, where, seen, transaction_id);
}

DecodeStatus open_event(std::string_view json, size_t max_event_bytes,
                        simdjson::ondemand::parser& parser, std::string& buffer,
                        simdjson::ondemand::document& doc, simdjson::ondemand::object& obj) {
  if (json.size() > max_event_bytes) {
    return DecodeStatus::Error(DecodeError::kTooLarge, "event is " + std::to_string(json.size()) +
                                                           " bytes, limit is " +
                                                           std::to_string(max_event_bytes));
  }
  if (auto ec = parser.iterate(pad_into(json, buffer)).get(doc)) return malformed(ec, "");
  if (auto ec = doc.get_object().get(obj)) {
    // Valid JSON of another type is a wrong type; anything else is malformed.
    json_type t;
    bool valid_scalar = false;
    if (ec == simdjson::INCORRECT_TYPE && !doc.type().get(t)) {
      bool b;
      valid_scalar = t == json_type::array || t == json_type::string || t == json_type::number ||
                     (t == json_type::boolean && !doc.get_bool().get(b)) ||
                     (t == json_type::null && !doc.is_null().get(b) && b);
    }
    if (valid_scalar) {
      return DecodeStatus::Error(DecodeError::kWrongType, "event must be a JSON object");
    }
    return malformed(ec == simdjson::INCORRECT_TYPE ? simdjson::TAPE_ERROR : ec, "");
  }
  return {};
}

EventDecoder::EventDecoder(const FeatureSchema& schema, size_t max_event_bytes)
    : schema_(schema), max_event_bytes_(max_event_bytes) {}

DecodeStatus EventDecoder::decode(std::string_view json, InlineString& transaction_id,
                                  FeatureVector& features, std::optional<int64_t>& event_time_ms) {
  transaction_id.clear();
  event_time_ms.reset();
  simdjson::ondemand::document doc;
  simdjson::ondemand::object obj;
  if (auto st = open_event(json, max_event_bytes_, parser_, buffer_, doc, obj); !st.ok()) {
    return st;
  }
  bool have_id = false;
  bool have_features = false;
  for (auto field : obj) {
    std::string_view key;
    if (auto ec = field.unescaped_key().get(key)) return malformed(ec, "");
    if (key == "transaction_id") {
      std::string_view id;
      if (field.value().get_string().get(id)) {
        return DecodeStatus::Error(DecodeError::kBadTransactionId,
                                   "transaction_id must be a string");
      }
      if (id.empty() || id.size() > kMaxTransactionIdBytes) {
        return DecodeStatus::Error(
            DecodeError::kBadTransactionId,
            "transaction_id must be 1 to " + std::to_string(kMaxTransactionIdBytes) + " bytes");
      }
      transaction_id.assign(id);
      have_id = true;
    } else if (key == "features") {
      features.resize(schema_.width());
      auto st = decode_features(field.value(), schema_, features.data(), "features", seen_);
      if (!st.ok()) return st;
      have_features = true;
    } else if (key == "event_time_ms") {
      int64_t t;
      if (field.value().get_int64().get(t)) {
        return DecodeStatus::Error(DecodeError::kWrongType,
                                   "event_time_ms must be an integer (ms since the epoch)");
      }
      event_time_ms = t;
    } else {
      // Ignored top-level field; its JSON is still checked.
      simdjson::ondemand::value ignored;
      if (auto ec = field.value().get(ignored)) return malformed(ec, "");
      if (auto ec = validate_json(ignored)) return malformed(ec, "");
    }
  }
  const char* trailing = nullptr;
  if (doc.current_location().get(trailing) == simdjson::SUCCESS && trailing != nullptr) {
    return DecodeStatus::Error(DecodeError::kMalformedJson, "malformed JSON: trailing content");
  }
  if (!have_id) {
    return DecodeStatus::Error(DecodeError::kBadTransactionId, "missing field 'transaction_id'");
  }
  if (!have_features) {
    return DecodeStatus::Error(DecodeError::kMissingFeature, "missing field 'features'");
  }
  return {};
}

}  // namespace vigil::codec

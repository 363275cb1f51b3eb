#include "http/inference_request.h"

#include <cmath>
#include <limits>

namespace vigil::http {

namespace {

using simdjson::ondemand::json_type;
namespace od = simdjson::ondemand;

// One parser and padded copy per thread: io threads parse bodies concurrently.
struct ThreadParser {
  od::parser parser;
  std::string buffer;
};
ThreadParser& thread_parser() {
  thread_local ThreadParser p;
  return p;
}

using codec::type_name;

// A simdjson error met while walking a value means its JSON text is broken: 400. A value of the
// wrong type is a 422 instead, reported by the caller, which knows what it expected.
HttpError malformed(simdjson::error_code ec, const std::string& where) {
  return {400, "malformed JSON" + (where.empty() ? "" : " in " + where) + ": " +
                   simdjson::error_message(ec)};
}

HttpError unprocessable(std::string message) {
  return {422, std::move(message)};
}

std::optional<HttpError> from_decode_status(const codec::DecodeStatus& st) {
  if (st.ok()) return std::nullopt;
  if (st.code == codec::DecodeError::kMalformedJson) return HttpError{400, st.message};
  return unprocessable(st.message);
}

// Reads one number as float32 with the Kafka decoder's rules and words.
std::optional<HttpError> read_number(od::value v, const std::string& what, float& out) {
  return from_decode_status(codec::read_number(v, what, out));
}

// The body's root is not an object: 422 if it is valid JSON, else 400. The on-demand parser
// only looks at a scalar root's first character ("nonsense" reads as null), so the whole body
// is parsed to tell them apart; this is the error path only.
HttpError not_an_object(std::string_view body, json_type t, const char* field) {
  thread_local simdjson::dom::parser dom;
  simdjson::dom::element ignored;
  if (auto ec = dom.parse(body.data(), body.size()).get(ignored)) return malformed(ec, "");
  return unprocessable(std::string("body must be a JSON object with an \"") + field +
                       "\" array, got " + type_name(t));
}

std::optional<HttpError> check_no_trailing_content(od::document& doc) {
  const char* trailing = nullptr;
  if (doc.current_location().get(trailing) == simdjson::SUCCESS && trailing != nullptr) {
    return HttpError{400, "malformed JSON: trailing content after the body's JSON value"};
  }
  return std::nullopt;
}

// Parses `body` into `doc` and opens its root object; `field` is the key a body must have,
// named when the root is not an object.
std::optional<HttpError> open_root(std::string_view body, const char* field, od::document& doc,
                                   od::object& root) {
  auto& p = thread_parser();
  if (auto ec = p.parser.iterate(codec::pad_into(body, p.buffer)).get(doc)) {
    return malformed(ec, "");
  }
  json_type t;
  if (auto ec = doc.type().get(t)) return malformed(ec, "");
  if (t != json_type::object) return not_an_object(body, t, field);
  if (auto ec = doc.get_object().get(root)) return malformed(ec, "");
  return std::nullopt;
}

std::optional<HttpError> decode_instance(od::value v, const codec::FeatureSchema& schema,
                                         const std::string& where, std::vector<float>& row,
                                         std::string& transaction_id) {
  json_type t;
  if (auto ec = v.type().get(t)) return malformed(ec, where);
  if (t != json_type::array && t != json_type::object) {
    return unprocessable(where + " must be an array of " + std::to_string(schema.width()) +
                         " numbers in model order or an object of named features, got " +
                         type_name(t));
  }
  // The Kafka path's decoder, which also takes the instance's optional "transaction_id".
  thread_local std::vector<uint8_t> seen;
  row.assign(schema.width(), 0.0f);
  return from_decode_status(
      codec::decode_features(v, schema, row.data(), where, seen, &transaction_id));
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// One input tensor of an infer request. Fields may come in any order, so `data` is read first
// into a flat buffer (remembering whether it was nested) and checked against `shape` after.
// The one input tensor of an infer request, as read (checked against the spec afterwards).
struct InputTensor {
  std::optional<std::string> name;
  std::optional<std::string> datatype;
  std::optional<std::vector<int64_t>> shape;
  bool have_data = false;
  std::vector<float> flat;
  enum class Layout { kUnknown, kFlat, kNested } layout = Layout::kUnknown;
  std::vector<size_t> row_lengths;  // nested layout only
};

// "data": N*width numbers (flat) or N arrays of width numbers (nested), not mixed.
std::optional<HttpError> read_tensor_data(od::array arr, const std::string& where,
                                          InputTensor& in) {
  using Layout = InputTensor::Layout;
  in.have_data = true;
  size_t i = 0;
  for (auto element : arr) {
    od::value ev;
    if (auto ec = element.get(ev)) return malformed(ec, where + ".data");
    const std::string at = where + ".data[" + std::to_string(i++) + "]";
    json_type t;
    if (ev.type().get(t) != simdjson::SUCCESS || t != json_type::array) {
      if (in.layout == Layout::kNested)
        return unprocessable(at + ": data mixes arrays and numbers");
      in.layout = Layout::kFlat;
      float f = 0.0f;
      if (auto err = read_number(ev, at, f)) return err;
      in.flat.push_back(f);
      continue;
    }
    if (in.layout == Layout::kFlat) return unprocessable(at + ": data mixes numbers and arrays");
    in.layout = Layout::kNested;
    od::array row;
    if (auto ec = ev.get_array().get(row)) return malformed(ec, at);
    size_t j = 0;
    for (auto x : row) {
      od::value xv;
      if (auto ec = x.get(xv)) return malformed(ec, at);
      float f = 0.0f;
      if (auto err = read_number(xv, at + "[" + std::to_string(j++) + "]", f)) return err;
      in.flat.push_back(f);
    }
    in.row_lengths.push_back(j);
  }
  return std::nullopt;
}

// Reads the tensor object's fields; other keys ("parameters", ...) must be valid JSON.
std::optional<HttpError> read_tensor_fields(od::object obj, const std::string& where,
                                            InputTensor& in) {
  for (auto field : obj) {
    std::string_view key;
    if (auto ec = field.unescaped_key().get(key)) return malformed(ec, where);
    if (key == "name" || key == "datatype") {
      std::string_view s;
      if (field.value().get_string().get(s)) {
        return unprocessable(where + "." + std::string(key) + " must be a string");
      }
      (key == "name" ? in.name : in.datatype).emplace(s);
      if (key == "datatype" && s != "FP32") {
        return unprocessable(where + ".datatype must be \"FP32\", got \"" + std::string(s) + "\"");
      }
    } else if (key == "shape") {
      od::array arr;
      if (field.value().get_array().get(arr)) {
        return unprocessable(where + ".shape must be an array of integers");
      }
      in.shape.emplace();
      for (auto d : arr) {
        int64_t n;
        if (d.get_int64().get(n))
          return unprocessable(where + ".shape must be an array of integers");
        in.shape->push_back(n);
      }
    } else if (key == "data") {
      od::array arr;
      if (field.value().get_array().get(arr))
        return unprocessable(where + ".data must be an array");
      if (auto err = read_tensor_data(arr, where, in)) return err;
    } else {
      od::value ignored;
      if (auto ec = field.value().get(ignored)) return malformed(ec, where);
      if (auto ec = codec::validate_json(ignored)) return malformed(ec, where);
    }
  }
  return std::nullopt;
}

// The tensor against the model: name, shape [N, width], N within the limit, data to match.
std::optional<HttpError> check_tensor(const InputTensor& in, const InferSpec& spec,
                                      size_t max_instances, const std::string& where) {
  if (!in.name) return unprocessable(where + ": missing field 'name'");
  if (*in.name != spec.input_name) {
    return unprocessable(where + ".name must be '" + spec.input_name + "', got '" + *in.name + "'");
  }
  if (!in.datatype) return unprocessable(where + ": missing field 'datatype'");
  if (!in.shape) return unprocessable(where + ": missing field 'shape'");
  if (!in.have_data) return unprocessable(where + ": missing field 'data'");
  const auto& shape = *in.shape;
  if (shape.size() != 2 || shape[0] < 1 || shape[1] != static_cast<int64_t>(spec.width)) {
    return unprocessable(where + ".shape must be [N, " + std::to_string(spec.width) +
                         "] with the batch dimension first and N >= 1, got " + shape_text(shape));
  }
  const auto rows = static_cast<size_t>(shape[0]);
  if (rows > max_instances) {
    return unprocessable(where + ".shape asks for " + std::to_string(rows) + " rows, at most " +
                         std::to_string(max_instances) + " per request");
  }
  if (in.layout != InputTensor::Layout::kNested) {
    if (in.flat.size() == rows * spec.width) return std::nullopt;
    return unprocessable(where + ".data has " + std::to_string(in.flat.size()) + " values, shape " +
                         shape_text(shape) + " needs " + std::to_string(rows * spec.width));
  }
  if (in.row_lengths.size() != rows) {
    return unprocessable(where + ".data has " + std::to_string(in.row_lengths.size()) +
                         " rows, shape " + shape_text(shape) + " needs " + std::to_string(rows));
  }
  for (size_t r = 0; r < rows; ++r) {
    if (in.row_lengths[r] != spec.width) {
      return unprocessable(where + ".data[" + std::to_string(r) + "] has " +
                           std::to_string(in.row_lengths[r]) + " values, shape " +
                           shape_text(shape) + " needs " + std::to_string(spec.width));
    }
  }
  return std::nullopt;
}

std::optional<HttpError> decode_input(od::value v, const InferSpec& spec, size_t max_instances,
                                      InferRequest& out) {
  const std::string where = "inputs[0]";
  od::object obj;
  if (v.get_object().get(obj)) {
    return unprocessable(where + " must be an object {name, shape, datatype, data}");
  }
  InputTensor in;
  if (auto err = read_tensor_fields(obj, where, in)) return err;
  if (auto err = check_tensor(in, spec, max_instances, where)) return err;
  const auto rows = static_cast<size_t>((*in.shape)[0]);
  out.rows.resize(rows);
  for (size_t r = 0; r < rows; ++r) {
    out.rows[r].assign(in.flat.begin() + static_cast<ptrdiff_t>(r * spec.width),
                       in.flat.begin() + static_cast<ptrdiff_t>((r + 1) * spec.width));
  }
  return std::nullopt;
}

}  // namespace

std::optional<HttpError> decode_predict(std::string_view body, const codec::FeatureSchema& schema,
                                        size_t max_instances, PredictRequest& out) {
  out.rows.clear();
  out.transaction_ids.clear();
  out.explain = false;
  out.top_k.reset();
  od::document doc;
  od::object root;
  if (auto err = open_root(body, "instances", doc, root)) return err;
  bool have_instances = false;
  for (auto field : root) {
    std::string_view key;
    if (auto ec = field.unescaped_key().get(key)) return malformed(ec, "");
    od::value v;
    if (auto ec = field.value().get(v)) return malformed(ec, "");
    if (key == "explain") {
      if (v.get_bool().get(out.explain)) return unprocessable("explain must be true or false");
      continue;
    }
    if (key == "top_k") {
      int64_t k = 0;
      if (v.get_int64().get(k)) return unprocessable("top_k must be an integer");
      out.top_k = k;
      continue;
    }
    if (key != "instances") {  // other keys are ignored, but must be valid JSON
      if (auto ec = codec::validate_json(v)) return malformed(ec, std::string(key));
      continue;
    }
    if (have_instances) return unprocessable("duplicate field 'instances'");
    have_instances = true;
    json_type t;
    if (auto ec = v.type().get(t)) return malformed(ec, "instances");
    if (t != json_type::array) {
      return unprocessable(std::string("instances must be an array, got ") + type_name(t));
    }
    od::array arr;
    if (auto ec = v.get_array().get(arr)) return malformed(ec, "instances");
    for (auto element : arr) {
      od::value ev;
      if (auto ec = element.get(ev)) return malformed(ec, "instances");
      if (out.rows.size() >= max_instances) {
        return unprocessable("instances has more than " + std::to_string(max_instances) +
                             " instances, the most one request may carry");
      }
      const std::string where = "instances[" + std::to_string(out.rows.size()) + "]";
      out.rows.emplace_back();
      out.transaction_ids.emplace_back();
      if (auto err =
              decode_instance(ev, schema, where, out.rows.back(), out.transaction_ids.back())) {
        return err;
      }
    }
  }
  if (auto err = check_no_trailing_content(doc)) return err;
  if (!have_instances) return unprocessable("missing field 'instances'");
  if (out.rows.empty()) return unprocessable("instances must not be empty");
  return std::nullopt;
}

// One entry of "outputs": an object whose "name" is the model's output. Every field is walked,
// not looked up, so broken JSON after the name is a 400 rather than skipped unread.
std::optional<HttpError> check_output(simdjson::simdjson_result<od::value> element,
                                      const InferSpec& spec, const std::string& where) {
  const auto not_named = [&] {
    return unprocessable(where + " must be an object with a string 'name'");
  };
  od::value v;
  if (auto ec = element.get(v)) return malformed(ec, "outputs");
  od::object o;
  if (v.get_object().get(o)) return not_named();
  std::optional<std::string_view> name;
  for (auto field : o) {
    std::string_view key;
    if (auto ec = field.unescaped_key().get(key)) return malformed(ec, where);
    od::value fv;
    if (auto ec = field.value().get(fv)) return malformed(ec, where);
    if (key == "name") {
      std::string_view n;
      if (fv.get_string().get(n)) return not_named();
      name = n;
    } else if (auto ec = codec::validate_json(fv)) {  // "parameters" etc.: ignored, but checked
      return malformed(ec, where + "." + std::string(key));
    }
  }
  if (!name) return not_named();
  if (*name != spec.output_name) {
    return unprocessable(where + ".name: unknown output '" + std::string(*name) +
                         "', the model has '" + spec.output_name + "'");
  }
  return std::nullopt;
}

std::optional<HttpError> decode_infer(std::string_view body, const InferSpec& spec,
                                      size_t max_instances, InferRequest& out) {
  out.id.reset();
  out.rows.clear();
  od::document doc;
  od::object root;
  if (auto err = open_root(body, "inputs", doc, root)) return err;
  bool have_inputs = false;
  size_t n_inputs = 0;
  for (auto field : root) {
    std::string_view key;
    if (auto ec = field.unescaped_key().get(key)) return malformed(ec, "");
    od::value v;
    if (auto ec = field.value().get(v)) return malformed(ec, "");
    if (key == "id") {
      std::string_view id;
      if (v.get_string().get(id)) return unprocessable("id must be a string");
      out.id.emplace(id);
    } else if (key == "inputs") {
      if (have_inputs) return unprocessable("duplicate field 'inputs'");
      have_inputs = true;
      od::array arr;
      if (v.get_array().get(arr)) return unprocessable("inputs must be an array");
      for (auto element : arr) {
        od::value ev;
        if (auto ec = element.get(ev)) return malformed(ec, "inputs");
        if (n_inputs++ == 0) {
          if (auto err = decode_input(ev, spec, max_instances, out)) return err;
        }
      }
    } else if (key == "outputs") {
      od::array arr;
      if (v.get_array().get(arr)) return unprocessable("outputs must be an array");
      size_t i = 0;
      for (auto element : arr) {
        const std::string where = "outputs[" + std::to_string(i++) + "]";
        if (auto err = check_output(element, spec, where)) return err;
      }
    } else if (auto ec = codec::validate_json(v)) {  // "parameters" etc.: ignored, but checked
      return malformed(ec, std::string(key));
    }
  }
  if (auto err = check_no_trailing_content(doc)) return err;
  if (!have_inputs) return unprocessable("missing field 'inputs'");
  if (n_inputs != 1) {
    return unprocessable("inputs must hold exactly one tensor, '" + spec.input_name +
                         "' (FP32, shape [N, " + std::to_string(spec.width) + "]), got " +
                         std::to_string(n_inputs));
  }
  return std::nullopt;
}

}  // namespace vigil::http

// Decoding the bodies of the scoring routes into model-ordered rows, with an HTTP status and a
// message naming the field or index for every rejection:
//   400  the body is not JSON
//   422  it is JSON of the wrong shape: a missing or unknown feature, a wrong type, a count or
//        shape that does not match the model, NaN/Infinity, too many instances
//
// Feature values inside /predict instances are decoded by codec::decode_features (the decoder
// of the Kafka path), so both paths accept and reject the same values with the same words.
// Stateless apart from a thread-local simdjson parser: callable from any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codec/event_decoder.h"

namespace vigil::http {

// A request the router refuses, as a value: HTTP status and the {"error": ...} message.
struct HttpError {
  unsigned status = 500;
  std::string message;
};

// POST /predict:
//   {"instances": [[30 numbers in model order], ...]}
//   {"instances": [{"Time": 0.0, "V1": -1.3, ..., "Amount": 9.9}, ...]}
//   {"instances": [{"transaction_id": "t-1", "Time": 0.0, ..., "Amount": 9.9}, ...]}
// Reason codes: "explain": true (and optionally "top_k": k, 1..inputs, default 5); the
// router also takes ?explain=true&top_k=k. Other top-level keys are ignored (their JSON is
// still checked).
struct PredictRequest {
  std::vector<std::vector<float>> rows;      // one per instance, model order
  std::vector<std::string> transaction_ids;  // one per instance; empty when not given
  bool explain = false;
  std::optional<int64_t> top_k;
};

std::optional<HttpError> decode_predict(std::string_view body, const codec::FeatureSchema& schema,
                                        size_t max_instances, PredictRequest& out);

// POST /v2/models/{m}[/versions/{v}]/infer (Open Inference Protocol, JSON):
//   {"id": "42", "inputs": [{"name": "features", "shape": [N, 30], "datatype": "FP32",
//                             "data": [N*30 numbers] | [[30 numbers], ...]}],
//    "outputs": [{"name": "<output name>"}]}          ("id", "outputs", "parameters" optional)
struct InferRequest {
  std::optional<std::string> id;
  std::vector<std::vector<float>> rows;  // N rows of `width` floats
};

struct InferSpec {
  std::string input_name;   // the one input tensor the model takes
  size_t width = 0;         // features per row
  std::string output_name;  // the one output tensor
};

std::optional<HttpError> decode_infer(std::string_view body, const InferSpec& spec,
                                      size_t max_instances, InferRequest& out);

}  // namespace vigil::http

// libFuzzer target: one Kafka record value -> codec::EventDecoder::decode, and the same bytes as
// a bare feature value -> codec::decode_features (the path /predict instances take).
//
// Beyond "no crash, no sanitizer report", every answer must be coherent:
//   - ok      => a 1..256-byte transaction id (events only) and exactly 30 finite float32
//                features; the bytes are valid JSON (RFC 8259 grammar, fuzz/json_grammar.h);
//   - refused => a named reason (not kNone, not "unknown") and a non-empty message.
// A violation aborts, so libFuzzer saves the input.
#include <simdjson.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "codec/event_decoder.h"
#include "json_grammar.h"

namespace {

using vigil::codec::DecodedEvent;
using vigil::codec::DecodeError;
using vigil::codec::DecodeStatus;
using vigil::codec::EventDecoder;
using vigil::codec::FeatureSchema;

// The fraud_mlp schema (models/fraud_mlp/model.yaml): Time, V1..V28, Amount.
std::vector<std::string> fraud_mlp_features() {
  std::vector<std::string> names{"Time"};
  for (int i = 1; i <= 28; ++i) names.push_back("V" + std::to_string(i));
  names.emplace_back("Amount");
  return names;
}

// Smaller than the service default (64 KiB) so that -max_len can cross it: the kTooLarge
// branch and the bytes just under it are both reachable.
constexpr size_t kMaxEventBytes = 2048;

[[noreturn]] void fail(const char* what, std::string_view input, const DecodeStatus& st) {
  std::fprintf(stderr, "fuzz_event_decoder: %s (code %s, message '%s', %zu input bytes)\n", what,
               vigil::codec::to_string(st.code), st.message.c_str(), input.size());
  std::abort();
}

void check_refusal(const DecodeStatus& st, std::string_view input) {
  if (st.code == DecodeError::kNone) fail("refusal without a code", input, st);
  if (std::strcmp(vigil::codec::to_string(st.code), "unknown") == 0) {
    fail("refusal with an unnamed code", input, st);
  }
  if (st.message.empty()) fail("refusal without a message", input, st);
}

// `f`: a std::vector<float> (decode_features) or a FeatureVector (whole events).
template <typename Features>
void check_features(const Features& f, size_t width, std::string_view input,
                    const DecodeStatus& st) {
  if (f.size() != width) fail("accepted with the wrong feature count", input, st);
  for (float v : f) {
    if (!std::isfinite(v)) fail("accepted a non-finite feature", input, st);
  }
}

// The on-demand parser validates lazily; what the decoder accepted must be JSON.
void check_valid_json(std::string_view input, const DecodeStatus& st) {
  if (!vigil::fuzz::JsonGrammar::valid(input))
    fail("accepted input that is not valid JSON", input, st);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const FeatureSchema schema(fraud_mlp_features());
  static EventDecoder decoder(schema, kMaxEventBytes);  // reused, as the Kafka source does
  static simdjson::ondemand::parser features_parser;
  static std::string buffer;

  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // 1. A whole event.
  DecodedEvent event;
  const DecodeStatus st = decoder.decode(input, event);
  if (st.ok()) {
    if (event.transaction_id.empty() ||
        event.transaction_id.size() > EventDecoder::kMaxTransactionIdBytes) {
      fail("accepted a bad transaction id", input, st);
    }
    check_features(event.features, schema.width(), input, st);
    check_valid_json(input, st);
  } else {
    check_refusal(st, input);
    if (size > kMaxEventBytes && st.code != DecodeError::kTooLarge) {
      fail("oversized event not refused as too_large", input, st);
    }
  }

  // 2. The same bytes as one feature value (an object of named features or an array).
  if (size > kMaxEventBytes) return 0;
  simdjson::ondemand::document doc;
  if (features_parser.iterate(vigil::codec::pad_into(input, buffer)).get(doc)) return 0;
  simdjson::ondemand::value value;
  if (doc.get_value().get(value)) return 0;
  std::vector<float> features;
  const DecodeStatus fst = vigil::codec::decode_features(value, schema, features, "instances[0]");
  if (fst.ok()) {
    check_features(features, schema.width(), input, fst);
    // decode_features reads one value; like the HTTP decoder, only a document with nothing
    // after that value is held to "is valid JSON".
    const char* end = nullptr;
    if (doc.current_location().get(end) != simdjson::SUCCESS || end == nullptr) {
      check_valid_json(input, fst);
    }
  } else {
    check_refusal(fst, input);
  }
  return 0;
}

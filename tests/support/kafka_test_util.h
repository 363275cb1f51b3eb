// Helpers for integration tests: produce records and read topics back over TCP against the
// embedded (mock) cluster, with plain librdkafka clients independent of vigil's; and the
// Python reference rows and scores every parity test compares against.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace vigil::testing {

struct TestRecord {
  std::string key;
  std::string value;
  int32_t partition = -1;
  int64_t offset = -1;
  std::map<std::string, std::string> headers;
};

// Produces every record (key, value) to `topic` and waits until all are acknowledged.
Status produce_all(const std::string& bootstrap, const std::string& topic,
                   const std::vector<std::pair<std::string, std::string>>& records);

// Reads `topic` from the beginning of every partition until `done(records)` returns true or
// `deadline` passes; returns what was read either way.
std::vector<TestRecord> read_topic(const std::string& bootstrap, const std::string& topic,
                                   const std::function<bool(const std::vector<TestRecord>&)>& done,
                                   std::chrono::milliseconds deadline);

// Reads `topic` until it holds `count` records with distinct keys (or the deadline).
std::vector<TestRecord> read_distinct_keys(const std::string& bootstrap, const std::string& topic,
                                           size_t count, std::chrono::milliseconds deadline);

// The reference rows and Python scores of tests/data/fraud_mlp_v1_reference.json.
struct ReferenceData {
  std::vector<std::string> feature_names;
  std::vector<std::vector<double>> rows;
  std::vector<double> scores;
};
ReferenceData load_reference();

// A transaction event for row `row` of the reference: features as an object or an array.
std::string reference_event(const ReferenceData& ref, size_t row, const std::string& id,
                            bool as_object);

// Extracts a number field from a flat JSON object ("score": 0.12 -> 0.12), NaN when absent.
double json_number(const std::string& json, const std::string& field);
std::string json_string(const std::string& json, const std::string& field);

}  // namespace vigil::testing

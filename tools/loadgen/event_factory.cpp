#include "event_factory.h"

#include <cmath>
#include <cstdio>

#include "common/json_text.h"

namespace vigil::loadgen {

namespace {

// %.9g prints every float so that it parses back to the same float.
void append_float(std::string& out, float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  out += buf;
}

std::string render_features(const codec::LabelledRow& row, const std::vector<std::string>& names,
                            EventShape shape) {
  std::string out = "\",\"features\":";
  out += shape == EventShape::kObject ? '{' : '[';
  for (size_t i = 0; i < row.features.size(); ++i) {
    if (i > 0) out += ',';
    if (shape == EventShape::kObject) {
      append_json_string(out, names[i]);
      out += ':';
    }
    append_float(out, row.features[i]);
  }
  out += shape == EventShape::kObject ? '}' : ']';
  out += ",\"event_time_ms\":";
  return out;
}

}  // namespace

Result<EventFactory> EventFactory::create(const std::vector<codec::LabelledRow>& rows,
                                          const std::vector<std::string>& feature_names,
                                          EventShape shape, const std::string& id_prefix) {
  using R = Result<EventFactory>;
  if (rows.empty()) return R::Error("the CSV has no rows");
  EventFactory f;
  f.id_prefix_ = id_prefix + "-";
  std::string quoted;
  append_json_string(quoted, f.id_prefix_);
  quoted.pop_back();  // the closing quote: the sequence number follows inside the string
  f.json_head_ = "{\"transaction_id\":" + quoted;
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t i = 0; i < rows[r].features.size(); ++i) {
      if (!std::isfinite(rows[r].features[i])) {
        return R::Error("CSV row " + std::to_string(r + 1) + ": feature '" + feature_names[i] +
                        "' is not finite");
      }
    }
    f.features_json_.push_back(render_features(rows[r], feature_names, shape));
    f.labels_.push_back(rows[r].label);
  }
  return f;
}

void EventFactory::render(uint64_t seq, int64_t event_time_ms, std::string& key,
                          std::string& value) const {
  const std::string seq_text = std::to_string(seq);
  key.assign(id_prefix_).append(seq_text);
  value.assign(json_head_).append(seq_text);
  value.append(features_json_[seq % features_json_.size()]);
  value.append(std::to_string(event_time_ms)).push_back('}');
}

}  // namespace vigil::loadgen

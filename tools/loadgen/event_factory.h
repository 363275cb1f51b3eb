// Turns CSV transactions into the JSON events vigil consumes, cheaply enough for several
// hundred thousand events per second: each row's features are rendered to JSON once, up front,
// and an event is then three appends and two integers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "codec/transactions_csv.h"
#include "common/status.h"
#include "options.h"

namespace vigil::loadgen {

// Builds event `seq` from CSV row `seq % rows` with transaction id `<id_prefix>-<seq>`.
// Immutable after create(); used by the producing thread only.
class EventFactory {
 public:
  // Fails when `rows` is empty or holds a value JSON cannot carry (NaN, infinity).
  static Result<EventFactory> create(const std::vector<codec::LabelledRow>& rows,
                                     const std::vector<std::string>& feature_names,
                                     EventShape shape, const std::string& id_prefix);

  // Overwrites `key` with the transaction id and `value` with the event JSON.
  void render(uint64_t seq, int64_t event_time_ms, std::string& key, std::string& value) const;

  // The CSV label (Class) of the row event `seq` is built from; -1 when the CSV has none.
  int label(uint64_t seq) const { return labels_[seq % labels_.size()]; }

 private:
  EventFactory() = default;

  std::string id_prefix_;                   // raw, for the Kafka key
  std::string json_head_;                   // {"transaction_id":"<escaped prefix>-
  std::vector<std::string> features_json_;  // per row: ","features":{...} or [...]
  std::vector<int> labels_;
};

}  // namespace vigil::loadgen

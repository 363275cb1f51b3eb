// Reads transaction CSV files like the ULB credit-card data (`Time,V1..V28,Amount,Class`):
// a header line, comma-separated numbers, no quoting. Columns are matched to the model's
// features by name; a `Class` column, when present, is kept as the label.
#pragma once

#include <string>
#include <vector>

#include "codec/event_decoder.h"
#include "common/status.h"

namespace vigil::codec {

struct LabelledRow {
  std::vector<float> features;  // in schema order
  double raw_time = 0.0;        // the Time column when present
  int label = -1;               // Class column, -1 when absent
};

Result<std::vector<LabelledRow>> read_transactions_csv(const std::string& path,
                                                       const FeatureSchema& schema,
                                                       size_t max_rows = SIZE_MAX);

}  // namespace vigil::codec

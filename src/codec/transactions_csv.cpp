#include "codec/transactions_csv.h"

#include <cstdint>
#include <fstream>
#include <sstream>

namespace vigil::codec {

namespace {
std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string cell;
  while (std::getline(ss, cell, ',')) {
    if (!cell.empty() && cell.back() == '\r') cell.pop_back();
    out.push_back(cell);
  }
  return out;
}
}  // namespace

Result<std::vector<LabelledRow>> read_transactions_csv(const std::string& path,
                                                       const FeatureSchema& schema,
                                                       size_t max_rows) {
  using R = Result<std::vector<LabelledRow>>;
  std::ifstream in(path);
  if (!in) return R::Error("cannot open '" + path + "'");
  std::string line;
  if (!std::getline(in, line)) return R::Error(path + ": empty file");
  const auto header = split(line);
  std::vector<int> column_to_feature(header.size(), -1);
  int label_col = -1, time_col = -1;
  std::vector<bool> found(schema.width(), false);
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == "Class") label_col = static_cast<int>(i);
    if (header[i] == "Time") time_col = static_cast<int>(i);
    int f = schema.index_of(header[i]);
    if (f >= 0) {
      column_to_feature[i] = f;
      found[f] = true;
    }
  }
  for (size_t f = 0; f < schema.width(); ++f) {
    if (!found[f]) return R::Error(path + ": no column for feature '" + schema.names()[f] + "'");
  }
  std::vector<LabelledRow> rows;
  size_t line_no = 1;
  while (rows.size() < max_rows && std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    auto cells = split(line);
    if (cells.size() != header.size()) {
      return R::Error(path + ":" + std::to_string(line_no) + ": expected " +
                      std::to_string(header.size()) + " columns, got " +
                      std::to_string(cells.size()));
    }
    LabelledRow row;
    row.features.assign(schema.width(), 0.0f);
    for (size_t i = 0; i < cells.size(); ++i) {
      try {
        if (column_to_feature[i] >= 0) {
          row.features[column_to_feature[i]] = static_cast<float>(std::stod(cells[i]));
        }
        if (static_cast<int>(i) == label_col) row.label = std::stoi(cells[i]);
        if (static_cast<int>(i) == time_col) row.raw_time = std::stod(cells[i]);
      } catch (...) {
        return R::Error(path + ":" + std::to_string(line_no) + ": column '" + header[i] +
                        "' is not a number");
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace vigil::codec

#include "features/terminal_copy.h"

#include <algorithm>

namespace vigil::features {

TerminalCopy::TerminalCopy(TerminalWindows windows, int64_t first_day, int64_t last_day)
    : windows_(std::move(windows)),
      first_day_(first_day),
      last_day_(std::max(first_day, last_day)) {}

void TerminalCopy::name_rows(const std::vector<std::string>& names) {
  building_index_.reserve(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    building_index_.emplace(names[i], static_cast<uint32_t>(building_.size() + i));
  }
  building_.resize(building_.size() + names.size());
}

void TerminalCopy::add_transactions_at(uint32_t row, int64_t day, uint32_t n) {
  if (day < first_day_ || day > last_day_ || row >= building_.size()) return;
  Building& b = building_[row];
  if (b.transactions.empty())
    b.transactions.assign(static_cast<size_t>(last_day_ - first_day_ + 1), 0);
  b.transactions[static_cast<size_t>(day - first_day_)] += n;
}

void TerminalCopy::add_transactions(std::string_view terminal, int64_t day, uint32_t n) {
  if (day < first_day_ || day > last_day_) return;
  auto [it, added] =
      building_index_.try_emplace(std::string(terminal), static_cast<uint32_t>(building_.size()));
  if (added) building_.emplace_back();
  add_transactions_at(it->second, day, n);
}

void TerminalCopy::add_frauds(std::string_view terminal, int64_t tx_day, int64_t report_day,
                              int32_t n) {
  if (tx_day < first_day_ || tx_day > last_day_) return;
  auto [it, added] =
      building_index_.try_emplace(std::string(terminal), static_cast<uint32_t>(building_.size()));
  if (added) building_.emplace_back();
  building_[it->second].frauds.push_back({{tx_day, report_day}, n});
}

void TerminalCopy::seal() {
  // No scoring day when the range is shorter than the reach (serves() is then false).
  const auto days =
      static_cast<size_t>(std::max<int64_t>(0, last_scoring_day() - first_scoring_day() + 1));
  const size_t row = days * width();
  values_.assign(building_.size() * row, 0.0f);
  std::vector<uint64_t> prefix(static_cast<size_t>(last_day_ - first_day_ + 2), 0);
  for (size_t r = 0; r < building_.size(); ++r) {
    const Building& b = building_[r];
    for (size_t i = 0; i < b.transactions.size(); ++i)
      prefix[i + 1] = prefix[i] + b.transactions[i];
    if (b.transactions.empty()) std::fill(prefix.begin(), prefix.end(), 0);
    for (size_t k = 0; k < days; ++k) {
      const int64_t day = first_scoring_day() + static_cast<int64_t>(k);
      const int64_t end = day - windows_.delay_days;  // every window ends before this day
      float* out = values_.data() + r * row + k * width();
      for (size_t w = 0; w < windows_.windows_days.size(); ++w) {
        const int64_t begin = end - windows_.windows_days[w];
        const uint64_t txs = prefix[static_cast<size_t>(end - first_day_)] -
                             prefix[static_cast<size_t>(begin - first_day_)];
        int64_t frauds = 0;
        for (const auto& [when, n] : b.frauds) {
          if (when.first >= begin && when.first < end && when.second < day) frauds += n;
        }
        out[2 * w] = static_cast<float>(txs);
        out[2 * w + 1] = txs == 0 ? 0.0f
                                  : static_cast<float>(std::min(
                                        1.0, static_cast<double>(std::max<int64_t>(frauds, 0)) /
                                                 static_cast<double>(txs)));
      }
    }
  }
  size_t bytes = 0;
  for (const auto& [name, row] : building_index_) bytes += name.size();
  names_.reserve(bytes);  // no reallocation below: the views stay valid
  rows_.reserve(building_index_.size());
  for (const auto& [name, row] : building_index_) {
    const size_t at = names_.size();
    names_.append(name);
    rows_.emplace(std::string_view(names_).substr(at, name.size()), row);
  }
  building_index_.clear();
  building_.clear();
  building_.shrink_to_fit();
}

void TerminalCopy::features(std::string_view terminal, int64_t day, double* out) const {
  auto it = rows_.find(terminal);
  if (it == rows_.end() || !serves(day)) {
    std::fill(out, out + width(), 0.0);
    return;
  }
  const size_t days = static_cast<size_t>(last_scoring_day() - first_scoring_day() + 1);
  const float* v = values_.data() + it->second * days * width() +
                   static_cast<size_t>(day - first_scoring_day()) * width();
  for (size_t i = 0; i < width(); ++i) out[i] = v[i];
}

}  // namespace vigil::features

// TerminalCopy: an instance's local copy of the shared terminal state (terminal_state.h),
// ready to be looked up on the consumer thread.
//
// A copy is read for a range of transaction days [first_day, last_day] (the days the windows
// of transactions on its scoring days reach) and then sealed: every terminal's features for
// each scoring day, [first_day + reach, last_day + delay + 1], are computed once, with
// TerminalDays' definition (terminal_days.h), and kept as floats. A lookup is then one hash
// find and a copy of 2 x windows values, whatever the windows' length; a refresh builds a
// fresh copy (a few arrays per terminal), and nothing in it changes afterwards.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "features/terminal_days.h"

namespace vigil::features {

class TerminalCopy {
 public:
  // A copy of the transaction days [first_day, last_day].
  TerminalCopy(TerminalWindows windows, int64_t first_day, int64_t last_day);
  // Its rows index views into its own buffer: neither copied nor moved.
  TerminalCopy(const TerminalCopy&) = delete;
  TerminalCopy& operator=(const TerminalCopy&) = delete;

  // Before any add: a row for each of `names`, the i-th name's row being i, so that a builder
  // that keeps its own names by row (the refresher) adds counts by row, without looking up a
  // name per count.
  void name_rows(const std::vector<std::string>& names);
  void add_transactions_at(uint32_t row, int64_t day, uint32_t n);
  // While building: as TerminalDays' (days outside the range are ignored).
  void add_transactions(std::string_view terminal, int64_t day, uint32_t n = 1);
  void add_frauds(std::string_view terminal, int64_t tx_day, int64_t report_day, int32_t n = 1);
  // Computes every terminal's features for each scoring day; the counts go. Call once.
  void seal();

  int64_t first_day() const { return first_day_; }
  int64_t last_day() const { return last_day_; }
  // The days of the transactions this copy serves: those whose windows it holds.
  int64_t first_scoring_day() const { return first_day_ + windows_.reach_days(); }
  int64_t last_scoring_day() const { return last_day_ + windows_.delay_days + 1; }
  bool serves(int64_t day) const { return day >= first_scoring_day() && day <= last_scoring_day(); }
  // The terminal's features for a transaction of `day` (2 x windows values, TerminalDays'
  // order); zeros for an unknown terminal. Only for a day it serves(), once sealed.
  void features(std::string_view terminal, int64_t day, double* out) const;

  size_t terminals() const { return building_index_.size() + rows_.size(); }

  std::chrono::steady_clock::time_point read_at{};

 private:
  struct Building {
    std::vector<uint32_t> transactions;                                   // per day of the range
    std::vector<std::pair<std::pair<int64_t, int64_t>, int32_t>> frauds;  // (tx, report day), n
  };
  size_t width() const { return 2 * windows_.windows_days.size(); }

  TerminalWindows windows_;
  int64_t first_day_;
  int64_t last_day_;
  std::unordered_map<std::string, uint32_t> building_index_;  // terminal -> row, until sealed
  std::vector<Building> building_;                            // by row, until sealed
  // Once sealed: the terminals' names in one buffer, looked up by view (no string built per
  // lookup), and their rows of values by scoring day, then feature.
  std::string names_;
  std::unordered_map<std::string_view, uint32_t> rows_;
  std::vector<float> values_;
};

}  // namespace vigil::features

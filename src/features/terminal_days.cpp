#include "features/terminal_days.h"

#include <algorithm>
#include <cstdint>

namespace vigil::features {

TerminalDays::TerminalDays(TerminalWindows windows) : windows_(std::move(windows)) {}

void TerminalDays::add_transactions(std::string_view terminal, int64_t day, uint32_t n) {
  terminals_[std::string(terminal)].transactions[day] += n;
}

void TerminalDays::add_frauds(std::string_view terminal, int64_t tx_day, int64_t report_day,
                              int32_t n) {
  Terminal& t = terminals_[std::string(terminal)];
  auto it = t.frauds.emplace(std::make_pair(tx_day, report_day), 0).first;
  it->second += n;
  if (it->second == 0) t.frauds.erase(it);
}

void TerminalDays::features(std::string_view terminal, int64_t day, double* out) const {
  const size_t n = windows_.windows_days.size();
  std::fill(out, out + 2 * n, 0.0);
  auto found = terminals_.find(std::string(terminal));
  if (found == terminals_.end()) return;
  const Terminal& t = found->second;
  const int64_t end = day - windows_.delay_days;  // every window ends before this day
  for (size_t w = 0; w < n; ++w) {
    const int64_t begin = end - windows_.windows_days[w];
    uint64_t txs = 0;
    for (auto it = t.transactions.lower_bound(begin); it != t.transactions.end() && it->first < end;
         ++it) {
      txs += it->second;
    }
    int64_t frauds = 0;
    for (auto it = t.frauds.lower_bound({begin, INT64_MIN});
         it != t.frauds.end() && it->first.first < end; ++it) {
      if (it->first.second < day) frauds += it->second;
    }
    out[2 * w] = static_cast<double>(txs);
    out[2 * w + 1] = txs == 0 ? 0.0
                              : std::min(1.0, static_cast<double>(std::max<int64_t>(frauds, 0)) /
                                                  static_cast<double>(txs));
  }
}

size_t TerminalDays::evict_unreachable(int64_t day) {
  const int64_t oldest = day - windows_.reach_days();
  for (auto it = terminals_.begin(); it != terminals_.end();) {
    Terminal& t = it->second;
    t.transactions.erase(t.transactions.begin(), t.transactions.lower_bound(oldest));
    t.frauds.erase(t.frauds.begin(), t.frauds.lower_bound({oldest, INT64_MIN}));
    if (t.transactions.empty() && t.frauds.empty()) {
      it = terminals_.erase(it);
    } else {
      ++it;
    }
  }
  return terminals_.size();
}

bool FraudReports::report(TerminalDays& days, std::string_view transaction_id,
                          std::string_view terminal, int64_t tx_day, int64_t report_day) {
  auto [it, first] = counted_.try_emplace(std::string(transaction_id));
  Counted& c = it->second;
  if (first) {
    c = {std::string(terminal), tx_day, report_day};
    days.add_frauds(terminal, tx_day, report_day, 1);
    return true;
  }
  if (report_day >= c.report_day) return false;
  days.add_frauds(c.terminal, c.tx_day, c.report_day, -1);
  c.report_day = report_day;
  days.add_frauds(c.terminal, c.tx_day, c.report_day, 1);
  return true;
}

void FraudReports::forget_days_before(int64_t oldest_day) {
  for (auto it = counted_.begin(); it != counted_.end();) {
    if (it->second.tx_day < oldest_day) {
      it = counted_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace vigil::features

// TerminalDays: terminal risk features from day counts (issue "Terminal risk"), the handbook's
// baseline terminal features over whole UTC days, with confirmed frauds known from reports.
//
// A terminal's transactions and reports come through every partition, so its state is shared
// (Redis, written by every instance) and read through a local copy; both hold the same day
// counts, and this class is that copy and the one computation over it (the service's cache,
// the offline replay tool and the tests):
//   - transactions[m][X]: transactions on terminal m with event time in UTC day X;
//   - frauds[m][X][R]:    distinct transactions on m of day X first reported as fraud on day R
//                         (the report's reported_at_ms).
//
// For a transaction at event time t on terminal m, D = utc_day(t), with a delay of d days and
// a window of W days, the window is the W whole days before day D - d:
//   S = [D - d - W, D - d - 1]
//   <prefix>_nb_tx_<W>d = sum over X in S of transactions[m][X]
//   <prefix>_risk_<W>d  = (sum over X in S, R < D of frauds[m][X][R]) / nb_tx, at most 1, and
//                         0 when nb_tx is 0.
// Whole days, so that the state is a handful of counters per terminal and day and every
// transaction of a terminal on one day gets the same values: the cache holds one entry per
// terminal and day. The window ends where day D - d starts, so every transaction in it is at
// least d days old (the handbook's (t - d - W, t - d] holds some that are younger by up to a
// day), and a report counts from the day after it was made: what a scorer knew when day D
// began. Neither depends on when an instance happened to read a report.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace vigil::features {

inline constexpr int64_t kDayMs = 86'400'000;

// The UTC day (days since 1970-01-01) of `ms` (ms since the epoch); days before it are
// negative.
inline int64_t utc_day(int64_t ms) {
  const int64_t q = ms / kDayMs;
  return (ms % kDayMs != 0 && ms < 0) ? q - 1 : q;
}

struct TerminalWindows {
  // Days between a transaction's day and the end of its windows: the labels of the last d
  // days are not known yet.
  int delay_days = 7;
  // Window lengths in days, increasing, each at least 1.
  std::vector<int> windows_days = {1, 7, 30};
  // Oldest day any window reaches back to from day D: D - delay - the longest window.
  int64_t reach_days() const {
    return delay_days + (windows_days.empty() ? 0 : windows_days.back());
  }
};

class TerminalDays {
 public:
  explicit TerminalDays(TerminalWindows windows);

  const TerminalWindows& windows() const { return windows_; }

  // `n` more transactions on `terminal` in UTC day `day`.
  void add_transactions(std::string_view terminal, int64_t day, uint32_t n = 1);
  // `n` more transactions of day `tx_day` on `terminal` reported as fraud on day `report_day`
  // (distinct transactions: the caller counts a transaction once, see FraudReports).
  void add_frauds(std::string_view terminal, int64_t tx_day, int64_t report_day, int32_t n = 1);

  // The terminal's features for a transaction on UTC day `day`: for each window, in order,
  // the number of transactions and the risk (see above). Writes 2 * windows_days.size()
  // values. An unknown terminal gets zeros.
  void features(std::string_view terminal, int64_t day, double* out) const;

  // Forgets the days no window of a transaction on `day` or later reaches (before day -
  // reach_days()), and the terminals left with none. Returns how many terminals remain.
  size_t evict_unreachable(int64_t day);

  size_t terminals() const { return terminals_.size(); }

 private:
  struct Terminal {
    std::map<int64_t, uint32_t> transactions;               // day -> count
    std::map<std::pair<int64_t, int64_t>, int32_t> frauds;  // (tx day, report day) -> count
  };
  TerminalWindows windows_;
  std::unordered_map<std::string, Terminal> terminals_;
};

// Which reported transactions were already counted: a transaction is counted once, on the
// earliest day it was reported as fraud. Reports of one transaction may repeat (a chargeback
// and an analyst's decision), arrive out of order, or come before the transaction itself.
class FraudReports {
 public:
  // A report of `transaction_id` (of day `tx_day` on `terminal`) as fraud on day `report_day`:
  // applies to `days` what changes (a first report adds one; an earlier report than the one
  // counted moves it to its day; a repeat changes nothing). Returns whether anything changed.
  bool report(TerminalDays& days, std::string_view transaction_id, std::string_view terminal,
              int64_t tx_day, int64_t report_day);

  // Forgets the transactions of days before `oldest_day` (no window reaches them any more:
  // TerminalWindows::reach_days). A report of one of them afterwards counts it again, on a
  // day that no window reaches either.
  void forget_days_before(int64_t oldest_day);

  size_t size() const { return counted_.size(); }

 private:
  struct Counted {
    std::string terminal;
    int64_t tx_day = 0;
    int64_t report_day = 0;
  };
  std::unordered_map<std::string, Counted> counted_;
};

}  // namespace vigil::features

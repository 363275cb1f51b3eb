// TerminalDays and FraudReports against a brute-force reference: each query's features are
// recomputed from the raw transactions and reports by the definition in terminal_days.h
// (whole UTC days, the window ending where day D - delay starts, a report counted from the
// day after the earliest one of its transaction).
#include "features/terminal_days.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace vigil::features {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;  // 2023-11-14 22:13:20 UTC

struct Tx {
  std::string id;
  std::string terminal;
  int64_t time_ms;
};
struct Report {
  std::string tx_id;
  std::string terminal;
  int64_t tx_time_ms;
  int64_t reported_at_ms;
};

// The features of a transaction of `terminal` at `time_ms` from everything in `txs` and
// `reports`, by the definition alone.
std::vector<double> brute_force(const TerminalWindows& w, const std::vector<Tx>& txs,
                                const std::vector<Report>& reports, const std::string& terminal,
                                int64_t time_ms) {
  const int64_t d = utc_day(time_ms);
  // Each reported transaction once, on its earliest report day; its terminal and day as the
  // first report of it gave them.
  std::map<std::string, Report> first;
  for (const Report& r : reports) {
    auto [it, fresh] = first.try_emplace(r.tx_id, r);
    if (!fresh && utc_day(r.reported_at_ms) < utc_day(it->second.reported_at_ms)) {
      it->second.reported_at_ms = r.reported_at_ms;
    }
  }
  std::vector<double> out;
  for (int days : w.windows_days) {
    const int64_t begin = d - w.delay_days - days, end = d - w.delay_days;
    double nb = 0, frauds = 0;
    for (const Tx& t : txs) {
      const int64_t x = utc_day(t.time_ms);
      if (t.terminal == terminal && x >= begin && x < end) ++nb;
    }
    for (const auto& [id, r] : first) {
      const int64_t x = utc_day(r.tx_time_ms);
      if (r.terminal == terminal && x >= begin && x < end && utc_day(r.reported_at_ms) < d) {
        ++frauds;
      }
    }
    out.push_back(nb);
    out.push_back(nb == 0 ? 0.0 : std::min(1.0, frauds / nb));
  }
  return out;
}

std::vector<double> features_of(const TerminalDays& days, const std::string& terminal,
                                int64_t time_ms) {
  std::vector<double> out(2 * days.windows().windows_days.size());
  days.features(terminal, utc_day(time_ms), out.data());
  return out;
}

TEST(UtcDay, CountsWholeDaysBeforeTheEpochDownwards) {
  EXPECT_EQ(utc_day(0), 0);
  EXPECT_EQ(utc_day(kDayMs - 1), 0);
  EXPECT_EQ(utc_day(kDayMs), 1);
  EXPECT_EQ(utc_day(-1), -1);
  EXPECT_EQ(utc_day(-kDayMs), -1);
  EXPECT_EQ(utc_day(-kDayMs - 1), -2);
}

TEST(TerminalDays, TheWindowEndsWhereTheDayDelayDaysBackStarts) {
  TerminalDays days(TerminalWindows{7, {1, 7}});
  const int64_t d = utc_day(kT0);
  days.add_transactions("m", d - 8);      // in the 1-day window (and the 7-day one)
  days.add_transactions("m", d - 7, 5);   // day D - 7: not yet in any window
  days.add_transactions("m", d - 14, 2);  // the 7-day window's first day
  days.add_transactions("m", d - 15, 3);  // before it
  double out[4];
  days.features("m", d, out);
  EXPECT_EQ(out[0], 1);
  EXPECT_EQ(out[2], 3);
  // The next day the 5 of day D - 7 enter both windows and day D - 14 leaves the longer one.
  days.features("m", d + 1, out);
  EXPECT_EQ(out[0], 5);
  EXPECT_EQ(out[2], 6);
}

TEST(TerminalDays, AReportCountsFromTheDayAfterItWasMade) {
  TerminalDays days(TerminalWindows{7, {7}});
  FraudReports reports;
  const int64_t d = utc_day(kT0);
  days.add_transactions("m", d - 10, 4);
  EXPECT_TRUE(reports.report(days, "t1", "m", d - 10, d));  // reported on day D itself
  double out[2];
  days.features("m", d, out);
  EXPECT_EQ(out[0], 4);
  EXPECT_EQ(out[1], 0.0) << "a report made on the transaction's own day is not known yet";
  days.features("m", d + 1, out);
  EXPECT_EQ(out[1], 0.25);
}

TEST(FraudReports, ARepeatedReportCountsItsTransactionOnceOnItsEarliestDay) {
  TerminalDays days(TerminalWindows{0, {30}});
  FraudReports reports;
  const int64_t d = utc_day(kT0);
  days.add_transactions("m", d - 5, 2);
  EXPECT_TRUE(reports.report(days, "t1", "m", d - 5, d - 1));
  EXPECT_FALSE(reports.report(days, "t1", "m", d - 5, d - 1)) << "the same report again";
  EXPECT_FALSE(reports.report(days, "t1", "m", d - 5, d + 3)) << "a later one";
  double out[2];
  days.features("m", d, out);
  EXPECT_EQ(out[1], 0.5);
  // An earlier report arriving late moves the fraud to its day.
  EXPECT_TRUE(reports.report(days, "t1", "m", d - 5, d - 3));
  days.features("m", d - 2, out);
  EXPECT_EQ(out[1], 0.5);
  days.features("m", d - 3, out);
  EXPECT_EQ(out[1], 0.0);
  EXPECT_EQ(reports.size(), 1u);
}

TEST(TerminalDays, RiskIsAtMostOneAndZeroWithoutTransactions) {
  TerminalDays days(TerminalWindows{1, {1}});
  FraudReports reports;
  const int64_t d = utc_day(kT0);
  // Reports of transactions never read (on the terminal's day with one transaction read).
  days.add_transactions("m", d - 2);
  reports.report(days, "a", "m", d - 2, d - 1);
  reports.report(days, "b", "m", d - 2, d - 1);
  reports.report(days, "c", "n", d - 2, d - 1);  // a terminal with no transactions
  double out[2];
  days.features("m", d, out);
  EXPECT_EQ(out[0], 1);
  EXPECT_EQ(out[1], 1.0);
  days.features("n", d, out);
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[1], 0.0);
  days.features("unknown", d, out);
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[1], 0.0);
}

TEST(TerminalDays, EvictionKeepsEveryDayAWindowStillReaches) {
  TerminalDays days(TerminalWindows{7, {1, 30}});
  const int64_t d = utc_day(kT0);
  days.add_transactions("old", d - 40);
  days.add_transactions("m", d - 37);  // the first day the 30-day window of day D reaches
  days.add_transactions("m", d - 38);
  double before[4];
  days.features("m", d, before);
  EXPECT_EQ(days.evict_unreachable(d), 1u) << "the terminal with only day D - 40 is gone";
  double after[4];
  days.features("m", d, after);
  EXPECT_EQ(std::vector<double>(before, before + 4), std::vector<double>(after, after + 4));
  EXPECT_EQ(after[2], 1);
}

// Random streams: transactions and reports (duplicates, out of order, before their
// transactions, on days around every window edge) applied in a random interleaving, then
// every terminal queried on every day of the range against the brute force.
TEST(TerminalDays, MatchesTheBruteForceOnRandomStreams) {
  std::mt19937_64 rng(20261206);
  for (int round = 0; round < 20; ++round) {
    const TerminalWindows w{static_cast<int>(rng() % 9), {1, 2 + static_cast<int>(rng() % 6)}};
    TerminalDays days(w);
    FraudReports counted;
    const int terminals = 1 + static_cast<int>(rng() % 5);
    const int span_days = 25;
    std::vector<Tx> txs;
    std::vector<Report> reports;
    auto terminal = [&] { return "m" + std::to_string(rng() % terminals); };
    // Times at random within the span, a third of them a millisecond either side of midnight.
    auto time_in_span = [&] {
      const int64_t day = kT0 / kDayMs + static_cast<int64_t>(rng() % span_days);
      switch (rng() % 3) {
        case 0:
          return day * kDayMs + static_cast<int64_t>(rng() % 2);  // 00:00:00.000 or .001
        case 1:
          return day * kDayMs - 1;  // 23:59:59.999 the day before
        default:
          return day * kDayMs + static_cast<int64_t>(rng() % kDayMs);
      }
    };
    const int n = 300 + static_cast<int>(rng() % 300);
    for (int i = 0; i < n; ++i)
      txs.push_back({"t" + std::to_string(i), terminal(), time_in_span()});
    for (int i = 0; i < n / 3; ++i) {
      // A real transaction (its own terminal and time) or, now and then, one never read.
      const bool known = rng() % 5 != 0;
      const Tx t =
          known ? txs[rng() % txs.size()] : Tx{"x" + std::to_string(i), terminal(), time_in_span()};
      const int64_t delay = static_cast<int64_t>(rng() % (12 * kDayMs));
      reports.push_back({t.id, t.terminal, t.time_ms, t.time_ms + delay});
      if (rng() % 4 == 0) {  // reported again, earlier or later
        reports.push_back(
            {t.id, t.terminal, t.time_ms, t.time_ms + static_cast<int64_t>(rng() % (12 * kDayMs))});
      }
    }
    // Apply in a random interleaving of the two streams.
    std::vector<int> order;
    for (size_t i = 0; i < txs.size(); ++i) order.push_back(static_cast<int>(i));
    for (size_t i = 0; i < reports.size(); ++i) order.push_back(-1 - static_cast<int>(i));
    std::shuffle(order.begin(), order.end(), rng);
    for (int k : order) {
      if (k >= 0) {
        days.add_transactions(txs[k].terminal, utc_day(txs[k].time_ms));
      } else {
        const Report& r = reports[-1 - k];
        counted.report(days, r.tx_id, r.terminal, utc_day(r.tx_time_ms), utc_day(r.reported_at_ms));
      }
    }
    for (int m = 0; m < terminals; ++m) {
      const std::string name = "m" + std::to_string(m);
      for (int day = -2; day < span_days + 20; ++day) {
        const int64_t t = (kT0 / kDayMs + day) * kDayMs + 12 * 3'600'000;
        ASSERT_EQ(features_of(days, name, t), brute_force(w, txs, reports, name, t))
            << "round " << round << ", terminal " << name << ", day " << day;
      }
    }
  }
}

}  // namespace
}  // namespace vigil::features

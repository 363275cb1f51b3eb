// TerminalCopy's sealed features against TerminalDays (the definition, itself checked against
// a brute force in terminal_days_test) on random counts: every terminal, every scoring day.
#include "features/terminal_copy.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "features/terminal_days.h"

namespace vigil::features {
namespace {

TEST(TerminalCopy, SealedFeaturesEqualTerminalDaysOnEveryScoringDay) {
  std::mt19937_64 rng(5);
  for (const TerminalWindows& w :
       {TerminalWindows{}, TerminalWindows{0, {1}}, TerminalWindows{3, {2, 5}}}) {
    const int64_t first = 1000, last = first + w.reach_days() + 3;
    TerminalDays days(w);
    TerminalCopy copy(w, first, last);
    std::uniform_int_distribution<int> terminal(0, 30),
        day(static_cast<int>(first - 3), static_cast<int>(last + 3));
    for (int i = 0; i < 3000; ++i) {
      const std::string m = "M" + std::to_string(terminal(rng));
      const int64_t d = day(rng);
      if (rng() % 10 == 0) {
        const int64_t reported = d + static_cast<int64_t>(rng() % 6);
        if (d >= first && d <= last) days.add_frauds(m, d, reported);  // the copy's range only
        copy.add_frauds(m, d, reported);
      } else {
        if (d >= first && d <= last) days.add_transactions(m, d);
        copy.add_transactions(m, d);
      }
    }
    copy.seal();
    EXPECT_EQ(copy.first_scoring_day(), first + w.reach_days());
    EXPECT_EQ(copy.last_scoring_day(), last + w.delay_days + 1);
    const size_t width = 2 * w.windows_days.size();
    std::vector<double> want(width), got(width);
    for (int m = 0; m <= 31; ++m) {  // M31 never appears: zeros
      for (int64_t d = copy.first_scoring_day(); d <= copy.last_scoring_day(); ++d) {
        const std::string name = "M" + std::to_string(m);
        days.features(name, d, want.data());
        copy.features(name, d, got.data());
        for (size_t f = 0; f < width; ++f) {
          EXPECT_EQ(got[f], static_cast<double>(static_cast<float>(want[f])))
              << name << " day " << d << " feature " << f;
        }
      }
    }
    EXPECT_FALSE(copy.serves(copy.first_scoring_day() - 1));
    EXPECT_FALSE(copy.serves(copy.last_scoring_day() + 1));
  }
}

}  // namespace
}  // namespace vigil::features

// RedisTerminalState against a real redis-server: transactions counted once per record even
// when ranges are sent again (a retry, the next owner of a partition), reports counted once on
// their earliest day, the local copy read back, and Redis going away and coming back.
#include "sinks/redis_terminal_state.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "features/terminal_days.h"
#include "support/redis_server.h"

namespace vigil::sinks {
namespace {

using namespace std::chrono_literals;
using features::TerminalCount;
using vigil::testing::RedisServer;

constexpr int64_t kDay = 17'800;

class RedisTerminalStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.error();
    server_ = std::move(server.value());
  }

  RedisTerminalState::Options options() const {
    RedisTerminalState::Options o;
    o.address = parse_redis_url(server_->url()).value();
    o.command_timeout = 2000ms;
    o.reconnect_backoff_max = 100ms;
    o.key_prefix = "test:term:";
    o.ttl_s = 600;
    o.refresh_interval = 3600s;  // the tests read with refresh_now()
    o.flush_interval = 5ms;
    o.windows.delay_days = 1;
    o.windows.windows_days = {1};
    return o;
  }

  // Writes queue for 300 ms (a backlog to split into scripts), scripts of `increments` at most.
  RedisTerminalState::Options queuing_options(size_t increments) const {
    RedisTerminalState::Options o = options();
    o.flush_interval = 300ms;
    o.increments_per_write = increments;
    return o;
  }

  uint64_t redis_commands() {
    return registry_.counter("vigil_features_terminal_redis_commands_total", "").value();
  }

  // The copy's count of `terminal`'s transactions of kDay and its risk (frauds reported
  // before kDay + 2), after a fresh read.
  std::pair<double, double> day_figures(RedisTerminalState& state, const std::string& terminal) {
    state.saw_day(kDay);
    EXPECT_TRUE(state.refresh_now());
    auto copy = state.copy();
    EXPECT_NE(copy, nullptr);
    if (copy == nullptr) return {-1, -1};
    double out[2] = {-1, -1};
    copy->features(terminal, kDay + 2, out);
    return {out[0], out[1]};
  }

  static std::vector<TerminalCount> records(const std::vector<std::string>& terminals) {
    std::vector<TerminalCount> r;
    for (const auto& t : terminals) r.push_back({t, t.empty() ? 0 : kDay});
    return r;
  }

  uint64_t counter(const char* name, const char* label, const char* value) {
    return registry_.counter(name, "", {{label, value}}).value();
  }

  metrics::Registry registry_;
  std::unique_ptr<RedisServer> server_;
};

TEST_F(RedisTerminalStateTest, ARangeSentAgainOrOverlappingIsCountedOnce) {
  {
    RedisTerminalState first(options(), registry_);
    EXPECT_EQ(first.counted_until({0}).value()[0], -1);
    first.count(0, 0, records({"M1", "M2", "", "M1", "M1"}));
    first.flush();
    EXPECT_EQ(first.backlog(), 0u);
    EXPECT_EQ(first.counted_until({0}).value()[0], 5);
    EXPECT_EQ(day_figures(first, "M1").first, 3);
  }
  // The next owner reads the partition again from an older position: records 0..4 are not
  // counted twice, 5..7 are.
  RedisTerminalState next(options(), registry_);
  EXPECT_EQ(next.counted_until({0}).value()[0], 5);
  next.count(0, 3, records({"M1", "M1", "M1", "M2", "M9"}));
  next.flush();
  EXPECT_EQ(next.counted_until({0}).value()[0], 8);
  EXPECT_EQ(day_figures(next, "M1").first, 4);
  EXPECT_EQ(day_figures(next, "M2").first, 2);
  EXPECT_EQ(day_figures(next, "M9").first, 1);
  EXPECT_EQ(counter("vigil_features_terminal_records_total", "outcome", "counted"), 8u);
  // Offsets 3 and 4 reached Redis again and were skipped there.
  EXPECT_EQ(counter("vigil_features_terminal_records_total", "outcome", "recounted"), 2u);
  // Sent again whole (a write whose reply was lost): nothing changes.
  next.count(1, 0, records({"M1"}));
  next.flush();
  RedisTerminalState other(options(), registry_);
  other.count(1, 0, records({"M1"}));
  other.flush();
  EXPECT_EQ(day_figures(other, "M1").first, 5);
  EXPECT_EQ(counter("vigil_features_terminal_records_total", "outcome", "recounted"), 3u);
}

TEST_F(RedisTerminalStateTest, OneWriteOfSeveralPartitionsDropsOnlyWhatWasCountedAlready) {
  {
    RedisTerminalState first(options(), registry_);
    first.count(0, 0, records({"M1", "M1", "M1"}));
    first.flush();
  }
  // Both partitions go in one script (the writer's next flush takes both): partition 0's
  // range starts before its watermark, so the script applies nothing; the writer drops
  // offsets 1 and 2 and sends the rest again.
  auto o = options();
  o.flush_interval = 300ms;
  RedisTerminalState next(o, registry_);
  next.count(0, 1, records({"M1", "M1", "M1"}));
  next.count(1, 0, records({"M2", "M2"}));
  next.flush();
  EXPECT_EQ(day_figures(next, "M1").first, 4);
  EXPECT_EQ(day_figures(next, "M2").first, 2);
  EXPECT_EQ(next.counted_until({0, 1, 7}).value(), (std::vector<int64_t>{4, 2, -1}))
      << "one question for several partitions, one of them never counted";
  EXPECT_EQ(counter("vigil_features_terminal_records_total", "outcome", "recounted"), 2u);
}

TEST_F(RedisTerminalStateTest,
       ABacklogGoesInScriptsOfAtMostIncrementsPerWriteEachRecordCountedOnce) {
  {
    RedisTerminalState first(options(), registry_);
    first.count(0, 0, records({"M1", "M1", "M1"}));
    first.flush();
  }
  // 17 records of 3 terminals to write at once (the flush interval lets them queue), one
  // (day, terminal) increment a script at most: at least 3 scripts, and a partition's range
  // split over scripts still counts each record once, with the records partition 0 had counted
  // already (offsets 1 and 2) dropped.
  RedisTerminalState next(queuing_options(1), registry_);
  const uint64_t before = redis_commands();
  next.count(0, 1, records({"M1", "M1", "M2", "M2", "M2", "M1", "", "M3", "M1", "M2"}));
  next.count(1, 0, records({"M3", "M3", "M1"}));
  next.count(2, 0, records({"M2", "M1", "M3", "M3", "M3", "M2"}));
  next.flush();
  EXPECT_GE(redis_commands() - before, 3u) << "3 terminals in scripts of one increment at most";
  EXPECT_EQ(next.counted_until({0, 1, 2}).value(), (std::vector<int64_t>{11, 3, 6}));
  EXPECT_EQ(day_figures(next, "M1").first, 3 + 2 + 1 + 1);
  EXPECT_EQ(day_figures(next, "M2").first, 4 + 2);
  EXPECT_EQ(day_figures(next, "M3").first, 1 + 2 + 3);
  EXPECT_EQ(counter("vigil_features_terminal_records_total", "outcome", "recounted"), 2u);
  EXPECT_EQ(counter("vigil_features_terminal_records_total", "outcome", "counted"), 3u + 17u);
}

TEST_F(RedisTerminalStateTest, ManyRecordsOfFewTerminalsGoInOneScript) {
  // 6,000 records of 2 terminals queued at once: 2 increments, so one script takes them all
  // (bounded by increments, a script of 16,384 records would have been one of several).
  RedisTerminalState state(queuing_options(4), registry_);
  std::vector<std::string> names;
  for (int i = 0; i < 3000; ++i) names.insert(names.end(), {"M1", "M2"});
  const uint64_t before = redis_commands();
  state.count(0, 0, records(names));
  state.count(1, 0, records({"M2", "M1"}));
  state.flush();
  EXPECT_LE(redis_commands() - before, 2u) << "one script (and at most the refresher's first read)";
  EXPECT_EQ(state.counted_until({0, 1}).value(), (std::vector<int64_t>{6000, 2}));
  EXPECT_EQ(day_figures(state, "M1").first, 3001);
  EXPECT_EQ(day_figures(state, "M2").first, 3001);
}

TEST_F(RedisTerminalStateTest, ARefreshReadsAgainOnlyTheDaysWrittenSince) {
  RedisTerminalState state(options(), registry_);
  state.count(0, 0, records({"M1", "M2"}));
  state.flush();
  EXPECT_EQ(day_figures(state, "M1").first, 1);
  auto read = [&] {
    return registry_.counter("vigil_features_terminal_redis_read_bytes_total", "").value();
  };
  const uint64_t first = read();
  EXPECT_GT(first, 0u);
  EXPECT_EQ(day_figures(state, "M2").first, 1);
  EXPECT_EQ(read(), first) << "nothing written since: the day's hash is not read again";
  state.count(0, 2, records({"M2"}));
  state.flush();
  EXPECT_EQ(day_figures(state, "M2").first, 2);
  EXPECT_GT(read(), first);
}

TEST_F(RedisTerminalStateTest, AsTheDaysMoveOnTheCopyMatchesABruteForceCountAndDropsOldTerminals) {
  // Every day 600 terminals no other day has, so that the refresher's names of days gone
  // outnumber the live ones and are dropped; the copy stays equal to TerminalDays fed the same.
  RedisTerminalState::Options o = options();
  o.windows.windows_days = {1, 2};
  RedisTerminalState state(o, registry_);
  features::TerminalDays reference(o.windows);
  int64_t offset = 0;
  size_t most_terminals = 0;
  for (int64_t day = kDay; day < kDay + 16; ++day) {
    std::vector<TerminalCount> batch;
    for (int i = 0; i < 600; ++i) {
      const std::string terminal = "D" + std::to_string(day) + "-" + std::to_string(i);
      for (int k = 0; k <= i % 3; ++k) {
        batch.push_back({terminal, day});
        reference.add_transactions(terminal, day);
      }
    }
    const auto n = static_cast<int64_t>(batch.size());
    state.count(0, offset, std::move(batch));
    offset += n;
    state.flush();
    state.saw_day(day);
    ASSERT_TRUE(state.refresh_now());
    auto copy = state.copy();
    ASSERT_NE(copy, nullptr);
    most_terminals = std::max(most_terminals, copy->terminals());
    // Today's transactions are scored with the windows ending a day back (delay 1).
    for (int64_t back = 1; back <= 3; ++back) {
      for (int i = 0; i < 600; i += 37) {
        const std::string terminal = "D" + std::to_string(day - back) + "-" + std::to_string(i);
        double got[4], want[4];
        copy->features(terminal, day, got);
        reference.features(terminal, day, want);
        for (int f = 0; f < 4; ++f) {
          ASSERT_EQ(got[f], want[f]) << terminal << " on day " << day - kDay << ", feature " << f;
        }
      }
    }
  }
  // The copy reads 5 days (the reach of 3 before the newest, and one more): 3,000 live names.
  // Names of days gone are dropped once twice the live ones and 1,024 more (then a day's 600
  // are added); kept, they would reach 16 x 600.
  EXPECT_LE(most_terminals, 2u * 3000 + 1024 + 600);
}

TEST_F(RedisTerminalStateTest, PartitionsAreCountedIndependentlyAndGapsAreCounted) {
  RedisTerminalState state(options(), registry_);
  state.count(0, 0, records({"M1", "M1"}));
  state.count(1, 0, records({"M1"}));
  state.flush();
  // Offsets 2..4 of partition 0 were never handed over (the log lost them).
  state.count(0, 5, records({"M1"}));
  state.flush();
  EXPECT_EQ(day_figures(state, "M1").first, 4);
  EXPECT_EQ(state.counted_until({0}).value()[0], 6);
  EXPECT_EQ(state.counted_until({1}).value()[0], 1);
  EXPECT_EQ(registry_.counter("vigil_features_terminal_uncounted_total", "").value(), 3u);
}

TEST_F(RedisTerminalStateTest, AReportCountsOnceOnItsEarliestDay) {
  RedisTerminalState state(options(), registry_);
  state.count(0, 0, records({"M1", "M1", "M1", "M1"}));
  state.flush();
  // T1 reported on kDay + 1 (counts for transactions of kDay + 2), T2 on kDay + 5 (not yet).
  ASSERT_EQ(state.report({{"T1", "M1", kDay, kDay + 1}, {"T2", "M1", kDay, kDay + 5}}).value(), 2u);
  EXPECT_DOUBLE_EQ(day_figures(state, "M1").second, 0.25);
  // A repeat of T1 changes nothing; an earlier report of T2 moves it into the window.
  ASSERT_EQ(state.report({{"T1", "M1", kDay, kDay + 1}, {"T1", "M1", kDay, kDay + 3}}).value(), 0u);
  EXPECT_DOUBLE_EQ(day_figures(state, "M1").second, 0.25);
  ASSERT_EQ(state.report({{"T2", "M1", kDay, kDay}}).value(), 1u);
  EXPECT_DOUBLE_EQ(day_figures(state, "M1").second, 0.5);
  // A repeat that disagrees on the terminal moves the count it made, on M1: M9 gets nothing,
  // and M1 still counts T1 once.
  state.count(0, 4, records({"M9"}));
  state.flush();
  ASSERT_EQ(state.report({{"T1", "M9", kDay, kDay - 1}}).value(), 1u);
  EXPECT_DOUBLE_EQ(day_figures(state, "M1").second, 0.5);
  EXPECT_DOUBLE_EQ(day_figures(state, "M9").second, 0.0);
  EXPECT_EQ(counter("vigil_features_terminal_reports_total", "outcome", "counted"), 2u);
  EXPECT_EQ(counter("vigil_features_terminal_reports_total", "outcome", "moved"), 2u);
  EXPECT_EQ(counter("vigil_features_terminal_reports_total", "outcome", "repeated"), 2u);
}

TEST_F(RedisTerminalStateTest, CountsWaitForRedisAndTheCopyKeepsItsAge) {
  RedisTerminalState state(options(), registry_);
  state.count(0, 0, records({"M1"}));
  state.flush();
  EXPECT_EQ(day_figures(state, "M1").first, 1);
  const auto read_at = state.copy()->read_at;
  const uint64_t version = state.copy_version();

  server_->kill();
  state.count(0, 1, records({"M1", "M1"}));
  EXPECT_FALSE(state.refresh_now());
  EXPECT_EQ(state.copy()->read_at, read_at);  // the old copy stays, with its age
  EXPECT_EQ(state.copy_version(), version);
  EXPECT_FALSE(state.report({{"T1", "M1", kDay, kDay}}).ok());
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (counter("vigil_features_terminal_writes_total", "outcome", "failed") == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_GT(counter("vigil_features_terminal_writes_total", "outcome", "failed"), 0u);
  EXPECT_EQ(state.backlog(), 2u);

  // Redis comes back empty (no persistence): the waiting records are written; a restarted
  // server has lost the first one, which shows that nothing was written twice either.
  ASSERT_TRUE(server_->restart().ok());
  state.flush();
  EXPECT_EQ(state.backlog(), 0u);
  EXPECT_EQ(day_figures(state, "M1").first, 2);
  EXPECT_EQ(state.counted_until({0}).value()[0], 3);
  ASSERT_TRUE(state.report({{"T1", "M1", kDay, kDay}}).ok());
}

}  // namespace
}  // namespace vigil::sinks

// StreamFeatures with terminal risk features, against an in-memory TerminalState (the Redis
// one is tested against a real redis-server in tests/sinks, the whole in
// tests/faults/terminal_fault_test): every record from the shared state's position counted
// once, scores computed from the shared copy, and what a missing or old copy does.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "features/feature_spec.h"
#include "features/stream_features.h"
#include "features/terminal_state.h"

namespace vigil::features {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kDay = 17'800;

class MemoryTerminals : public TerminalState {
 public:
  Result<std::vector<int64_t>> counted_until(const std::vector<int32_t>& partitions) override {
    return std::vector<int64_t>(partitions.size(), position);
  }
  void count(int32_t partition, int64_t from, std::vector<TerminalCount> records) override {
    for (size_t i = 0; i < records.size(); ++i) {
      const int64_t offset = from + static_cast<int64_t>(i);
      EXPECT_EQ(counted[partition].count(offset), 0u) << "offset " << offset << " counted twice";
      counted[partition][offset] = records[i];
    }
  }
  size_t backlog() const override { return 0; }
  size_t max_backlog() const override { return 1000; }
  Result<size_t> report(const std::vector<TerminalReport>& /*reports*/) override { return 0; }
  void saw_day(int64_t day) override { newest = std::max(newest, day); }
  std::shared_ptr<const TerminalCopy> copy() const override { return current; }
  uint64_t copy_version() const override { return version; }
  bool refresh(int64_t day) override {
    ++refreshes;
    saw_day(day);
    if (!reachable) return false;
    auto c = std::make_shared<TerminalCopy>(windows, newest - windows.reach_days() - 1,
                                            newest + 1 - windows.delay_days);
    for (const auto& [terminal, day_count] : shared_tx) {
      for (const auto& [d, n] : day_count) c->add_transactions(terminal, d, n);
    }
    c->add_frauds("M1", kDay - 8, kDay - 2, 1);
    c->seal();
    c->read_at = std::chrono::steady_clock::now();
    current = std::move(c);
    ++version;
    return true;
  }

  TerminalWindows windows;
  int64_t position = -1;
  bool reachable = true;
  int refreshes = 0;
  int64_t newest = INT64_MIN;
  std::map<std::string, std::map<int64_t, uint32_t>> shared_tx;
  std::map<int32_t, std::map<int64_t, TerminalCount>> counted;
  std::shared_ptr<const TerminalCopy> current;
  uint64_t version = 0;
};

std::string raw(int i, const std::string& terminal, int64_t day) {
  return R"({"transaction_id":"T)" + std::to_string(i) + R"(","customer_id":"C)" +
         std::to_string(i % 3) + R"(","terminal_id":")" + terminal +
         R"(","amount":10.5,"event_time_ms":)" + std::to_string(day * 86'400'000 + 1000 * i) + "}";
}

class StreamTerminalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto spec = parse_feature_spec(
        "windows_days: [1, 7]\nterminal:\n  delay_days: 7\n  windows_days: [1, 7]\n", "test");
    ASSERT_TRUE(spec.ok()) << spec.error();
    spec_ = spec.value();
    terminals_.windows = spec_.terminal->windows;
    // M1 had 4 transactions 8 days ago (one reported two days ago), 6 more 10 days ago.
    terminals_.shared_tx["M1"] = {{kDay - 8, 4}, {kDay - 10, 6}};
  }

  // Scores record `i` at offset `i` of partition 0; the features and whether partial.
  std::pair<std::vector<double>, bool> score(StreamFeatures& f, int i, const std::string& terminal,
                                             int64_t day = kDay) {
    InlineString id;
    FeatureVector out;
    std::optional<int64_t> time;
    bool partial = false;
    auto st = f.compute(0, i, raw(i, terminal, day), INT64_MIN, id, out, time, partial);
    EXPECT_TRUE(st.ok()) << st.message;
    // As the model reads them: float32, back to double exactly.
    std::vector<double> terminal_part(
        out.begin() + static_cast<std::ptrdiff_t>(spec_.entity_feature_count()), out.end());
    return {terminal_part, partial};
  }

  static std::vector<double> as_float(std::vector<double> v) {
    for (double& x : v) x = static_cast<float>(x);
    return v;
  }

  uint64_t counter(const char* name, const metrics::Labels& labels = {}) {
    return registry_.counter(name, "", labels).value();
  }

  metrics::Registry registry_;
  FeatureSpec spec_;
  MemoryTerminals terminals_;
};

TEST_F(StreamTerminalTest, ScoresReadTheSharedCopyAndEveryRecordIsCountedOnce) {
  StreamFeatures f(spec_, 4096, registry_);
  f.set_terminal_state(&terminals_, 1000ms, 60000ms);
  f.assign(0, 0, 0, true);
  auto [first, partial] = score(f, 0, "M1");
  EXPECT_FALSE(partial);
  // Windows of 1 and 7 days ending with day D - 8: its 4 transactions, then 10 with those
  // of day D - 10; one of them reported before day D.
  EXPECT_EQ(first, as_float({4, 0.25, 10, 0.1}));
  EXPECT_EQ(counter("vigil_features_terminal_read_through_total"), 1u);  // no copy at start
  EXPECT_EQ(score(f, 1, "M2").first, (std::vector<double>{0, 0, 0, 0}));
  // A record that does not decode counts nothing but keeps the range contiguous.
  InlineString id;
  FeatureVector out;
  std::optional<int64_t> time;
  bool p = false;
  EXPECT_FALSE(f.compute(0, 2, "{not json", INT64_MIN, id, out, time, p).ok());
  score(f, 4, "M1");  // offset 3 is a transaction marker
  f.snapshot_tick(std::chrono::steady_clock::now(), [](int32_t) { return int64_t{0}; });
  ASSERT_EQ(terminals_.counted[0].size(), 5u);
  EXPECT_EQ(terminals_.counted[0][0].terminal, "M1");
  EXPECT_EQ(terminals_.counted[0][0].day, kDay);
  EXPECT_EQ(terminals_.counted[0][1].terminal, "M2");
  EXPECT_EQ(terminals_.counted[0][2].terminal, "");
  EXPECT_EQ(terminals_.counted[0][3].terminal, "");
  EXPECT_EQ(terminals_.counted[0][4].terminal, "M1");
  EXPECT_EQ(counter("vigil_features_terminal_lookups_total", {{"copy", "fresh"}}), 3u);
  EXPECT_EQ(counter("vigil_features_terminal_read_through_total"), 1u);
}

TEST_F(StreamTerminalTest, AnAssignmentCountsFromTheSharedPositionAndReplaysFromThere) {
  terminals_.position = 5;  // another instance counted offsets 0..4
  StreamFeatures f(spec_, 4096, registry_);
  f.set_terminal_state(&terminals_, 1000ms, 60000ms);
  // Records from offset 8 are scored; 0..7 replayed.
  EXPECT_EQ(f.assign(0, 0, 8, true), 0);
  for (int i = 0; i < 8; ++i) f.replay(0, i, raw(i, "M3", kDay), INT64_MIN);
  score(f, 8, "M3");
  score(f, 9, "M3");
  f.revoke(0);  // hands over what is left
  ASSERT_EQ(terminals_.counted[0].size(), 5u);
  EXPECT_EQ(terminals_.counted[0].begin()->first, 5);
  EXPECT_EQ(terminals_.counted[0].rbegin()->first, 9);
}

TEST_F(StreamTerminalTest, WithoutACopyScoresArePartialAndTheShareIsReadAtMostOnceAnInterval) {
  terminals_.reachable = false;
  StreamFeatures f(spec_, 4096, registry_);
  f.set_terminal_state(&terminals_, 1000ms, 60000ms);
  f.assign(0, 0, 0, true);
  for (int i = 0; i < 5; ++i) {
    auto [values, partial] = score(f, i, "M1");
    EXPECT_TRUE(partial);
    EXPECT_EQ(values, (std::vector<double>{0, 0, 0, 0}));
  }
  EXPECT_EQ(terminals_.refreshes, 1);
  EXPECT_EQ(counter("vigil_features_terminal_lookups_total", {{"copy", "missing"}}), 5u);
}

TEST_F(StreamTerminalTest, ACopyOlderThanTheMaxAgeIsNotUsedAndReadySaysWhy) {
  StreamFeatures f(spec_, 4096, registry_);
  f.set_terminal_state(&terminals_, 10ms, 20ms);
  f.assign(0, 0, 0, true);
  EXPECT_FALSE(score(f, 0, "M1").second);
  EXPECT_TRUE(f.readiness_notes().empty());
  terminals_.reachable = false;  // the refresher fails from now on
  std::this_thread::sleep_for(50ms);
  auto [values, partial] = score(f, 1, "M1");
  EXPECT_TRUE(partial);
  EXPECT_EQ(values, (std::vector<double>{0, 0, 0, 0}));
  const auto notes = f.readiness_notes();
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("features.shared.max_age_ms exceeded"), std::string::npos) << notes[0];
}

TEST_F(StreamTerminalTest, ATransactionOnANewDayReadsTheShareThrough) {
  StreamFeatures f(spec_, 4096, registry_);
  f.set_terminal_state(&terminals_, 1ms, 60000ms);
  f.assign(0, 0, 0, true);
  EXPECT_FALSE(score(f, 0, "M1").second);
  // The copy holds the days of transactions up to two days after the newest read; three days
  // later (the refresher has not run: it is the fake), it lacks the day.
  std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(score(f, 1, "M1", kDay + 2).second);
  EXPECT_EQ(counter("vigil_features_terminal_read_through_total"), 1u);
  auto [values, partial] = score(f, 2, "M1", kDay + 3);
  EXPECT_FALSE(partial);
  // The windows end with day D - 5 now: nothing that day, 10 transactions in the week.
  EXPECT_EQ(values, as_float({0, 0, 10, 0.1}));
  EXPECT_EQ(counter("vigil_features_terminal_read_through_total"), 2u);
}

}  // namespace
}  // namespace vigil::features

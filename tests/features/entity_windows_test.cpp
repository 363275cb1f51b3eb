// EntityWindows against a brute-force reference on random streams: every transaction's
// features are recomputed from the whole log read so far, with nothing evicted.
#include "features/entity_windows.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace vigil::features {
namespace {

constexpr int64_t kDay = 86'400'000;
constexpr int64_t kT0 = 1'700'000'000'000;  // a Tuesday, 22:13:20 UTC

struct Tx {
  std::string entity;
  int64_t time_ms;
  double amount;
};

// An amount as EntityWindows keeps it: float32, the precision the model reads it in.
double as_kept(double amount) {
  return static_cast<float>(amount);
}

// The features of log[i] from log[0..i] alone.
std::vector<double> brute_force(const FeatureSpec& spec, const std::vector<Tx>& log, size_t i) {
  const Tx& tx = log[i];
  std::vector<double> out = {as_kept(tx.amount)};
  if (spec.calendar) {
    out.push_back(EntityWindows::during_weekend(tx.time_ms) ? 1 : 0);
    out.push_back(EntityWindows::during_night(tx.time_ms) ? 1 : 0);
  }
  for (int d : spec.windows_days) {
    double n = 0, sum = 0;
    for (size_t k = 0; k <= i; ++k) {
      if (log[k].entity == tx.entity && log[k].time_ms > tx.time_ms - d * kDay &&
          log[k].time_ms <= tx.time_ms) {
        ++n;
        sum += as_kept(log[k].amount);
      }
    }
    out.push_back(n);
    out.push_back(sum / n);
  }
  return out;
}

// Runs `log` through `w`, checking each exact (not partial) result against the reference.
// Returns how many were partial.
size_t check_against_reference(EntityWindows& w, const std::vector<Tx>& log) {
  std::vector<double> got(w.width());
  size_t partial = 0;
  for (size_t i = 0; i < log.size(); ++i) {
    const bool exact = w.observe({log[i].entity, log[i].time_ms, log[i].amount}, got.data());
    if (!exact) {
      ++partial;
      continue;
    }
    const auto want = brute_force(w.spec(), log, i);
    for (size_t f = 0; f < want.size(); ++f) {
      EXPECT_NEAR(got[f], want[f], 1e-9 * std::max(1.0, std::fabs(want[f])))
          << "transaction " << i << " feature " << w.spec().output_names()[f];
    }
    if (::testing::Test::HasFailure()) return partial;
  }
  return partial;
}

// Mostly in time order, with out-of-order events (within `max_back` of the newest), equal
// timestamps and events exactly on window edges.
std::vector<Tx> random_stream(std::mt19937_64& rng, size_t n, size_t entities, int64_t step_ms,
                              int64_t max_back, size_t* edges = nullptr) {
  std::vector<Tx> log;
  std::uniform_int_distribution<size_t> who(0, entities - 1);
  std::uniform_int_distribution<int> kind(0, 9);
  std::uniform_int_distribution<int64_t> step(0, step_ms);
  std::uniform_int_distribution<int64_t> back(0, max_back);
  std::uniform_real_distribution<double> amount(0.01, 500.0);
  int64_t now = kT0;
  for (size_t i = 0; i < n; ++i) {
    now += step(rng);
    Tx tx{"c-" + std::to_string(who(rng)), now, std::round(amount(rng) * 100) / 100};
    const int k = kind(rng);
    if (k == 0 && !log.empty()) tx.time_ms = log.back().time_ms;  // equal timestamp
    if (k == 1) tx.time_ms = std::max(kT0, now - back(rng));      // out of order
    if (k == 2 && !log.empty()) {  // exactly one window after an earlier event of its entity
      const int64_t w = (i % 3 == 0 ? 1 : i % 3 == 1 ? 7 : 30) * kDay;
      // The earliest event recent enough for the edge event not to be late.
      size_t j = log.size() - 1;
      while (j > 0 && log[j - 1].time_ms + w >= now - max_back) --j;
      if (log[j].time_ms + w >= now - max_back) {
        tx.time_ms = log[j].time_ms + w;
        tx.entity = log[j].entity;
        now = std::max(now, tx.time_ms);
        if (edges != nullptr) ++*edges;
      }
    }
    log.push_back(tx);
  }
  return log;
}

TEST(EntityWindowsTest, RandomStreamsMatchTheBruteForceReferenceExactly) {
  FeatureSpec spec;  // 1, 7, 30 days; one day of lateness
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    std::mt19937_64 rng(seed);
    // ~3000 events over ~70 days, 40 entities; out-of-order events at most 12 h back.
    size_t edges = 0;
    auto log = random_stream(rng, 3000, 40, 4 * 3600 * 1000, kDay / 2, &edges);
    EXPECT_GT(edges, 100u);
    EntityWindows w(spec);
    EXPECT_EQ(check_against_reference(w, log), 0u) << "seed " << seed;
    EXPECT_GT(w.figures().events, 0u);
  }
}

TEST(EntityWindowsTest, HintsAheadRightWrongOrMissingChangeNoFeature) {
  FeatureSpec spec;
  spec.max_entities_per_partition = 60;  // the cap and the sweeps drop hinted entities too
  std::mt19937_64 rng(11);
  const auto log = random_stream(rng, 4000, 200, 4 * 3600 * 1000, kDay / 2);
  EntityWindows plain(spec), hinted(spec);
  std::vector<double> want(plain.width()), got(hinted.width());
  std::uniform_int_distribution<int> coin(0, 3);
  for (size_t i = 0; i < log.size(); ++i) {
    const size_t ahead = i + EntityWindows::kPrefetchAhead;
    const int c = coin(rng);
    if (c == 0 && ahead < log.size()) hinted.prefetch(log[ahead].entity);  // right
    if (c == 1) hinted.prefetch("nobody-" + std::to_string(i));            // wrong
    if (c == 2) hinted.prefetch(log[i].entity);                            // late
    const bool exact_plain =
        plain.observe({log[i].entity, log[i].time_ms, log[i].amount}, want.data());
    const bool exact_hinted =
        hinted.observe({log[i].entity, log[i].time_ms, log[i].amount}, got.data());
    ASSERT_EQ(exact_plain, exact_hinted) << "transaction " << i;
    ASSERT_EQ(want, got) << "transaction " << i;
  }
  EXPECT_GT(hinted.figures().dropped_cap, 0u);
}

// Event times are kept as 32-bit ms offsets from a base per entity (49.7 days): an entity
// back after months, events before its base and a window plus lateness of 49 days stay exact.
TEST(EntityWindowsTest, TimesFarApartInOneEntityMoveItsBaseAndStayExact) {
  FeatureSpec spec;
  spec.windows_days = {1, 7, 45};
  spec.allowed_lateness_ms = 4 * kDay;  // 49 days of history at most
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> kind(0, 9);
    std::uniform_int_distribution<int64_t> step(0, 2 * kDay), jump(40 * kDay, 120 * kDay);
    std::uniform_int_distribution<int64_t> back(0, 4 * kDay);
    std::vector<Tx> log;
    int64_t now = kT0;
    for (int i = 0; i < 1500; ++i) {
      const int k = kind(rng);
      now += k == 0 ? jump(rng) : step(rng);  // months without a transaction, now and then
      Tx tx{"c-" + std::to_string(i % 3), now, 1.0 + i % 97};
      if (k == 1) tx.time_ms = now - back(rng);  // out of order, within the lateness
      log.push_back(tx);
    }
    EntityWindows w(spec);
    EXPECT_EQ(check_against_reference(w, log), 0u) << "seed " << seed;
  }
  // One far before its entity's kept events: late, computed over itself, the rest kept.
  EntityWindows w(spec);
  std::vector<double> f(w.width());
  EXPECT_TRUE(w.observe({"c", kT0 + 100 * kDay, 5.0}, f.data()));
  EXPECT_FALSE(w.observe({"c", kT0, 7.0}, f.data()));
  EXPECT_EQ(f[0], 7.0);
  EXPECT_EQ(f[3], 1.0);
  EXPECT_TRUE(w.observe({"c", kT0 + 100 * kDay + 1, 9.0}, f.data()));
  EXPECT_EQ(f[7], 2.0) << "the 45-day window holds the two recent ones";
  EXPECT_EQ(f[8], 7.0);
}

TEST(EntityWindowsTest, ASpecWhoseHistoryCannotBeKeptIsRefused) {
  FeatureSpec spec;
  spec.windows_days = {1, 60};
  EXPECT_THROW(EntityWindows{spec}, std::invalid_argument);
}

TEST(EntityWindowsTest, EventsExactlyOnTheWindowEdgeAreOutsideAndOneMsInsideIsIn) {
  FeatureSpec spec;
  EntityWindows w(spec);
  std::vector<double> f(w.width());
  ASSERT_TRUE(w.observe({"c", kT0, 10.0}, f.data()));
  ASSERT_TRUE(w.observe({"c", kT0 + 1, 20.0}, f.data()));
  // At kT0 + 1 day: the window (t - 1d, t] leaves out kT0 and keeps kT0 + 1.
  ASSERT_TRUE(w.observe({"c", kT0 + kDay, 40.0}, f.data()));
  EXPECT_EQ(f[3], 2.0);   // customer_nb_tx_1d: kT0 + 1 and the current one
  EXPECT_EQ(f[4], 30.0);  // customer_avg_amount_1d
  EXPECT_EQ(f[5], 3.0);   // customer_nb_tx_7d
}

TEST(EntityWindowsTest, EqualTimestampsCountOnlyTheOnesReadSoFar) {
  EntityWindows w(FeatureSpec{});
  std::vector<double> f(w.width());
  w.observe({"c", kT0, 1.0}, f.data());
  EXPECT_EQ(f[3], 1.0);
  w.observe({"c", kT0, 3.0}, f.data());
  EXPECT_EQ(f[3], 2.0);
  EXPECT_EQ(f[4], 2.0);
  // An earlier event read later counts what is in its own window, not the later ones.
  w.observe({"c", kT0 - 1000, 5.0}, f.data());
  EXPECT_EQ(f[3], 1.0);
  EXPECT_EQ(f[4], 5.0);
}

TEST(EntityWindowsTest, OneEntityWithThousandsOfEventsStaysExactAndBounded) {
  FeatureSpec spec;
  std::mt19937_64 rng(7);
  // 20,000 events of one customer over ~140 days (one every 10 min on average).
  auto log = random_stream(rng, 20000, 1, 20 * 60 * 1000, 3600 * 1000);
  EntityWindows w(spec);
  std::vector<double> got(w.width());
  size_t checked = 0;
  for (size_t i = 0; i < log.size(); ++i) {
    ASSERT_TRUE(w.observe({log[i].entity, log[i].time_ms, log[i].amount}, got.data()));
    if (i % 97 != 0 && i + 1 != log.size()) continue;  // the reference is O(n) per event
    const auto want = brute_force(spec, log, i);
    for (size_t f = 0; f < want.size(); ++f) ASSERT_NEAR(got[f], want[f], 1e-9 * want[f] + 1e-9);
    ++checked;
  }
  EXPECT_GT(checked, 200u);
  // Only the last 31 days (30-day window + 1 day lateness) are kept: ~4,500 of 20,000.
  EXPECT_LT(w.figures().events, 5000u);
}

TEST(EntityWindowsTest, IdleEntitiesAreSweptAndReturningOnesStartAfresh) {
  FeatureSpec spec;
  EntityWindows w(spec);
  std::vector<double> f(w.width());
  for (int c = 0; c < 1000; ++c) w.observe({"old-" + std::to_string(c), kT0, 1.0}, f.data());
  EXPECT_EQ(w.figures().entities, 1000u);
  // 32 days later nothing of theirs can be inside a 30-day window (+1 day lateness). A sweep
  // runs once per max(entities, 65536) transactions.
  const int64_t later = kT0 + 32 * kDay;
  for (int i = 0; i < 65536; ++i) {
    EXPECT_TRUE(w.observe({"new-" + std::to_string(i % 100), later + i, 2.0}, f.data()));
  }
  EXPECT_EQ(w.figures().entities, 100u);
  EXPECT_EQ(w.figures().dropped_idle, 1000u);
  EXPECT_EQ(w.figures().events, 65536u);
  EXPECT_TRUE(w.observe({"old-5", later, 3.0}, f.data())) << "its history is complete: empty";
  EXPECT_EQ(f[7], 1.0);
}

TEST(EntityWindowsTest, LateTransactionsAreMarkedPartialAndTheRestStayExact) {
  FeatureSpec spec;
  spec.allowed_lateness_ms = kDay;
  std::mt19937_64 rng(11);
  // Out-of-order events up to 3 days back: some beyond the allowed day of lateness.
  auto log = random_stream(rng, 3000, 30, 4 * 3600 * 1000, 3 * kDay);
  EntityWindows w(spec);
  const size_t partial = check_against_reference(w, log);
  EXPECT_GT(partial, 0u);
  EXPECT_EQ(partial, w.figures().late);
  EXPECT_EQ(partial, w.figures().partial);
}

TEST(EntityWindowsTest, AboveTheCapTheLeastRecentEntitiesAreDroppedAndNewcomersArePartial) {
  FeatureSpec spec;
  spec.max_entities_per_partition = 10;
  EntityWindows w(spec);
  std::vector<double> f(w.width());
  for (int c = 0; c < 10; ++c) {
    EXPECT_TRUE(w.observe({"c" + std::to_string(c), kT0 + c, 1.0}, f.data()));
  }
  EXPECT_TRUE(w.observe({"c1", kT0 + 20, 1.0}, f.data()));
  // The eleventh entity's history is complete (none was dropped before). Above the cap, the
  // least recently active go, down to 90% of it: c0 and c2 (c1 was seen again).
  EXPECT_TRUE(w.observe({"c10", kT0 + 21, 1.0}, f.data()));
  EXPECT_EQ(w.figures().entities, 9u);
  EXPECT_EQ(w.figures().dropped_cap, 2u);
  // From now on an entity not in memory may be one that was dropped: partial.
  EXPECT_FALSE(w.observe({"c11", kT0 + 22, 1.0}, f.data()));
  // c1, seen again, kept its history; c0 starts over.
  EXPECT_TRUE(w.observe({"c1", kT0 + 23, 1.0}, f.data()));
  EXPECT_EQ(f[3], 3.0);
  EXPECT_FALSE(w.observe({"c0", kT0 + 24, 1.0}, f.data()));
  EXPECT_EQ(f[3], 1.0);
  // c0 took the count above the cap again (dropped at watermark kT0 + 24). A longest window
  // (30 days) after that drop, nothing dropped can be in a window: newcomers are exact again.
  EXPECT_FALSE(w.observe({"c12", kT0 + 24 + 30 * kDay - 1, 1.0}, f.data()));
  EXPECT_TRUE(w.observe({"c13", kT0 + 24 + 30 * kDay, 1.0}, f.data()));
  EXPECT_EQ(f[7], 1.0);
}

// Every shard's chunk, all taken at `offset`.
std::vector<std::string> all_chunks(const EntityWindows& w, int64_t offset) {
  std::vector<std::string> chunks;
  for (uint32_t k = 0; k < EntityWindows::kShards; ++k)
    chunks.push_back(w.snapshot_shard(k, offset));
  return chunks;
}

std::vector<std::string_view> views(const std::vector<std::string>& chunks) {
  return {chunks.begin(), chunks.end()};
}

TEST(EntityWindowsTest, ChunksTakenAtDifferentOffsetsPlusAFilteredReplayGiveTheSameFeatures) {
  FeatureSpec spec;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    std::mt19937_64 rng(seed);
    auto log = random_stream(rng, 4000, 300, 3 * 3600 * 1000, kDay / 2);
    EntityWindows original(spec);
    std::vector<double> a(original.width()), b(original.width());
    // The service's rounds: a few shards at a time between records, so each chunk covers its
    // own offset (the index of the next transaction).
    std::vector<std::string> chunk(EntityWindows::kShards);
    std::vector<int64_t> chunk_offset(EntityWindows::kShards, -1);
    uint32_t cursor = 0;
    const size_t committed = 3000;
    for (size_t i = 0; i < committed; ++i) {
      original.observe({log[i].entity, log[i].time_ms, log[i].amount}, a.data());
      if (i >= 500) {
        for (int k = 0; k < 3; ++k, cursor = (cursor + 1) % EntityWindows::kShards) {
          chunk[cursor] = original.snapshot_shard(cursor, static_cast<int64_t>(i) + 1);
          chunk_offset[cursor] = static_cast<int64_t>(i) + 1;
        }
      }
    }
    const int64_t from = *std::min_element(chunk_offset.begin(), chunk_offset.end());
    ASSERT_GE(from, 500);
    ASSERT_LT(from, *std::max_element(chunk_offset.begin(), chunk_offset.end()));
    EntityWindows restored(spec);
    ASSERT_TRUE(restored.restore(views(chunk)).ok());
    size_t applied = 0, skipped = 0;
    for (size_t i = static_cast<size_t>(from); i < committed; ++i) {
      const Transaction tx{log[i].entity, log[i].time_ms, log[i].amount};
      if (static_cast<int64_t>(i) < chunk_offset[EntityWindows::shard_of(tx.entity)]) {
        restored.advance(tx.time_ms);
        ++skipped;
      } else {
        restored.observe(tx, b.data());
        ++applied;
      }
    }
    EXPECT_GT(applied, 100u);
    EXPECT_GT(skipped, 100u);
    EXPECT_EQ(restored.watermark_ms(), original.watermark_ms());
    for (size_t i = committed; i < log.size(); ++i) {
      const Transaction tx{log[i].entity, log[i].time_ms, log[i].amount};
      const bool exact = original.observe(tx, a.data());
      const bool restored_exact = restored.observe(tx, b.data());
      ASSERT_EQ(exact, restored_exact) << "transaction " << i;
      if (exact) {
        ASSERT_EQ(a, b) << "seed " << seed << " transaction " << i;
      }
    }
  }
}

TEST(EntityWindowsTest, ChunksOfAnotherSpecMissingOrDamagedAreRefusedWithTheReason) {
  EntityWindows w(FeatureSpec{});
  std::vector<double> f(w.width());
  w.observe({"c", kT0, 1.0}, f.data());
  const auto chunks = all_chunks(w, 1);
  const uint32_t k = EntityWindows::shard_of("c");
  auto header =
      EntityWindows::read_chunk_header(chunks[k].substr(0, EntityWindows::kChunkHeaderBytes));
  ASSERT_TRUE(header.ok()) << header.error();
  EXPECT_EQ(header.value().shard, k);
  EXPECT_EQ(header.value().offset, 1);
  EXPECT_EQ(header.value().watermark_ms, kT0);
  EXPECT_EQ(header.value().spec_hash, FeatureSpec{}.hash());

  FeatureSpec other;
  other.windows_days = {1, 7};
  EntityWindows o(other);
  const Status s = o.restore(views(chunks));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not the running"), std::string::npos) << s.message();

  EntityWindows same(FeatureSpec{});
  auto damaged = chunks;
  damaged[k].resize(damaged[k].size() - 3);
  EXPECT_NE(same.restore(views(damaged)).message().find("truncated"), std::string::npos);
  auto missing = views(chunks);
  missing.pop_back();
  EXPECT_NE(same.restore(missing).message().find("one per shard"), std::string::npos);
  auto twice = views(chunks);
  twice[0] = twice[1];
  EXPECT_NE(same.restore(twice).message().find("twice"), std::string::npos);
  auto garbage = views(chunks);
  garbage[k] = "garbage";
  EXPECT_FALSE(same.restore(garbage).ok());
  EXPECT_EQ(same.figures().entities, 0u) << "a refused snapshot leaves the state as it was";

  EntityWindows restored(FeatureSpec{});
  ASSERT_TRUE(restored.restore(views(chunks)).ok());
  EXPECT_EQ(restored.figures().entities, 1u);
  EXPECT_TRUE(restored.observe({"c", kT0 + 1, 3.0}, f.data()));
  EXPECT_EQ(f[3], 2.0);  // customer_nb_tx_1d: the restored one and this one
}

TEST(EntityWindowsTest, CalendarFeaturesAreInUtc) {
  // 2024-03-02 was a Saturday; 2024-03-04 a Monday.
  constexpr int64_t kSat = 1'709'337'600'000;  // 2024-03-02T00:00:00Z
  EXPECT_TRUE(EntityWindows::during_weekend(kSat));
  EXPECT_TRUE(EntityWindows::during_weekend(kSat + 2 * kDay - 1));  // Sunday 23:59:59.999
  EXPECT_FALSE(EntityWindows::during_weekend(kSat + 2 * kDay));     // Monday
  EXPECT_FALSE(EntityWindows::during_weekend(kSat - 1));            // Friday 23:59:59.999
  EXPECT_TRUE(EntityWindows::during_night(kSat + 6 * 3600 * 1000 - 1));
  EXPECT_FALSE(EntityWindows::during_night(kSat + 6 * 3600 * 1000));
  EXPECT_FALSE(EntityWindows::during_weekend(-1)) << "1969-12-31 was a Wednesday";
  EXPECT_FALSE(EntityWindows::during_night(-1)) << "23:59:59.999";
}

}  // namespace
}  // namespace vigil::features

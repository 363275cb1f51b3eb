// StreamFeatures' recovery through snapshots, with an in-memory SnapshotStore (the Redis one
// is tested against a real redis-server in tests/sinks, and the whole in
// tests/integration/velocity_features_test and tests/faults/velocity_fault_test).
#include "features/stream_features.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "common/metrics.h"
#include "features/entity_windows.h"
#include "features/feature_spec.h"
#include "support/velocity_data.h"

namespace vigil::features {
namespace {

using Clock = std::chrono::steady_clock;

// Reads may come from several threads at once (the loads of one assignment): under a lock.
class MemoryStore : public SnapshotStore {
 public:
  bool has_room() const override { return room; }
  bool save(int32_t partition, ChunkSlot where, std::string chunk) override {
    if (!room) return false;
    std::lock_guard<std::mutex> lock(mutex);
    chunks[{partition, where.shard, where.slot}] = std::move(chunk);
    return true;
  }
  Result<std::vector<std::string>> read_heads(int32_t partition, uint32_t shards,
                                              size_t bytes) override {
    if (!reachable) return Result<std::vector<std::string>>::Error("Redis: connection refused");
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<std::string> out;
    for (uint32_t s = 0; s < shards; ++s) {
      for (uint32_t slot = 0; slot < kSlots; ++slot) {
        auto it = chunks.find({partition, s, slot});
        out.push_back(it == chunks.end() ? "" : it->second.substr(0, bytes));
      }
    }
    return out;
  }
  Result<std::vector<std::string>> read(int32_t partition,
                                        const std::vector<ChunkSlot>& which) override {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<std::string> out;
    for (const auto& w : which) out.push_back(chunks[{partition, w.shard, w.slot}]);
    return out;
  }
  // The offsets each slot of `shard` covers (-1: empty).
  std::array<int64_t, kSlots> offsets(int32_t partition, uint32_t shard) const {
    std::array<int64_t, kSlots> out{-1, -1};
    for (uint32_t slot = 0; slot < kSlots; ++slot) {
      auto it = chunks.find({partition, shard, slot});
      if (it != chunks.end()) out[slot] = EntityWindows::read_chunk_header(it->second)->offset;
    }
    return out;
  }

  std::mutex mutex;
  std::map<std::tuple<int32_t, uint32_t, uint32_t>, std::string> chunks;  // guarded by mutex
  bool room = true;
  bool reachable = true;
};

class StreamFeaturesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto spec =
        load_feature_spec(std::string(VIGIL_SOURCE_DIR) + "/models/fraud_velocity/features.yaml");
    ASSERT_TRUE(spec.ok()) << spec.error();
    spec_ = spec.value();
    txs_ = vigil::testing::make_raw_transactions(3000, 300, 40, 7);
  }

  std::unique_ptr<StreamFeatures> make(metrics::Registry& registry, SnapshotStore* store) {
    return std::make_unique<StreamFeatures>(spec_, 4096, registry, store,
                                            std::chrono::milliseconds(1));
  }

  // Scores txs_[from, to) as offsets of partition 0 (with `partitions`, record i as offset
  // i / partitions of partition i % partitions); snapshot ticks between records with
  // `committed` as the committed offset (negative: that many records behind the one just
  // read; INT64_MIN: no ticks). Returns the features.
  std::vector<std::vector<float>> score(StreamFeatures& f, size_t from, size_t to,
                                        int64_t committed = 0, int32_t partitions = 1) {
    std::vector<std::vector<float>> out;
    for (size_t i = from; i < to; ++i) {
      InlineString id;
      FeatureVector v;
      std::optional<int64_t> t;
      bool partial = false;
      const std::string json = vigil::testing::raw_json(txs_[i]);
      EXPECT_TRUE(f.compute(static_cast<int32_t>(i % partitions),
                            static_cast<int64_t>(i / partitions), json, INT64_MIN, id, v, t,
                            partial)
                      .ok());
      out.emplace_back(v.begin(), v.end());
      if (committed == INT64_MIN) continue;
      now_ += std::chrono::milliseconds(1);
      f.snapshot_tick(now_, [&](int32_t) {
        return committed >= 0 ? committed : static_cast<int64_t>(i) + 1 + committed;
      });
    }
    return out;
  }

  // Ticks without records until a round completes.
  void round(StreamFeatures& f, metrics::Registry& r, int64_t committed) {
    const uint64_t before = rounds(r);
    while (rounds(r) == before) {
      now_ += std::chrono::milliseconds(1);
      f.snapshot_tick(now_, [&](int32_t) { return committed; });
    }
  }

  static uint64_t rounds(metrics::Registry& r) {
    return r.counter("vigil_features_snapshot_rounds_total", "").value();
  }

  static uint64_t loads(metrics::Registry& r, const char* outcome) {
    return r.counter("vigil_features_snapshot_loads_total", "", {{"outcome", outcome}}).value();
  }

  FeatureSpec spec_;
  std::vector<vigil::testing::RawTx> txs_;
  Clock::time_point now_ = Clock::now();
};

TEST_F(StreamFeaturesTest, ARestartLoadsTheSnapshotAndReplaysOnlyTheLogAfterItWithTheSameFeatures) {
  MemoryStore store;
  metrics::Registry r1;
  auto first = make(r1, &store);
  EXPECT_EQ(first->assign(0, 0, 0, true), 0);
  // Commits 800 records behind; it crashes after the last one.
  const auto original = score(*first, 0, txs_.size(), -800);
  EXPECT_GT(rounds(r1), 2u);

  // The next owner of the partition starts from the committed offset: scored again from there.
  const size_t committed = txs_.size() - 800;
  metrics::Registry r2;
  auto second = make(r2, &store);
  const int64_t from = second->assign(0, 0, committed, true);
  EXPECT_EQ(loads(r2, "restored"), 1u) << second->restore_note(0);
  EXPECT_GT(from, 0) << "the snapshot covers the start of the log";
  EXPECT_LE(from, static_cast<int64_t>(committed));
  auto& ready = r2.histogram("vigil_features_ready_seconds", "", {});
  for (int64_t o = from; o < static_cast<int64_t>(committed); ++o) {
    ASSERT_TRUE(second->replaying(0, o));
    EXPECT_EQ(ready.count(), 0u) << "ready before the replay's end, at offset " << o;
    second->replay(0, o, vigil::testing::raw_json(txs_[static_cast<size_t>(o)]), INT64_MIN);
  }
  EXPECT_TRUE(second->readiness_notes().empty());
  EXPECT_EQ(ready.count(), 1u) << "the time from assignment to ready is observed once";
  const auto again = score(*second, committed, txs_.size());
  for (size_t i = committed; i < txs_.size(); ++i) {
    ASSERT_EQ(again[i - committed], original[i]) << "transaction " << i;
  }
}

TEST_F(StreamFeaturesTest, RecordsReadAgainAreScoredPartialAndNeverCountedTwice) {
  metrics::Registry r1, r2;
  auto straight = make(r1, nullptr);
  auto moved_back = make(r2, nullptr);
  const auto want = score(*straight, 0, 2000, INT64_MIN);
  score(*moved_back, 0, 1500, INT64_MIN);
  // The consumer's position moves back 100 records: they come again.
  InlineString id;
  FeatureVector v;
  std::optional<int64_t> t;
  for (size_t i = 1400; i < 1500; ++i) {
    bool partial = false;
    const std::string json = vigil::testing::raw_json(txs_[i]);
    ASSERT_TRUE(
        moved_back->compute(0, static_cast<int64_t>(i), json, INT64_MIN, id, v, t, partial).ok());
    EXPECT_TRUE(partial) << "record " << i;
    EXPECT_EQ(v[0], want[i][0]) << "its own amount";
  }
  EXPECT_EQ(r2.counter("vigil_features_reread_total", "").value(), 100u);
  const auto got = score(*moved_back, 1500, 2000, INT64_MIN);
  for (size_t i = 1500; i < 2000; ++i) ASSERT_EQ(got[i - 1500], want[i]) << "transaction " << i;
}

TEST_F(StreamFeaturesTest, ARoundNeverReplacesTheOnlyChunkWithinTheCommittedOffset) {
  MemoryStore store;
  metrics::Registry r;
  auto f = make(r, &store);
  f->assign(0, 0, 0, true);
  // The commit stays at 500 (delivery stalled) while records are read up to 1500: rounds
  // go on until each shard's newer chunk covers uncommitted records, then wait.
  score(*f, 0, 1500, /*committed=*/500);
  const uint64_t stalled = rounds(r);
  score(*f, 1500, 2000, /*committed=*/500);
  EXPECT_EQ(rounds(r), stalled) << "no round while only one chunk per shard is usable";
  for (uint32_t k = 0; k < EntityWindows::kShards; ++k) {
    const auto o = store.offsets(0, k);
    ASSERT_TRUE(std::min(o[0], o[1]) >= 0 && std::min(o[0], o[1]) <= 500) << "shard " << k;
  }
  // Once the commit passes them, the round goes on.
  score(*f, 2000, 2500, /*committed=*/2000);
  EXPECT_GT(rounds(r), stalled);
}

TEST_F(StreamFeaturesTest, WithoutAUsableSnapshotTheLogIsReplayedFromItsStartAndReadySaysWhy) {
  MemoryStore store;
  metrics::Registry r;
  {
    auto f = make(r, &store);
    f->assign(0, 0, 0, true);
    score(*f, 0, 1000, INT64_MIN);
    round(*f, r, 1000);  // every chunk covers offsets up to 1000
  }
  // Redis unreachable.
  store.reachable = false;
  auto g = make(r, &store);
  EXPECT_EQ(g->assign(0, 0, 1000, true), 0);
  EXPECT_EQ(loads(r, "failed"), 1u);
  ASSERT_EQ(g->readiness_notes().size(), 1u);
  EXPECT_NE(g->readiness_notes()[0].find("snapshot not read (Redis: connection refused)"),
            std::string::npos)
      << g->readiness_notes()[0];
  store.reachable = true;

  // Every chunk covers more than what was committed (scored again from 10): unusable.
  EXPECT_EQ(g->assign(0, 0, 10, true), 0);
  EXPECT_EQ(loads(r, "unusable"), 1u);
  EXPECT_NE(g->readiness_notes()[0].find("beyond the committed 10"), std::string::npos)
      << g->readiness_notes()[0];

  // Retention deleted the log's start past the chunks: unusable, and the history partial.
  EXPECT_EQ(g->assign(0, 1001, 1001, false), 1001);
  EXPECT_EQ(loads(r, "unusable"), 2u);
  ASSERT_EQ(g->readiness_notes().size(), 1u) << "nothing to replay: the incomplete history";
  EXPECT_NE(g->readiness_notes()[0].find("no longer holds"), std::string::npos)
      << g->readiness_notes()[0];
  EXPECT_NE(g->readiness_notes()[0].find("before the log's start 1001"), std::string::npos)
      << g->readiness_notes()[0];

  // Another spec's snapshot.
  FeatureSpec other = spec_;
  other.windows_days = {1, 7};
  auto h = std::make_unique<StreamFeatures>(other, 4096, r, &store, std::chrono::milliseconds(1));
  h->assign(0, 0, 1000, true);
  EXPECT_EQ(loads(r, "unusable"), 3u);
  EXPECT_NE(h->readiness_notes()[0].find("not the running"), std::string::npos);

  // No snapshot at all.
  store.chunks.clear();
  EXPECT_EQ(g->assign(0, 0, 1000, true), 0);
  EXPECT_EQ(loads(r, "none"), 1u);
  EXPECT_NE(g->readiness_notes()[0].find("no snapshot"), std::string::npos);
}

// The partitions of one assignment load their snapshots side by side, on several threads,
// each into its own state: after the restart every partition's features are the first run's.
TEST_F(StreamFeaturesTest, ThePartitionsOfOneAssignmentLoadTheirSnapshotsSideBySide) {
  constexpr int32_t kParts = 6;
  constexpr size_t kRestartAt = 2700;  // 450 records a partition
  std::vector<StreamFeatures::PartitionStart> fresh, restart;
  for (int32_t p = 0; p < kParts; ++p) {
    fresh.push_back({p, 0, 0, true});
    restart.push_back({p, 0, static_cast<int64_t>(kRestartAt / kParts), true});
  }
  MemoryStore store;
  metrics::Registry r1;
  auto first = make(r1, &store);
  EXPECT_EQ(first->assign(fresh), std::vector<int64_t>(kParts, 0));
  score(*first, 0, kRestartAt, INT64_MIN, kParts);
  // Ticks until every shard of every partition is saved at the committed offset. (Counting
  // rounds is not enough: they are the partitions' together, and a partition interrupted by
  // the tick's time budget on a busy machine may not have finished one of its own.)
  constexpr int64_t kCommitted = kRestartAt / kParts;
  auto all_saved = [&] {
    std::lock_guard<std::mutex> lock(store.mutex);
    for (int32_t p = 0; p < kParts; ++p) {
      for (uint32_t s = 0; s < EntityWindows::kShards; ++s) {
        const auto at = store.offsets(p, s);
        if (at[0] != kCommitted && at[1] != kCommitted) return false;
      }
    }
    return true;
  };
  for (int ticks = 0; !all_saved(); ++ticks) {
    ASSERT_LT(ticks, 100'000) << "the rounds never covered every partition";
    now_ += std::chrono::milliseconds(1);
    first->snapshot_tick(now_, [&](int32_t) { return kCommitted; });
  }
  const auto expected = score(*first, kRestartAt, txs_.size(), INT64_MIN, kParts);

  metrics::Registry r2;
  auto second = make(r2, &store);
  EXPECT_EQ(second->assign(restart), std::vector<int64_t>(kParts, kRestartAt / kParts))
      << "each snapshot covers its partition up to the committed offset: nothing to replay";
  EXPECT_EQ(loads(r2, "restored"), static_cast<uint64_t>(kParts));
  EXPECT_EQ(score(*second, kRestartAt, txs_.size(), INT64_MIN, kParts), expected);
}

}  // namespace
}  // namespace vigil::features

#include "consumers/offset_tracker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "consumers/route_offsets.h"

namespace vigil::consumers {
namespace {

// held() as comparable, printable tuples (partition, lowest held offset, why).
std::vector<std::tuple<PartitionId, Offset, std::string>> holds(const OffsetTracker& t) {
  std::vector<std::tuple<PartitionId, Offset, std::string>> out;
  for (const auto& h : t.held()) out.emplace_back(h.partition, h.offset, h.why);
  return out;
}

// Tracks [first, last] on `p`, returning the tokens in offset order.
std::vector<AckToken> track_range(OffsetTracker& t, PartitionId p, Offset first, Offset last) {
  std::vector<AckToken> out;
  for (Offset o = first; o <= last; ++o) out.push_back(t.track(p, o));
  return out;
}

TEST(RouteOffsets, EachRoutesRecordsAdvanceOnlyTheirOwnRoutesOffsets) {
  RouteOffsets offsets(2);
  for (size_t r = 0; r < 2; ++r) offsets[r].assign(0);
  // Partition 0 of two topics, offsets alike: one acknowledgement of both, interleaved.
  std::vector<AckToken> tokens;
  for (Offset o = 0; o < 4; ++o) {
    for (uint16_t r = 0; r < 2; ++r) {
      AckToken t = offsets[r].track(0, o);
      t.route = r;
      tokens.push_back(t);
    }
  }
  std::vector<AckToken> some;  // route 0's 0..3, route 1's 0..1
  for (const AckToken& t : tokens) {
    if (t.route == 0 || t.offset < 2) some.push_back(t);
  }
  offsets.acknowledge(some.data(), some.size());
  EXPECT_EQ(offsets[0].committable(0), Offset{4});
  EXPECT_EQ(offsets[1].committable(0), Offset{2});
  EXPECT_EQ(offsets[1].in_flight(), 2u);
  // Holds and ownership go to the record's route alone.
  offsets.hold(tokens[5], "dead letter refused");  // route 1, offset 2
  EXPECT_TRUE(offsets[0].held().empty());
  ASSERT_EQ(offsets[1].held().size(), 1u);
  EXPECT_EQ(offsets[1].held()[0].offset, 2);
  offsets[1].revoke(0);
  EXPECT_TRUE(offsets.owns(tokens[4]));   // route 0, offset 2
  EXPECT_FALSE(offsets.owns(tokens[5]));  // route 1's partition 0 was revoked
  AckToken unknown = tokens[0];
  unknown.route = 7;
  EXPECT_FALSE(offsets.owns(unknown));
  offsets.acknowledge(&unknown, 1);  // ignored
}

TEST(OffsetTracker, CommittableIsEmptyUntilSomethingIsTrackedSinceAssignment) {
  OffsetTracker t;
  EXPECT_EQ(t.committable(0), std::nullopt);  // never assigned
  t.assign(0);
  EXPECT_EQ(t.committable(0), std::nullopt);
  EXPECT_EQ(t.in_flight(0), 0u);
  t.track(0, 7);
  EXPECT_EQ(t.committable(0), Offset{7});  // tracked, not done: the commit point is the record
}

TEST(OffsetTracker, TrackHandsOutATokenNamingPartitionOffsetAndGeneration) {
  OffsetTracker t;
  const uint64_t gen = t.assign(3);
  const AckToken tok = t.track(3, 1234);
  EXPECT_EQ(tok.partition, 3);
  EXPECT_EQ(tok.offset, 1234);
  EXPECT_EQ(tok.generation, gen);
}

TEST(OffsetTracker, CommittableIsOnePastTheHighestOnceAllAreAcknowledged) {
  OffsetTracker t;
  t.assign(0);
  for (const auto& tok : track_range(t, 0, 100, 109)) EXPECT_TRUE(t.ack(tok));
  EXPECT_EQ(t.committable(0), Offset{110});
  EXPECT_EQ(t.in_flight(0), 0u);
  EXPECT_EQ(t.in_flight(), 0u);
}

TEST(OffsetTracker, CommittableStopsAtTheLowestUndeliveredOffset) {
  OffsetTracker t;
  t.assign(0);
  t.assign(1);
  auto tok = track_range(t, 0, 40, 44);  // tok[i] is offset 40 + i
  track_range(t, 1, 0, 2);               // three more in flight elsewhere
  EXPECT_EQ(t.in_flight(0), 5u);
  EXPECT_EQ(t.in_flight(), 8u);

  EXPECT_TRUE(t.ack(tok[0]));
  EXPECT_TRUE(t.ack(tok[1]));
  EXPECT_TRUE(t.ack(tok[3]));
  EXPECT_EQ(t.committable(0), Offset{42});
  EXPECT_EQ(t.in_flight(0), 2u);
  EXPECT_EQ(t.in_flight(), 5u);

  EXPECT_TRUE(t.ack(tok[2]));
  EXPECT_EQ(t.committable(0), Offset{44});
  EXPECT_EQ(t.in_flight(0), 1u);
  EXPECT_EQ(t.in_flight(), 4u);

  EXPECT_TRUE(t.ack(tok[4]));
  EXPECT_EQ(t.committable(0), Offset{45});
  EXPECT_EQ(t.in_flight(0), 0u);
  EXPECT_EQ(t.in_flight(1), 3u);
  EXPECT_EQ(t.in_flight(), 3u);
  EXPECT_EQ(t.committable(1), Offset{0});  // the other partition did not move
}

TEST(OffsetTracker, CommittableSkipsOffsetsThatWereNeverConsumed) {
  // Compacted topics and transaction markers leave gaps in a partition's offsets.
  OffsetTracker t;
  t.assign(0);
  const AckToken a = t.track(0, 10), b = t.track(0, 13), c = t.track(0, 20);
  EXPECT_TRUE(t.ack(a));
  EXPECT_EQ(t.committable(0), Offset{13});
  EXPECT_TRUE(t.ack(c));
  EXPECT_EQ(t.committable(0), Offset{13});
  EXPECT_TRUE(t.ack(b));
  EXPECT_EQ(t.committable(0), Offset{21});
}

TEST(OffsetTracker, AcknowledgeTakesABatchAcrossPartitionsInAnyOrder) {
  OffsetTracker t;
  delivery::Acknowledger& acks = t;  // the seam the delivery stage sees
  std::vector<AckToken> batch;
  for (PartitionId p = 0; p < 3; ++p) {
    t.assign(p);
    for (const auto& tok : track_range(t, p, 1000 * p, 1000 * p + 9)) batch.push_back(tok);
  }
  std::mt19937 rng(7);
  std::shuffle(batch.begin(), batch.end(), rng);
  // Leave partition 1's offset 1004 out: partition 1 stops there, the others pass their end.
  const auto missing = std::find_if(batch.begin(), batch.end(), [](const AckToken& k) {
    return k.partition == 1 && k.offset == 1004;
  });
  ASSERT_NE(missing, batch.end());
  const AckToken late = *missing;
  batch.erase(missing);

  acks.acknowledge(batch.data(), batch.size());
  EXPECT_EQ(t.committable(0), Offset{10});
  EXPECT_EQ(t.committable(1), Offset{1004});
  EXPECT_EQ(t.committable(2), Offset{2010});
  EXPECT_EQ(t.in_flight(), 1u);

  acks.acknowledge(&late, 1);
  EXPECT_EQ(t.committable(1), Offset{1010});
  EXPECT_EQ(t.in_flight(), 0u);
}

TEST(OffsetTracker, AcknowledgeAppliesTheGoodTokensOfABatchAndSkipsStaleOrRepeatedOnes) {
  OffsetTracker t;
  t.assign(0);
  const AckToken stale = t.track(0, 5);
  t.assign(0);  // re-assigned: `stale` belongs to the previous generation
  auto tok = track_range(t, 0, 5, 7);
  const AckToken batch[] = {tok[1], stale, tok[0], tok[1]};
  t.acknowledge(batch, 4);
  EXPECT_EQ(t.committable(0), Offset{7});
  EXPECT_EQ(t.in_flight(0), 1u);
}

TEST(OffsetTracker, DuplicateAckReturnsFalseAndChangesNothing) {
  OffsetTracker t;
  t.assign(0);
  auto tok = track_range(t, 0, 1, 3);
  EXPECT_TRUE(t.ack(tok[1]));  // done, but not yet committed past
  EXPECT_FALSE(t.ack(tok[1]));
  EXPECT_EQ(t.committable(0), Offset{1});
  EXPECT_EQ(t.in_flight(0), 2u);

  EXPECT_TRUE(t.ack(tok[0]));  // now 1 and 2 are committed past
  EXPECT_EQ(t.committable(0), Offset{3});
  EXPECT_FALSE(t.ack(tok[0]));
  EXPECT_FALSE(t.ack(tok[1]));
  EXPECT_EQ(t.committable(0), Offset{3});
  EXPECT_EQ(t.in_flight(0), 1u);

  EXPECT_TRUE(t.ack(tok[2]));
  EXPECT_FALSE(t.ack(tok[2]));
  EXPECT_EQ(t.committable(0), Offset{4});
  EXPECT_EQ(t.in_flight(0), 0u);
}

TEST(OffsetTracker, AckOfAnOffsetNeverTrackedReturnsFalse) {
  OffsetTracker t;
  const uint64_t gen = t.assign(0);
  t.track(0, 10);
  t.track(0, 12);
  auto token = [&](PartitionId p, Offset o) {
    AckToken k;
    k.partition = p;
    k.offset = o;
    k.generation = gen;
    return k;
  };
  EXPECT_FALSE(t.ack(token(0, 9)));   // below everything tracked
  EXPECT_FALSE(t.ack(token(0, 11)));  // in a gap
  EXPECT_FALSE(t.ack(token(0, 13)));  // above everything tracked
  EXPECT_FALSE(t.ack(token(1, 10)));  // a partition never assigned
  EXPECT_EQ(t.committable(0), Offset{10});
  EXPECT_EQ(t.in_flight(0), 2u);
  EXPECT_EQ(t.partitions(), std::vector<PartitionId>{0});
}

TEST(OffsetTracker, AssigningAgainGivesAnIncreasingGeneration) {
  OffsetTracker t;
  const uint64_t g1 = t.assign(0);
  const uint64_t g2 = t.assign(0);
  const uint64_t g3 = t.assign(1);
  t.revoke(0);
  const uint64_t g4 = t.assign(0);
  EXPECT_LT(g1, g2);
  EXPECT_LT(g2, g3);
  EXPECT_LT(g3, g4);
  EXPECT_EQ(t.track(0, 1).generation, g4);
  EXPECT_EQ(t.track(1, 1).generation, g3);
}

TEST(OffsetTracker, AckFromBeforeARevokeAndReassignIsIgnored) {
  OffsetTracker t;
  t.assign(0);
  const AckToken old_tok = t.track(0, 100);
  t.revoke(0);
  t.assign(0);
  EXPECT_EQ(t.committable(0), std::nullopt);  // nothing tracked since this assignment
  const AckToken new_tok = t.track(0, 100);   // the same record, consumed again

  EXPECT_FALSE(t.ack(old_tok));
  EXPECT_EQ(t.committable(0), Offset{100});
  EXPECT_EQ(t.in_flight(0), 1u);

  EXPECT_TRUE(t.ack(new_tok));
  EXPECT_EQ(t.committable(0), Offset{101});
}

TEST(OffsetTracker, AckFromBeforeAReassignWithoutRevokeIsIgnored) {
  OffsetTracker t;
  t.assign(0);
  const AckToken old_tok = t.track(0, 50);
  t.assign(0);
  EXPECT_EQ(t.committable(0), std::nullopt);
  EXPECT_EQ(t.in_flight(0), 0u);
  t.track(0, 50);  // consumed again from the last commit
  EXPECT_FALSE(t.ack(old_tok));
  EXPECT_EQ(t.committable(0), Offset{50});
  EXPECT_EQ(t.in_flight(0), 1u);
}

TEST(OffsetTracker, ARecordOfARevokedPartitionIsRefusedNotTracked) {
  // A rebalance served inside the consume call that returned these records revoked their
  // partition: they are refused (generation 0) instead of aborting the process.
  OffsetTracker t;
  t.assign(0);
  t.assign(1);
  t.revoke(0);
  AckToken tokens[3];
  tokens[0].partition = 0;
  tokens[0].offset = 10;
  tokens[1].partition = 1;
  tokens[1].offset = 10;
  tokens[2].partition = 0;
  tokens[2].offset = 11;
  EXPECT_EQ(t.track(tokens, 3), 1u);
  EXPECT_EQ(tokens[0].generation, 0u);
  EXPECT_NE(tokens[1].generation, 0u);
  EXPECT_EQ(tokens[2].generation, 0u);
  EXPECT_EQ(t.in_flight(0), 0u);
  EXPECT_EQ(t.in_flight(1), 1u);
  EXPECT_EQ(t.track(7, 1).generation, 0u);  // never assigned
}

TEST(OffsetTracker, AnOffsetBelowTheLastTrackedStartsThePartitionOverUnderANewGeneration) {
  // The consumer's position moved back (an offset reset after a truncated log): the records
  // from there are tracked again, and the commit point follows them down instead of staying
  // above records never scored.
  OffsetTracker t;
  t.assign(0);
  const AckToken old_done = t.track(0, 20);
  EXPECT_TRUE(t.ack(old_done));
  const AckToken old_pending = t.track(0, 21);
  EXPECT_EQ(t.committable(0), Offset{21});
  AckToken back[2];
  back[0].partition = 0;
  back[0].offset = 5;
  back[1].partition = 0;
  back[1].offset = 6;
  size_t regressions = 0;
  EXPECT_EQ(t.track(back, 2, &regressions), 2u);
  EXPECT_EQ(regressions, 1u);
  EXPECT_NE(back[0].generation, old_pending.generation);
  EXPECT_EQ(t.committable(0), Offset{5});
  EXPECT_FALSE(t.ack(old_pending)) << "an ack from before the restart moved the new commit point";
  EXPECT_EQ(t.in_flight(0), 2u);
  EXPECT_TRUE(t.ack(back[0]));
  EXPECT_TRUE(t.ack(back[1]));
  EXPECT_EQ(t.committable(0), Offset{7});
}

TEST(OffsetTracker, OwnsARecordOnlyWhileItsPartitionKeepsItsGeneration) {
  OffsetTracker t;
  t.assign(0);
  const AckToken tok = t.track(0, 1);
  const delivery::Acknowledger& acks = t;  // the seam the delivery stage sees
  EXPECT_TRUE(acks.owns(tok));
  t.assign(0);  // assigned again: a new generation
  EXPECT_FALSE(acks.owns(tok));
  const AckToken again = t.track(0, 1);
  EXPECT_TRUE(acks.owns(again));
  t.revoke(0);
  EXPECT_FALSE(acks.owns(again));
}

TEST(OffsetTracker, AckAfterRevokeIsIgnored) {
  OffsetTracker t;
  t.assign(0);
  const AckToken tok = t.track(0, 3);
  t.revoke(0);
  EXPECT_FALSE(t.ack(tok));
  t.acknowledge(&tok, 1);  // the batch path ignores it too
  EXPECT_EQ(t.committable(0), std::nullopt);
  EXPECT_TRUE(t.partitions().empty());
  EXPECT_EQ(t.in_flight(), 0u);
}

TEST(OffsetTracker, RevokeDropsThePartitionAndItsRecordsInFlight) {
  OffsetTracker t;
  for (PartitionId p : {0, 1, 2}) {
    t.assign(p);
    track_range(t, p, 0, 3);
  }
  EXPECT_EQ(t.partitions(), (std::vector<PartitionId>{0, 1, 2}));
  EXPECT_EQ(t.in_flight(), 12u);

  t.revoke(1);
  EXPECT_EQ(t.partitions(), (std::vector<PartitionId>{0, 2}));
  EXPECT_EQ(t.in_flight(1), 0u);
  EXPECT_EQ(t.in_flight(), 8u);
  EXPECT_EQ(t.committable(1), std::nullopt);
  EXPECT_EQ(t.committable(0), Offset{0});

  t.revoke(1);  // revoking an unassigned partition is harmless
  t.revoke(7);
  EXPECT_EQ(t.partitions(), (std::vector<PartitionId>{0, 2}));
}

TEST(OffsetTracker, HeldRecordKeepsTheCommitPointAtItsOffset) {
  OffsetTracker t;
  delivery::Acknowledger& acks = t;
  t.assign(4);
  auto tok = track_range(t, 4, 10, 14);
  acks.hold(tok[1], "dead-letter write failed");
  const AckToken rest[] = {tok[4], tok[0], tok[3], tok[2]};
  acks.acknowledge(rest, 4);
  EXPECT_EQ(t.committable(4), Offset{11});
  EXPECT_EQ(t.in_flight(4), 1u);
  EXPECT_EQ(holds(t), (std::vector<std::tuple<PartitionId, Offset, std::string>>{
                          {4, 11, "dead-letter write failed"}}));
}

TEST(OffsetTracker, AcknowledgingTheHeldRecordLiftsTheHold) {
  OffsetTracker t;
  delivery::Acknowledger& acks = t;
  t.assign(0);
  auto tok = track_range(t, 0, 10, 14);
  acks.hold(tok[1], "dead-letter write failed");
  const AckToken rest[] = {tok[0], tok[2], tok[3], tok[4]};
  acks.acknowledge(rest, 4);
  ASSERT_EQ(t.held().size(), 1u);

  acks.acknowledge(&tok[1], 1);  // the stage's dead-letter retry finally succeeded
  EXPECT_TRUE(t.held().empty());
  EXPECT_EQ(t.committable(0), Offset{15});
  EXPECT_EQ(t.in_flight(0), 0u);
}

TEST(OffsetTracker, HeldNamesEachPartitionWithItsLowestHeldOffsetAndWhy) {
  OffsetTracker t;
  for (PartitionId p : {0, 1, 2}) t.assign(p);
  auto p0 = track_range(t, 0, 0, 5);
  track_range(t, 1, 0, 5);
  auto p2 = track_range(t, 2, 0, 9);
  t.hold(p2[7], "seven");
  t.hold(p2[5], "five");
  t.hold(p0[3], "three");
  using Holds = std::vector<std::tuple<PartitionId, Offset, std::string>>;
  EXPECT_EQ(holds(t), (Holds{{0, 3, "three"}, {2, 5, "five"}}));

  t.hold(p2[5], "five, again");  // the latest reason wins
  EXPECT_EQ(holds(t), (Holds{{0, 3, "three"}, {2, 5, "five, again"}}));

  EXPECT_TRUE(t.ack(p2[5]));
  EXPECT_EQ(holds(t), (Holds{{0, 3, "three"}, {2, 7, "seven"}}));
  EXPECT_TRUE(t.ack(p2[7]));
  EXPECT_EQ(holds(t), (Holds{{0, 3, "three"}}));
}

TEST(OffsetTracker, HoldWithAStaleGenerationIsIgnored) {
  OffsetTracker t;
  t.assign(0);
  const AckToken old_tok = t.track(0, 20);
  t.revoke(0);
  t.assign(0);
  auto tok = track_range(t, 0, 20, 21);
  t.hold(old_tok, "from the previous assignment");
  EXPECT_TRUE(t.held().empty());
  EXPECT_TRUE(t.ack(tok[0]));
  EXPECT_TRUE(t.ack(tok[1]));
  EXPECT_EQ(t.committable(0), Offset{22});

  t.revoke(0);
  t.hold(tok[0], "partition no longer assigned");
  EXPECT_TRUE(t.held().empty());
}

TEST(OffsetTracker, HoldOfARecordThatHasAnOutcomeOrWasNeverTrackedIsIgnored) {
  OffsetTracker t;
  const uint64_t gen = t.assign(0);
  const AckToken a = t.track(0, 1);
  ASSERT_TRUE(t.ack(a));
  t.hold(a, "late");  // already delivered: nothing left to hold
  AckToken never;
  never.partition = 0;
  never.offset = 99;
  never.generation = gen;
  t.hold(never, "unknown");
  EXPECT_TRUE(t.held().empty());
  EXPECT_EQ(t.committable(0), 2);
}

TEST(OffsetTracker, RevokeClearsHolds) {
  OffsetTracker t;
  t.assign(0);
  t.assign(1);
  const AckToken a = t.track(0, 1);
  const AckToken b = t.track(1, 1);
  t.hold(a, "a");
  t.hold(b, "b");
  ASSERT_EQ(t.held().size(), 2u);
  t.revoke(0);
  EXPECT_EQ(holds(t), (std::vector<std::tuple<PartitionId, Offset, std::string>>{{1, 1, "b"}}));
  t.assign(0);  // coming back does not bring the old hold back
  EXPECT_EQ(t.held().size(), 1u);
  t.revoke(1);
  EXPECT_TRUE(t.held().empty());
}

TEST(OffsetTracker, CommittableNeverMovesBackwardsAsAcksArriveInRandomOrder) {
  // Tracking (with gaps in the offsets) interleaved with acks of random records in flight,
  // some repeated; committable is checked against a model after every step.
  constexpr int kRecords = 5000;
  std::mt19937 rng(20240611);
  OffsetTracker t;
  t.assign(2);
  std::vector<AckToken> in_flight;  // tracked, not acked yet (unordered)
  std::vector<AckToken> acked;
  std::vector<Offset> tracked;  // in offset order
  std::vector<bool> done;       // parallel to `tracked`
  size_t lowest_not_done = 0;   // index into `tracked`
  Offset next_offset = 1000;
  std::optional<Offset> last;

  auto model = [&]() -> std::optional<Offset> {
    if (tracked.empty()) return std::nullopt;
    while (lowest_not_done < tracked.size() && done[lowest_not_done]) ++lowest_not_done;
    return lowest_not_done < tracked.size() ? tracked[lowest_not_done] : tracked.back() + 1;
  };

  while (tracked.size() < static_cast<size_t>(kRecords) || !in_flight.empty()) {
    const int dice = static_cast<int>(rng() % 10);
    if (tracked.size() < static_cast<size_t>(kRecords) && (in_flight.empty() || dice < 4)) {
      next_offset += 1 + static_cast<Offset>(rng() % 3);
      in_flight.push_back(t.track(2, next_offset));
      tracked.push_back(next_offset);
      done.push_back(false);
    } else if (!acked.empty() && dice == 9) {
      EXPECT_FALSE(t.ack(acked[rng() % acked.size()]));
    } else {
      const size_t i = rng() % in_flight.size();
      const AckToken tok = in_flight[i];
      in_flight[i] = in_flight.back();
      in_flight.pop_back();
      ASSERT_TRUE(t.ack(tok));
      acked.push_back(tok);
      done[std::lower_bound(tracked.begin(), tracked.end(), tok.offset) - tracked.begin()] = true;
    }
    const std::optional<Offset> now = t.committable(2);
    ASSERT_EQ(now, model());
    if (last) {
      ASSERT_GE(*now, *last);
    }
    last = now;
    ASSERT_EQ(t.in_flight(2), in_flight.size());
  }
  EXPECT_EQ(t.committable(2), next_offset + 1);
  EXPECT_EQ(t.in_flight(), 0u);
}

TEST(OffsetTracker, ConcurrentTrackingAndAcknowledgingLosesNoRecord) {
  // One consumer thread tracks 0..N-1 on four partitions; two delivery threads acknowledge
  // them (one batch-wise and reversed, one record by record) while a third thread watches
  // the commit points. Run under TSan through the `concurrency` label.
  constexpr int kPartitions = 4;
  constexpr Offset kN = 20000;
  OffsetTracker t;
  for (PartitionId p = 0; p < kPartitions; ++p) t.assign(p);

  std::mutex mu;
  std::condition_variable ready;
  std::deque<AckToken> handed_over;
  bool consumer_done = false;
  std::atomic<bool> ackers_done{false};
  std::atomic<int64_t> acked{0};
  std::atomic<int64_t> refused{0};
  std::atomic<int64_t> went_backwards{0};

  std::thread consumer([&] {
    std::vector<AckToken> chunk;
    for (Offset o = 0; o < kN; ++o) {
      for (PartitionId p = 0; p < kPartitions; ++p) chunk.push_back(t.track(p, o));
      if (chunk.size() >= 64 || o + 1 == kN) {
        {
          std::lock_guard<std::mutex> lock(mu);
          handed_over.insert(handed_over.end(), chunk.begin(), chunk.end());
        }
        ready.notify_all();
        chunk.clear();
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      consumer_done = true;
    }
    ready.notify_all();
  });

  auto acker = [&](bool batch_wise) {
    std::vector<AckToken> mine;
    for (;;) {
      mine.clear();
      {
        std::unique_lock<std::mutex> lock(mu);
        ready.wait(lock, [&] { return !handed_over.empty() || consumer_done; });
        if (handed_over.empty()) return;  // consumer done, nothing left
        const size_t n = std::min<size_t>(handed_over.size(), 48);
        mine.assign(handed_over.begin(), handed_over.begin() + static_cast<ptrdiff_t>(n));
        handed_over.erase(handed_over.begin(), handed_over.begin() + static_cast<ptrdiff_t>(n));
      }
      if (batch_wise) {
        std::reverse(mine.begin(), mine.end());
        t.acknowledge(mine.data(), mine.size());
        acked += static_cast<int64_t>(mine.size());
      } else {
        for (const auto& tok : mine) (t.ack(tok) ? acked : refused) += 1;
      }
    }
  };
  std::thread acker_a(acker, true);
  std::thread acker_b(acker, false);

  std::thread watcher([&] {
    Offset last[kPartitions] = {};
    while (!ackers_done.load()) {
      for (PartitionId p = 0; p < kPartitions; ++p) {
        const Offset now = t.committable(p).value_or(0);
        if (now < last[p]) ++went_backwards;
        last[p] = now;
      }
      (void)t.in_flight();
      (void)t.held();
      std::this_thread::yield();
    }
  });

  consumer.join();
  acker_a.join();
  acker_b.join();
  ackers_done = true;
  watcher.join();

  EXPECT_EQ(acked.load(), kPartitions * kN);
  EXPECT_EQ(refused.load(), 0);
  EXPECT_EQ(went_backwards.load(), 0);
  for (PartitionId p = 0; p < kPartitions; ++p)
    EXPECT_EQ(t.committable(p), kN) << "partition " << p;
  EXPECT_EQ(t.in_flight(), 0u);
  EXPECT_TRUE(handed_over.empty());
}

}  // namespace
}  // namespace vigil::consumers

// EntityWindows: the exact per-entity history of one partition, and the velocity features of
// each transaction computed from it (see feature_spec.h for what they mean).
//
// Each entity keeps its transactions (event time in ms, amount as float32: the precision the
// model reads it in) sorted by event time, ties in log order. A transaction is inserted where its
// event time puts it, then its windows are summed over the history: exact, no buckets, no edge
// error. Out-of-order events are normal; the rule is the one the spec states: the window (t - W, t]
// over what was read so far.
//
// Bounded memory. The partition's watermark is the newest event time read. Nothing older than
// watermark - longest window - allowed lateness can be inside the window of a transaction
// that is not late: such events are dropped from an entity when it is next seen, and a sweep
// drops every entity with nothing newer (one shard at a time, each shard once per
// max(entities, 65536) transactions: amortised O(1)). A transaction older than watermark -
// allowed lateness is late: computed over what is kept and marked partial. Above
// max_entities_per_partition, the least recently active entities (by newest event time, ties
// by id) are dropped down to 90% of the cap, counted; from then on a transaction of an entity
// not in memory is marked partial while it may have been one of them (until a longest window
// after the drop). Which entities are dropped follows from the log alone, so a replay from
// the log's start gives the same features (after a restore from chunks the cap may drop
// others: what differs is marked partial).
//
// Sharded state. Entities are spread over kShards shards by a stable hash of their id (FNV-1a,
// the same in every process and version of this format). A snapshot is taken a shard at a
// time (snapshot_shard(): a small, bounded piece of work between two records), each shard's
// chunk tagged by the caller with the offset it covers. Restored from chunks taken at
// different offsets, the state is exact again once the log is replayed from the smallest of
// them, each transaction applied only to a shard whose chunk it is not in (advance() moves the
// watermark for the others): features of transactions that are not late depend only on the
// events inside their windows, never on when older ones were trimmed or swept.
//
// The same class computes features in the service (one per assigned partition, on the
// consumer thread) and in the offline replay tool: training and serving compute the same
// numbers by construction. Not thread-safe.
#pragma once

#include <algorithm>
#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "features/entity_table.h"
#include "features/feature_spec.h"

namespace vigil::features {

struct Transaction {
  std::string_view entity;
  int64_t time_ms = 0;
  double amount = 0.0;
};

class EntityWindows {
 public:
  struct Figures {
    size_t entities = 0;        // in memory now
    size_t events = 0;          // kept now, over every entity
    uint64_t observed = 0;      // transactions observed since construction
    uint64_t dropped_idle = 0;  // entities dropped: nothing inside the longest window
    uint64_t dropped_cap = 0;   // entities dropped above max_entities_per_partition
    uint64_t late = 0;          // transactions older than watermark - allowed lateness
    uint64_t partial = 0;       // transactions computed over partial history
  };

  explicit EntityWindows(FeatureSpec spec);
  EntityWindows(EntityWindows&&) noexcept = default;
  EntityWindows& operator=(EntityWindows&&) noexcept = default;
  EntityWindows(const EntityWindows&) = delete;
  EntityWindows& operator=(const EntityWindows&) = delete;
  ~EntityWindows() = default;

  const FeatureSpec& spec() const { return spec_; }
  // How many features observe() writes (spec().output_names().size()).
  size_t width() const { return width_; }

  // Adds `tx` to its entity's history and writes its width() features to `out`. Returns
  // false when they were computed over partial history (see above).
  bool observe(const Transaction& tx, double* out);

  // A hint that a transaction of `entity` is observed kPrefetchAhead observe() calls from now
  // (a caller holding a batch of records hints the one that far ahead before observing each).
  // At a million entities each observe() waits on three cache misses in a row (the table
  // slot, the entity, its newest events); hinted ahead, they are fetched while earlier
  // transactions are computed: this call prefetches the slot of `entity`, the entity of the
  // one hinted kPrefetchLag calls ago and the events of the one hinted 2 * kPrefetchLag ago.
  // Only ever a prefetch: wrong or missing hints change no result.
  void prefetch(std::string_view entity);
  static constexpr size_t kPrefetchLag = 4;
  static constexpr size_t kPrefetchAhead = 3 * kPrefetchLag;

  // The features of a transaction observed before (read again: the consumer's position moved
  // back), over the history as it is now, without adding it again: approximate (later
  // transactions are in the history), for a score marked partial.
  void features_again(const Transaction& tx, double* out) const;

  Figures figures() const;
  // The newest event time read, or INT64_MIN before the first transaction.
  int64_t watermark_ms() const { return watermark_; }

  // A transaction read but not applied (its shard's restored chunk already holds it): only
  // the watermark moves.
  void advance(int64_t time_ms) { watermark_ = std::max(watermark_, time_ms); }

  // Shards of the state; shard_of() is stable across processes and versions of the format.
  static constexpr uint32_t kShards = 1024;
  static uint32_t shard_of(std::string_view entity) { return shard_of_hash(fnv1a(entity)); }
  // Bytes of a chunk's start that hold its header (read_chunk_header() needs no more).
  static constexpr size_t kChunkHeaderBytes = 128;

  struct ChunkHeader {
    uint32_t shard = 0;
    int64_t offset = 0;  // the caller's tag: the log offset the chunk covers up to (excluded)
    int64_t watermark_ms = INT64_MIN;
    int64_t capped_until_ms = INT64_MIN;  // see capped_until_ms_
    std::string spec_hash;
  };
  // One shard's entities and the partition's watermark, in a binary form restore() reads back
  // (same machine architecture), tagged with `offset`.
  std::string snapshot_shard(uint32_t shard, int64_t offset) const;
  // The header of a chunk, from its first kChunkHeaderBytes bytes or more.
  static Result<ChunkHeader> read_chunk_header(std::string_view bytes);
  // Replaces the state with `chunks`, one per shard in any order, taken under a spec with the
  // same hash. The watermark is the smallest of theirs (the one of the earliest offset); the
  // caller replays the log from there (see above). On error the state is left as it was.
  // Counters in figures() are kept.
  Status restore(const std::vector<std::string_view>& chunks);
  // The same, a chunk at a time: a snapshot read in batches is never in memory whole beside
  // the state built from it. commit() replaces the state once every shard was added; until
  // then (and after an error) the windows are left as they were.
  class Restorer;

  // The calendar features of an event time: Saturday or Sunday, and hour < 6, in UTC.
  static bool during_weekend(int64_t time_ms);
  static bool during_night(int64_t time_ms);

 private:
  // 8 bytes: the event time as ms after the entity's base time (kept events span less than
  // the longest window plus the allowed lateness, FeatureSpec::kMaxHistorySpanMs at most), the
  // amount as float32, the precision the model reads it in (sums and means are in double).
  struct Event {
    uint32_t dt_ms;
    float amount;
  };
  static_assert(sizeof(Event) == 8, "8-byte events");
  struct Entity {
    std::vector<Event> events;  // sorted by time, ties in log order; [head, size) are kept
    int64_t base_ms = 0;        // event time = base_ms + dt_ms
    int64_t newest_ms = 0;
    uint32_t head = 0;
  };
  // The FNV-1a hash of an id, computed once per transaction: it picks the shard (shard_of)
  // and the slot in the shard's table.
  static uint64_t fnv1a(std::string_view id);
  // Entities never move in their table: a pointer stays valid until the entity is dropped.
  using Map = EntityTable<Entity>;

  static uint32_t shard_of_hash(uint64_t h) {
    return static_cast<uint32_t>((h ^ (h >> 32)) % kShards);
  }
  // Writes the features of the transaction at `time_ms` over e.events[head, hi): the amount of
  // events[hi - 1], the calendar, then count and mean per window.
  void write_features(const Entity& e, size_t hi, int64_t time_ms, double* out) const;
  // The features of a transaction at `time_ms` as if it were its entity's only one.
  void write_alone(int64_t time_ms, double amount, double* out) const;
  // Empties `e` and bases it at `time_ms`.
  static void restart(Entity& e, int64_t time_ms);
  // Makes `time_ms` storable in `e` (base_ms <= time_ms < base_ms + 2^32) by moving the base,
  // after dropping what is at or before `horizon` if need be; false when it still is not (the
  // time is itself at or before the horizon: it would be dropped at once).
  bool make_room(Entity& e, int64_t time_ms, int64_t horizon);
  // Drops the kept events at or before `horizon`.
  void trim(Entity& e, int64_t horizon);
  // Drops every entity of `shard` with nothing newer than `horizon`.
  void sweep(Map& shard, int64_t horizon);
  // Drops the least recently active entities down to 90% of the cap.
  void drop_above_cap();

  FeatureSpec spec_;
  size_t width_ = 0;
  int64_t lateness_ms_ = 0;
  int64_t longest_ms_ = 0;
  std::string spec_hash_;  // spec_.hash(), computed once
  std::vector<int64_t> windows_ms_;
  std::vector<Map> shards_;    // kShards
  size_t entity_count_ = 0;    // over every shard
  uint64_t since_sweep_ = 0;   // transactions observed since the last shard sweep
  uint32_t sweep_cursor_ = 0;  // the shard swept next
  int64_t watermark_ = INT64_MIN;
  // New entities before this event time may be ones the cap dropped: partial.
  int64_t capped_until_ms_ = INT64_MIN;
  size_t events_ = 0;
  Figures counters_;
  // The hashes of the last 2 * kPrefetchLag hinted ids (0: none), oldest at prefetch_pos_.
  std::array<uint64_t, 2 * kPrefetchLag> prefetch_ring_{};
  size_t prefetch_pos_ = 0;

 public:
  class Restorer {
   public:
    explicit Restorer(EntityWindows& into);
    Status add(std::string_view chunk);
    Status commit();

   private:
    EntityWindows& into_;
    std::vector<Map> shards_;
    std::vector<bool> seen_;
    size_t added_ = 0;
    int64_t watermark_ = INT64_MAX;
    int64_t capped_until_ = INT64_MIN;
    size_t events_ = 0;
    size_t entities_ = 0;
  };
};

}  // namespace vigil::features

// OffsetTracker: which offsets may be committed, per partition, under at-least-once.
//
// The consumer thread records every offset it takes from a partition (track), in order;
// sink delivery reports mark them done (ack), from any thread and in any order. The
// committable offset of a partition is the lowest offset not yet done (or one past the
// highest tracked when all are done) — the position below which every record has been
// delivered, which is what Kafka expects as the committed offset.
//
//   tracked: 40 41 42 43 44        done: 40 41 43        committable: 42
//
// Each partition has a generation, bumped when it is assigned again; acks carry the
// generation they were tracked under, so an ack for a record of a partition that was revoked
// (and maybe re-assigned) meanwhile is ignored rather than advancing someone else's offset.
// Thread-safe (one mutex; all operations are O(log n) in the records in flight).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

namespace vigil::consumers {

using PartitionId = int32_t;
using Offset = int64_t;

struct AckToken {
  PartitionId partition = -1;
  Offset offset = -1;
  uint64_t generation = 0;
};

class OffsetTracker {
 public:
  // Starts (or restarts) tracking a partition; returns its new generation.
  uint64_t assign(PartitionId p);
  // Stops tracking; later acks for it are ignored.
  void revoke(PartitionId p);
  // Records that `offset` was taken from `p` (offsets must increase per partition).
  AckToken track(PartitionId p, Offset offset);
  // Marks the record done. Returns false when the token is stale (partition revoked).
  bool ack(const AckToken& token);

  // The offset to commit for `p` (next offset to consume), or nullopt when nothing was
  // tracked since assignment.
  std::optional<Offset> committable(PartitionId p) const;
  // Records tracked but not yet done, for `p` or all partitions.
  size_t in_flight(PartitionId p) const;
  size_t in_flight() const;
  std::vector<PartitionId> partitions() const;

 private:
  struct Entry {
    Offset offset;
    bool done;
  };
  struct PartitionState {
    uint64_t generation = 0;
    std::deque<Entry> pending;   // increasing offsets, not yet committed past
    std::optional<Offset> next;  // committable once `pending` is drained
    size_t not_done = 0;
  };
  mutable std::mutex mu_;
  std::map<PartitionId, PartitionState> partitions_;
  uint64_t next_generation_ = 1;
};

}  // namespace vigil::consumers

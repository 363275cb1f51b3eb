// OffsetTracker: which offsets may be committed, per partition, under at-least-once.
//
// The consumer thread records every offset it takes from a partition (track), in order; the
// delivery stage reports final outcomes (acknowledge), from any thread and in any order. The
// committable offset of a partition is the lowest offset without an outcome (or one past the
// highest tracked when all have one): the position below which every record was delivered,
// which is what Kafka expects as the committed offset.
//
//   tracked: 40 41 42 43 44        done: 40 41 43        committable: 42
//
// A record the delivery stage holds (no outcome possible for now) simply stays not done, so
// the committable offset cannot pass it; held() lists such partitions so the consumer pauses
// them and readiness names them, until the record is acknowledged.
//
// Each partition has a generation, bumped when it is assigned again; acks carry the
// generation they were tracked under, so an ack for a record of a partition that was revoked
// (and maybe re-assigned) meanwhile is ignored rather than advancing someone else's offset.
// Thread-safe (one mutex; acknowledge() takes it once per batch; O(log n) per record).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "delivery/acknowledger.h"

namespace vigil::consumers {

using PartitionId = int32_t;
using Offset = int64_t;
// What track() hands out and acknowledge() takes back: partition, offset, generation.
using AckToken = scoring::RecordPosition;

class OffsetTracker final : public delivery::Acknowledger {
 public:
  struct Hold {
    PartitionId partition;
    Offset offset;    // the lowest held offset of the partition
    std::string why;  // why it has no outcome
  };

  // Starts (or restarts) tracking a partition; returns its new generation.
  uint64_t assign(PartitionId p);
  // Stops tracking; later acks for it are ignored.
  void revoke(PartitionId p);
  // Records that `offset` was taken from `p` (offsets must increase per partition). The
  // returned token's generation is 0 when the record was not tracked (see below).
  AckToken track(PartitionId p, Offset offset);
  // The same for each token's (partition, offset), under one lock; fills in the generations.
  // A record of a partition that is not assigned (revoked while the record was on its way:
  // a rebalance served inside the consume call that returned it) is not tracked: its
  // generation is set to 0 and the caller must drop it (the partition's owner consumes it).
  // A record at or below the last tracked offset means the consumer's position moved back (an
  // offset reset after a truncated or recreated log): the partition starts over from it under
  // a new generation (acks of the records before are ignored; they are consumed again), and
  // `*regressions` (if given) counts it. Returns how many were tracked.
  size_t track(AckToken* tokens, size_t n, size_t* regressions = nullptr);
  // Marks one record done. Returns false when the token is stale (partition revoked) or the
  // record was done already.
  bool ack(const AckToken& token);

  // delivery::Acknowledger
  void acknowledge(const scoring::RecordPosition* records, size_t n) override;
  void hold(const scoring::RecordPosition& record, const std::string& why) override;
  bool owns(const scoring::RecordPosition& record) const override;

  // The offset to commit for `p` (next offset to consume), or nullopt when nothing was
  // tracked since assignment.
  std::optional<Offset> committable(PartitionId p) const;
  // Records tracked but not yet done, for `p` or all partitions.
  size_t in_flight(PartitionId p) const;
  size_t in_flight() const;
  std::vector<PartitionId> partitions() const;
  // Partitions with a held record, lowest partition first.
  std::vector<Hold> held() const;

 private:
  struct Entry {
    Offset offset;
    bool done;
  };
  // The records of a partition without an outcome yet, oldest first, in one reused buffer (a
  // ring that doubles when full): tracking and acknowledging allocate nothing in steady
  // state, where a std::deque allocates a node every 32 records.
  class EntryRing {
   public:
    bool empty() const { return size_ == 0; }
    size_t size() const { return size_; }
    Entry& operator[](size_t i) { return buf_[(head_ + i) & (buf_.size() - 1)]; }
    const Entry& operator[](size_t i) const { return buf_[(head_ + i) & (buf_.size() - 1)]; }
    Entry& front() { return (*this)[0]; }
    const Entry& front() const { return (*this)[0]; }
    const Entry& back() const { return (*this)[size_ - 1]; }
    void push_back(const Entry& e);
    void pop_front();
    // Position of the first entry whose offset is >= `o` (size() when none).
    size_t lower_bound(Offset o) const;

   private:
    std::vector<Entry> buf_;  // capacity a power of two
    size_t head_ = 0;
    size_t size_ = 0;
  };
  struct PartitionState {
    uint64_t generation = 0;
    EntryRing pending;           // increasing offsets, not yet committed past
    std::optional<Offset> next;  // committable once `pending` is drained
    size_t not_done = 0;
    std::map<Offset, std::string> held;  // held records and why
  };
  bool ack_locked(const AckToken& t);
  // false: not assigned (generation 0). `regressed` is set when the partition started over.
  bool track_locked(AckToken& t, bool& regressed);

  mutable std::mutex mu_;
  std::map<PartitionId, PartitionState> partitions_;
  uint64_t next_generation_ = 1;
};

}  // namespace vigil::consumers

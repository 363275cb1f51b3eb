// SnapshotStore: where feature-state snapshots go and come back from (the Redis one is
// sinks/redis_snapshot_store.h). A partition's snapshot is one chunk per shard of its
// EntityWindows, each kept in two slots written alternately, so that the older of the two is
// still there while the newer one is being replaced (and covers offsets the group committed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace vigil::features {

struct ChunkSlot {
  uint32_t shard = 0;
  uint32_t slot = 0;
};

class SnapshotStore {
 public:
  static constexpr uint32_t kSlots = 2;

  virtual ~SnapshotStore() = default;

  // Whether save() would take a chunk now (the writes waiting are under the store's limit).
  virtual bool has_room() const = 0;
  // Queues a chunk to be written by the store's own thread; never blocks. False when the
  // writes already waiting reach the store's limit of bytes (the slot keeps what it had).
  virtual bool save(int32_t partition, ChunkSlot where, std::string chunk) = 0;

  // The first `bytes` of each slot of each of `shards` shards of `partition`, at
  // [shard * kSlots + slot]; empty where there is none. Blocking (the caller's thread); the
  // reads of several partitions may run at once, from several threads (StreamFeatures::assign).
  virtual Result<std::vector<std::string>> read_heads(int32_t partition, uint32_t shards,
                                                      size_t bytes) = 0;
  // The whole chunks at `which`, in that order; empty where there is none. Blocking.
  virtual Result<std::vector<std::string>> read(int32_t partition,
                                                const std::vector<ChunkSlot>& which) = 0;
};

}  // namespace vigil::features

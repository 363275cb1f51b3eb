// The feature-state snapshots in Redis (features/snapshot_store.h):
//
//   SET <prefix><group>:<topic>:<partition>:<shard>:<slot> <chunk> EX <ttl_s>
//
// save() only queues (bounded by bytes); one writer thread of the store's own sends the
// chunks in order, in pipelined rounds, and never retries one: a chunk not written leaves its
// slot with the older chunk it had, which is still a valid (older) snapshot. On stop() what
// is queued is still written, for at most 4 command timeouts. Reads
// (assignment time, the consumer thread) open a connection of their own and pipeline their
// GETRANGE / GET commands.
//
// Threads: save() and stats from any thread; read_heads() and read() from any one thread at
// a time each (each call has its own connection); stop() from the owner.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/rate_limit.h"
#include "features/snapshot_store.h"
#include "sinks/redis_config.h"

namespace vigil::sinks {

class RedisSnapshotStore final : public features::SnapshotStore {
 public:
  struct Options {
    RedisAddress address;
    std::chrono::milliseconds command_timeout{500};
    std::chrono::milliseconds reconnect_backoff_max{5000};
    std::string key_prefix;  // <features.snapshot.key_prefix><group>:<topic>:
    int ttl_s = 7 * 86400;
    size_t max_pending_bytes = 64u << 20;
  };

  RedisSnapshotStore(Options options, metrics::Registry& registry);
  ~RedisSnapshotStore() override;
  RedisSnapshotStore(const RedisSnapshotStore&) = delete;
  RedisSnapshotStore& operator=(const RedisSnapshotStore&) = delete;

  bool has_room() const override;
  bool save(int32_t partition, features::ChunkSlot where, std::string chunk) override;
  Result<std::vector<std::string>> read_heads(int32_t partition, uint32_t shards,
                                              size_t bytes) override;
  Result<std::vector<std::string>> read(int32_t partition,
                                        const std::vector<features::ChunkSlot>& which) override;

  std::string key(int32_t partition, features::ChunkSlot where) const;
  // Waits until every queued chunk was written or failed (tests).
  void flush();
  // Writes what is queued (for at most 4 command timeouts) and joins the writer; save()
  // refuses from then on. Idempotent; the destructor calls it.
  void stop();

 private:
  struct Job {
    std::string key;
    std::string chunk;
  };
  void run();
  // GET (range_bytes == 0) or GETRANGE 0 range_bytes-1 of every key, pipelined on a new
  // connection: each reply's bytes, empty for a missing key.
  Result<std::vector<std::string>> pipeline(const std::vector<std::string>& keys,
                                            size_t range_bytes);

  const Options options_;
  metrics::Counter& written_;
  metrics::Counter& failed_;
  metrics::Counter& bytes_written_;
  metrics::Gauge& pending_bytes_gauge_;
  RateLimit failure_log_{std::chrono::seconds(10)};

  mutable std::mutex mutex_;
  std::condition_variable cv_;       // a job, or stop
  std::condition_variable idle_cv_;  // the queue drained
  std::deque<Job> jobs_;             // guarded by mutex_
  size_t pending_bytes_ = 0;         // guarded by mutex_
  bool busy_ = false;                // guarded by mutex_: a job is being written
  bool stopping_ = false;            // guarded by mutex_
  std::chrono::steady_clock::time_point drain_deadline_;  // guarded by mutex_: once stopping
  std::thread writer_;                                    // last: started once the rest is built
};

}  // namespace vigil::sinks

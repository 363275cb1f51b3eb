#include "sinks/redis_snapshot_store.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "common/log.h"
#include "common/thread_name.h"
#include "sinks/redis_connection.h"

namespace vigil::sinks {

RedisSnapshotStore::RedisSnapshotStore(Options options, metrics::Registry& registry)
    : options_(std::move(options)),
      written_(registry.counter("vigil_features_snapshot_chunks_total",
                                "Feature-state snapshot chunks sent to Redis, by outcome",
                                {{"outcome", "written"}})),
      failed_(registry.counter("vigil_features_snapshot_chunks_total",
                               "Feature-state snapshot chunks sent to Redis, by outcome",
                               {{"outcome", "failed"}})),
      bytes_written_(registry.counter("vigil_features_snapshot_bytes_total",
                                      "Bytes of feature-state snapshot chunks written to Redis")),
      pending_bytes_gauge_(registry.gauge("vigil_features_snapshot_pending_bytes",
                                          "Bytes of snapshot chunks waiting for Redis")),
      writer_([this] { run(); }) {}

RedisSnapshotStore::~RedisSnapshotStore() {
  stop();
}

void RedisSnapshotStore::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    // What is queued is still written, for a bounded time: the next owner of the partitions
    // then finds the newest chunks.
    drain_deadline_ = std::chrono::steady_clock::now() + options_.command_timeout * 4;
  }
  cv_.notify_all();
  writer_.join();
  logger("redis")->info("feature snapshots stopped: {} chunk(s) written, {} not written",
                        written_.value(), failed_.value());
}

std::string RedisSnapshotStore::key(int32_t partition, features::ChunkSlot where) const {
  return options_.key_prefix + std::to_string(partition) + ":" + std::to_string(where.shard) + ":" +
         std::to_string(where.slot);
}

bool RedisSnapshotStore::has_room() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !stopping_ && pending_bytes_ < options_.max_pending_bytes;
}

bool RedisSnapshotStore::save(int32_t partition, features::ChunkSlot where, std::string chunk) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // The limit is checked before the chunk: at most one chunk beyond it waits.
    if (stopping_ || pending_bytes_ >= options_.max_pending_bytes) return false;
    pending_bytes_ += chunk.size();
    pending_bytes_gauge_.set(static_cast<double>(pending_bytes_));
    jobs_.push_back(Job{key(partition, where), std::move(chunk)});
  }
  cv_.notify_one();
  return true;
}

void RedisSnapshotStore::flush() {
  std::unique_lock<std::mutex> lock(mutex_);
  idle_cv_.wait(lock, [&] { return (jobs_.empty() && !busy_) || stopping_; });
}

void RedisSnapshotStore::run() {
  name_this_thread("vigil-snapshot");
  redisContext* c = nullptr;
  auto backoff = std::chrono::milliseconds(50);
  // Chunks go in pipelined rounds of at most this many commands and bytes.
  constexpr size_t kRoundJobs = 64;
  constexpr size_t kRoundBytes = 8u << 20;
  std::vector<Job> round;
  for (;;) {
    round.clear();
    {
      std::unique_lock<std::mutex> lock(mutex_);
      busy_ = false;
      idle_cv_.notify_all();
      cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      const bool give_up = stopping_ && (c == nullptr || jobs_.empty() ||
                                         std::chrono::steady_clock::now() >= drain_deadline_);
      if (give_up) {
        failed_.inc(jobs_.size());  // not written: their slots keep their older chunks
        jobs_.clear();
        pending_bytes_ = 0;
        pending_bytes_gauge_.set(0);
        break;
      }
      size_t bytes = 0;
      while (!jobs_.empty() && round.size() < kRoundJobs && bytes < kRoundBytes) {
        bytes += jobs_.front().chunk.size();
        round.push_back(std::move(jobs_.front()));
        jobs_.pop_front();
      }
      busy_ = true;
    }
    std::string why;
    size_t written = 0;
    if (c == nullptr) c = open_connection(options_.address, options_.command_timeout, why);
    if (c != nullptr) {
      for (const Job& job : round) {
        if (redisAppendCommand(c, "SET %b %b EX %d", job.key.data(), job.key.size(),
                               job.chunk.data(), job.chunk.size(), options_.ttl_s) != REDIS_OK) {
          why = c->errstr;
          break;
        }
      }
      for (size_t i = 0; i < round.size() && why.empty(); ++i) {
        if (next_reply(c, why) != nullptr && why.empty()) {
          ++written;
          bytes_written_.inc(round[i].chunk.size());
        }
      }
      if (!why.empty()) {  // a new connection for the next round: replies may be out of step
        redisFree(c);
        c = nullptr;
      }
    }
    size_t bytes = 0;
    for (const Job& job : round) bytes += job.chunk.size();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      pending_bytes_ -= bytes;
      pending_bytes_gauge_.set(static_cast<double>(pending_bytes_));
    }
    written_.inc(written);
    if (written == round.size()) {
      backoff = std::chrono::milliseconds(50);
      continue;
    }
    failed_.inc(round.size() - written);
    uint64_t suppressed = 0;
    if (failure_log_.allow(suppressed)) {
      logger("redis")->warn(
          "{} feature snapshot chunk(s) not written ({}); their slots keep their older chunks "
          "({} more failure(s) not logged)",
          round.size() - written, why, suppressed);
    }
    if (c == nullptr) {  // Redis unreachable: wait before the next try, but stop promptly
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait_for(lock, backoff, [&] { return stopping_; });
      backoff = std::min(backoff * 2, options_.reconnect_backoff_max);
    }
  }
  if (c != nullptr) redisFree(c);
  std::lock_guard<std::mutex> lock(mutex_);
  busy_ = false;
  idle_cv_.notify_all();
}

Result<std::vector<std::string>> RedisSnapshotStore::pipeline(const std::vector<std::string>& keys,
                                                              size_t range_bytes) {
  std::string why;
  redisContext* c = open_connection(options_.address, options_.command_timeout, why);
  if (c == nullptr) return Result<std::vector<std::string>>::Error("Redis: " + why);
  std::vector<std::string> out;
  out.reserve(keys.size());
  const std::string last = std::to_string(range_bytes == 0 ? 0 : range_bytes - 1);
  // In rounds, so that neither side's buffers hold every chunk at once.
  constexpr size_t kRound = 64;
  for (size_t first = 0; first < keys.size() && why.empty(); first += kRound) {
    const size_t end = std::min(keys.size(), first + kRound);
    for (size_t i = first; i < end; ++i) {
      const std::string& k = keys[i];
      const int rc = range_bytes == 0 ? redisAppendCommand(c, "GET %b", k.data(), k.size())
                                      : redisAppendCommand(c, "GETRANGE %b 0 %s", k.data(),
                                                           k.size(), last.c_str());
      if (rc != REDIS_OK) why = c->errstr;
    }
    for (size_t i = first; i < end && why.empty(); ++i) {
      const auto reply = next_reply(c, why);
      if (!why.empty()) break;
      if (reply->type == REDIS_REPLY_STRING) {
        out.emplace_back(reply->str, reply->len);
      } else if (reply->type == REDIS_REPLY_NIL) {
        out.emplace_back();
      } else {
        why = "unexpected reply type " + std::to_string(reply->type);
      }
    }
  }
  redisFree(c);
  if (!why.empty()) return Result<std::vector<std::string>>::Error("Redis: " + why);
  return out;
}

Result<std::vector<std::string>> RedisSnapshotStore::read_heads(int32_t partition, uint32_t shards,
                                                                size_t bytes) {
  std::vector<std::string> keys;
  keys.reserve(static_cast<size_t>(shards) * kSlots);
  for (uint32_t s = 0; s < shards; ++s) {
    for (uint32_t slot = 0; slot < kSlots; ++slot) keys.push_back(key(partition, {s, slot}));
  }
  return pipeline(keys, std::max<size_t>(bytes, 1));
}

Result<std::vector<std::string>> RedisSnapshotStore::read(
    int32_t partition, const std::vector<features::ChunkSlot>& which) {
  std::vector<std::string> keys;
  keys.reserve(which.size());
  for (const auto& w : which) keys.push_back(key(partition, w));
  return pipeline(keys, 0);
}

}  // namespace vigil::sinks

// Score lookups: the record vigil cached in Redis for a transaction (GET <key_prefix><id>),
// for the HTTP side-port's GET /v1/scores/{id}.
//
//   io thread ──get(id, done)──► bounded queue (overflow: answered kBusy at once)
//                                   │  thread "vigil-lookup": one connection, one GET each
//                                   ▼
//                                done(result) on the lookup thread
//
// The io threads never wait on Redis. While Redis is unreachable, lookups are answered
// kUnavailable at once (no connect attempt per request); the thread reconnects with backoff.
// Counted by result in vigil_score_lookups_total.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"
#include "sinks/redis_config.h"

namespace vigil::sinks {

struct LookupResult {
  enum class Kind { kFound, kMissing, kUnavailable, kBusy };
  Kind kind = Kind::kMissing;
  std::string value;  // kFound: the stored score record (JSON)
  std::string why;    // kUnavailable / kBusy: the cause
};

class ScoreLookup {
 public:
  using Done = std::function<void(const LookupResult&)>;

  static Result<std::unique_ptr<ScoreLookup>> Create(const RedisConfig& config,
                                                     metrics::Registry& registry,
                                                     size_t queue_capacity = 1024);
  ~ScoreLookup();  // stops
  ScoreLookup(const ScoreLookup&) = delete;
  ScoreLookup& operator=(const ScoreLookup&) = delete;

  void start();
  // Answers what is queued kUnavailable ("shutting down") and joins. Idempotent.
  void stop();

  // Thread-safe; `done` runs on the lookup thread, or on the caller's when the queue is full.
  void get(std::string transaction_id, Done done);

 private:
  struct Stats {
    explicit Stats(metrics::Registry& r);
    metrics::Counter& hit;
    metrics::Counter& miss;
    metrics::Counter& unavailable;
    metrics::Counter& busy;
    void count(LookupResult::Kind kind);
  };
  ScoreLookup(const RedisConfig& config, RedisAddress address, metrics::Registry& registry,
              size_t queue_capacity);
  void main();
  LookupResult lookup(const std::string& id);

  const RedisConfig config_;
  const RedisAddress address_;
  const size_t capacity_;
  Stats stats_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, Done>> queue_;  // guarded by mu_
  bool stop_ = false;                               // guarded by mu_
  std::thread thread_;
  // Lookup thread only.
  redisContext* redis_ = nullptr;
  std::chrono::steady_clock::time_point next_connect_{};
  std::chrono::milliseconds backoff_{50};
  std::string last_error_;
};

}  // namespace vigil::sinks

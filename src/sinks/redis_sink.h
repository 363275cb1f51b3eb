// The Redis score cache: every published score becomes
//
//   SET <key_prefix><transaction_id> <score JSON> EX <ttl_s>
//
// publish() writes the command in RESP straight into a queued chunk of at most
// `pipeline_max` commands (the JSON bytes are the ones the delivery stage already encoded for
// Kafka: nothing is formatted twice, and chunk buffers are reused, so steady state allocates
// nothing). One dedicated thread sends each chunk as one round on the socket and reads its
// replies after sending the next one, so Redis works on round k+1 while the replies of round
// k are parsed (writing and reading overlap). Redis is a cache, not the record of truth: the Kafka
// path must never wait for it, so publish() only queues (bounded) and the writer thread never
// retries a write. What happens to each record is counted, and every accepted record ends as
// exactly one of:
//
//   written               Redis answered its SET with OK.
//   failed                It was sent in a round but not confirmed: Redis answered with an
//                         error, or the connection broke or timed out before its reply came
//                         (so Redis may or may not hold it). The whole unconfirmed tail of a
//                         broken round is counted here; it is not re-sent.
//   skipped{queue_full}   publish() found `queue_capacity` records waiting and returned false.
//   skipped{unavailable}  It was taken off the queue while there was no connection, or it was
//                         published after stop() began, or it was still queued when stop()'s
//                         grace ran out.
//
// Connection (writer thread only):
//
//   connecting ──ok──► connected ──a round's reply or the idle PING fails──► disconnected
//       ▲                                                                          │
//       └──── after backoff: 50 ms, doubling up to reconnect_backoff_max ◄─────────┘
//             (reset once a reply succeeds on the new connection)
//
// While disconnected the writer drops what is queued every few milliseconds (counting it as
// skipped{unavailable}) so that stale scores do not pile up and flush() does not stall; a
// record still queued when a reconnect succeeds (one published since the last drop) and every
// record published after it is written. Command timeouts (SO_RCVTIMEO/SO_SNDTIMEO) are set on
// every new hiredis context: hiredis 0.14 applies the connect timeout to connect() only.
//
// Threads: publish(), flush(), connected(), queue_depth() and stats() may be called from any
// thread. start() and stop() belong to the owner. Only the writer thread touches the hiredis
// context.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "sinks/redis_config.h"

namespace spdlog {
class logger;
}

namespace vigil::sinks {

// Metrics of the Redis sink, with the verbs the sink calls. Counters are atomics: any thread.
class RedisSinkStats {
 public:
  explicit RedisSinkStats(metrics::Registry& registry);

  void records_written(uint64_t n);
  void records_failed(uint64_t n);
  void record_rejected_queue_full();
  void records_skipped_unavailable(uint64_t n);
  void round_completed(std::chrono::steady_clock::duration elapsed);
  void queue_depth_changed(size_t depth);
  void connection_changed(bool up);

  uint64_t written() const { return written_.value(); }
  uint64_t failed() const { return failed_.value(); }
  uint64_t skipped_queue_full() const { return skipped_queue_full_.value(); }
  uint64_t skipped_unavailable() const { return skipped_unavailable_.value(); }
  // Records with a final outcome: the four above together.
  uint64_t settled() const {
    return written() + failed() + skipped_queue_full() + skipped_unavailable();
  }
  uint64_t rounds() const { return pipeline_seconds_.count(); }

 private:
  metrics::Counter& written_;
  metrics::Counter& failed_;
  metrics::Counter& skipped_queue_full_;
  metrics::Counter& skipped_unavailable_;
  metrics::Histogram& pipeline_seconds_;
  metrics::Gauge& queue_depth_;
  metrics::Gauge& connected_;
};

// One score ready to cache: both views must stay valid for the publish() call only.
struct EncodedScore {
  std::string_view transaction_id;
  std::string_view json;
  bool if_absent = false;  // SET ... NX: never replaces a record that exists
};

class RedisSink final {
 public:
  // Fails when config.url does not parse. Does not connect: start() does, on the writer thread.
  static Result<std::unique_ptr<RedisSink>> Create(const RedisConfig& config,
                                                   metrics::Registry& registry);
  ~RedisSink();  // stop()
  RedisSink(const RedisSink&) = delete;
  RedisSink& operator=(const RedisSink&) = delete;

  // Starts the writer thread, which connects and then drains the queue. Records published
  // before start() wait in the queue. Idempotent; a stopped sink does not start again.
  void start();

  // Two-phase shutdown: stops intake (publish() then returns false), waits up to `grace` for
  // what is queued to be written (flush), then stops the writer, joins it and counts what is
  // left as skipped{unavailable}. Idempotent; blocks until joined, which may take up to one
  // command_timeout past `grace` when a round is in flight.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));

  // Queues `n` encoded scores as SET commands under one short lock; returns how many were
  // accepted (the rest is counted as skipped{queue_full}, or skipped{unavailable} once
  // stopping). No allocation in steady state.
  size_t publish(const EncodedScore* scores, size_t n);

  // Waits until every record accepted before the call has its final outcome (written,
  // failed or skipped: while Redis is down, flush() returns once the records were dropped).
  // Returns whether that happened within `timeout`; without a running writer it cannot.
  bool flush(std::chrono::milliseconds timeout);

  // Whether the writer holds a working connection (readiness reports "redis degraded" when
  // not). False before the first connect succeeds.
  bool connected() const { return connected_.load(std::memory_order_acquire); }
  size_t queue_depth() const;
  const RedisSinkStats& stats() const { return stats_; }

 private:
  struct Writer;  // writer-thread-only state (hiredis context, backoff, log limiters)
  struct Chunk {  // up to pipeline_max SET commands in RESP, sent as one round
    std::string resp;
    size_t records = 0;
  };

  RedisSink(const RedisConfig& config, RedisAddress address, metrics::Registry& registry);
  void writer_main();
  // Writer thread: one connection attempt; true when connected.
  bool connect(Writer& w);
  // Writer thread: closes the connection and schedules the next attempt after the backoff.
  void lose_connection(Writer& w, const std::string& why, size_t unconfirmed);
  void ping(Writer& w);
  // Sends `round` on the socket; false (connection lost, its records counted) on failure.
  bool send_round(Writer& w, const Chunk& round);
  // Reads replies of the oldest round in flight (without `block`, only those already
  // arrived); when it has all of them, counts its outcomes and returns true.
  bool finish_round(Writer& w, bool block);
  // Waits for replies, for more to send, or for the oldest round's reply deadline.
  void await_replies(Writer& w);
  void note_queue_full(size_t n);
  // Takes the oldest queued chunk into `round` (whose buffer goes back to the spares).
  // Requires mutex_.
  bool take_round(Chunk& round);
  // Drops everything queued as skipped{unavailable}. Writer thread.
  void drop_queued();
  // Marks `n` taken records as settled (for flush()); their outcomes must be counted first.
  void mark_settled(size_t n);

  const RedisConfig config_;
  const RedisAddress address_;
  std::shared_ptr<spdlog::logger> log_;
  RedisSinkStats stats_;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;     // the writer waits for records or stop
  std::condition_variable settled_cv_;  // flush() waits for settled_
  std::deque<Chunk> queue_;             // guarded by mutex_
  std::vector<Chunk> spare_;            // guarded by mutex_; emptied chunks kept for reuse
  size_t queued_records_ = 0;           // guarded by mutex_; records in queue_
  std::string ttl_tail_;                // "$2\r\nEX\r\n$<n>\r\n<ttl_s>\r\n"
  bool accepting_ = true;               // guarded by mutex_; false once stop() began
  bool writer_waiting_ = false;         // guarded by mutex_; publish() must wake the writer
  bool writer_polling_ = false;         // guarded by mutex_; ... through wake_fd_
  bool stop_writer_ = false;            // guarded by mutex_
  uint64_t accepted_ = 0;               // guarded by mutex_; records ever queued
  uint64_t settled_ = 0;                // guarded by mutex_; of those, records with an outcome

  std::atomic<bool> connected_{false};
  std::atomic<int64_t> next_queue_full_log_ns_{0};
  std::atomic<uint64_t> queue_full_since_log_{0};

  std::mutex lifecycle_mutex_;  // serialises start() and stop()
  bool started_ = false;
  bool stopped_ = false;
  std::unique_ptr<Writer> writer_state_;
  int wake_fd_ = -1;  // eventfd: wakes the writer from poll() on the socket
  std::thread writer_;
};

}  // namespace vigil::sinks

// The terminal-risk state shared in Redis (features/terminal_state.h; docs/terminal-risk.md).
// Keys, each with an expiry of ttl_s:
//
//   <prefix>tx:<day>          hash  terminal -> transactions of that UTC day
//   <prefix>fraud:<day>       hash  <terminal>:<report day> -> transactions of that day first
//                                   reported as fraud on the report day
//   <prefix>rep:<tx id>       "<report day>|<tx day>|<terminal>": what a reported transaction
//                             is counted under (its first report's day and terminal)
//   <prefix>wm:<partition>    the first offset of the transactions partition not counted yet
//   <prefix>gen               hash  day -> generation (new with each write of the day's
//                                   transactions: "<sequence>@<Redis TIME>"), "#" -> sequence
//
// Writes. count() only queues: per partition, the records' (terminal, day) pairs, one small
// index per record. The writer thread sends, every flush interval (1 s: the counts matter to
// windows that end days later), scripts of at most increments_per_write (day, terminal)
// increments each until none is waiting: a script holds Redis whole while it runs, and its
// increments are its cost, so it takes the first records of each partition's range, as many as
// add no more. A script's increments are aggregated per (day, terminal) over its records,
// applied, and each partition's watermark moved past its range, atomically, only when every
// range starts at or after its watermark. A range that starts before (a retry, or records
// read again by the next owner of the partition) is refused whole; the writer drops its
// records before the watermark and sends the rest again. So a record counts once, and Redis
// does one increment per terminal and day per script, not one per transaction. A failed
// write stays queued and is retried; while the queue holds max_backlog records the consumer
// pauses (StreamFeatures::shared_backlogged). Nothing queued is lost on a crash either: the
// watermark did not move, and the next owner counts from it.
//
// Reads. The refresher thread reads, every refresh interval, the day hashes the windows of
// transactions up to two days after the newest one seen reach (HGETALL, pipelined) into a
// fresh TerminalCopy, and swaps it in. Every write of a day's transactions changes the
// day's generation (<prefix>gen, field <day>): a refresh reads the generations first and then
// only the transaction hashes of the days whose generation changed (the newest, as a rule;
// the others are kept from earlier reads), and the frauds of every day.
//
// Reports go through a script too (report()): a transaction is counted on the earliest day
// it was reported, and a repeat changes nothing.
//
// Standalone Redis only (the scripts touch keys they are not given: not for Redis Cluster).
// Threads: count(), backlog(), saw_day(), copy() from any thread; counted_until() and
// report() from one thread at a time each (each has its own connection); stop() from the
// owner.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "common/rate_limit.h"
#include "features/terminal_state.h"
#include "sinks/redis_config.h"

struct redisContext;

namespace vigil::sinks {

class RedisTerminalState final : public features::TerminalState {
 public:
  struct Options {
    RedisAddress address;
    std::chrono::milliseconds command_timeout{500};
    std::chrono::milliseconds reconnect_backoff_max{5000};
    std::string key_prefix = "vigil:term:";  // <features.shared.key_prefix><group>:<topic>:
    int ttl_s = 40 * 86400;                  // at least the windows' reach plus two days
    std::chrono::milliseconds refresh_interval{1000};
    std::chrono::milliseconds flush_interval{1000};
    size_t max_backlog = 1'000'000;        // records queued to count
    size_t increments_per_write = 16'384;  // the most (day, terminal) increments of a script
    features::TerminalWindows windows;
  };

  RedisTerminalState(Options options, metrics::Registry& registry);
  ~RedisTerminalState() override;
  RedisTerminalState(const RedisTerminalState&) = delete;
  RedisTerminalState& operator=(const RedisTerminalState&) = delete;

  Result<std::vector<int64_t>> counted_until(const std::vector<int32_t>& partitions) override;
  void count(int32_t partition, int64_t from,
             std::vector<features::TerminalCount> records) override;
  size_t backlog() const override;
  size_t max_backlog() const override { return options_.max_backlog; }
  Result<size_t> report(const std::vector<features::TerminalReport>& reports) override;
  void saw_day(int64_t day) override;
  std::shared_ptr<const features::TerminalCopy> copy() const override;
  uint64_t copy_version() const override { return version_.load(std::memory_order_acquire); }
  bool refresh(int64_t day) override {
    saw_day(day);
    return refresh_now();
  }

  // Waits until nothing is queued (written, or stopping) (tests).
  void flush();
  // Reads a fresh copy now, on the caller's thread; false when Redis did not answer (tests).
  bool refresh_now();
  // Writes what is queued (for at most 4 command timeouts) and joins both threads.
  // Idempotent; the destructor calls it.
  void stop();

 private:
  // Records handed to count(), waiting for the writer.
  struct Batch {
    int32_t partition = 0;
    int64_t from = 0;
    std::vector<features::TerminalCount> records;
  };
  // The writer's records of one partition not written yet: from `from`, one entry per record,
  // 0 for none or 1 + the index of its (day, terminal) in pairs_.
  struct Range {
    int64_t from = 0;
    std::vector<uint32_t> records;
    int64_t end() const { return from + static_cast<int64_t>(records.size()); }
  };
  void run_writer();
  void run_refresher();
  // Adds a batch to the writer's ranges (writer thread).
  void fold(Batch& batch);
  // One script for every range (see above); false when Redis did not answer. Written ranges
  // are emptied; what is left was not written.
  bool write(redisContext*& c, std::string& why);
  std::string tx_key(int64_t day) const;
  std::string fraud_key(int64_t day) const;

  const Options options_;
  metrics::Counter& counted_;
  metrics::Counter& recounted_;
  metrics::Counter& uncounted_;
  metrics::Counter& writes_ok_;
  metrics::Counter& writes_failed_;
  metrics::Gauge& backlog_gauge_;
  metrics::Counter& refreshes_ok_;
  metrics::Counter& refreshes_failed_;
  metrics::Histogram& refresh_seconds_;
  metrics::Gauge& copy_terminals_;
  metrics::Counter& reports_counted_;
  metrics::Counter& reports_moved_;
  metrics::Counter& reports_repeated_;
  metrics::Counter& commands_;
  metrics::Counter& bytes_sent_;
  metrics::Counter& bytes_read_;
  RateLimit failure_log_{std::chrono::seconds(10)};
  RateLimit gap_log_{std::chrono::seconds(10)};

  std::atomic<int64_t> newest_day_{INT64_MIN};
  std::atomic<uint64_t> version_{0};
  mutable std::mutex copy_mutex_;
  std::shared_ptr<const features::TerminalCopy> copy_;  // guarded by copy_mutex_

  redisContext* report_conn_ = nullptr;  // report()'s, one thread at a time
  std::string report_sha_;               // the report script on report_conn_
  std::string count_sha_;                // the count script on the writer's connection
  std::mutex refresh_mutex_;             // one refresh at a time (refresh_now and the thread)
  // Guarded by refresh_mutex_: the transaction hashes read, by day, with their generation,
  // kept between refreshes while the generation does not change; their terminals by row
  // (kept_names_), so that building a copy adds every kept count by row, looking up only the
  // names of the days read again. Rows no kept day refers to are dropped once the names are
  // twice as many as after the last such compaction.
  struct KeptDay {
    std::string generation;
    std::vector<std::pair<uint32_t, uint32_t>> counts;  // (row, transactions)
  };
  std::map<int64_t, KeptDay> kept_tx_;
  std::vector<std::string> kept_names_;
  std::unordered_map<std::string, uint32_t> kept_rows_;
  size_t kept_names_compacted_ = 0;
  uint32_t kept_row(std::string_view terminal);
  void compact_kept_names();

  mutable std::mutex mutex_;
  std::condition_variable cv_;       // stop (the writer also wakes every flush interval)
  std::condition_variable idle_cv_;  // nothing waiting
  std::vector<Batch> queued_;        // guarded by mutex_
  // Per partition, the end of the records handed over: counting goes on from there.
  std::map<int32_t, int64_t> handed_end_;  // guarded by mutex_
  size_t backlog_ = 0;                     // guarded by mutex_: queued and not written
  bool busy_ = false;                      // guarded by mutex_: a write is in flight
  bool stopping_ = false;                  // guarded by mutex_
  std::chrono::steady_clock::time_point drain_deadline_;  // guarded by mutex_: once stopping
  // The writer thread's own: its ranges and the (day, terminal) pairs they refer to.
  std::map<int32_t, Range> ranges_;
  std::vector<std::pair<int64_t, std::string>> pairs_;
  std::unordered_map<std::string, uint32_t> pair_index_;
  std::thread writer_;  // last: started once the rest is built
  std::thread refresher_;
};

}  // namespace vigil::sinks

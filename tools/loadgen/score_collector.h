// The reading side of the load generator: scores of this run, from the scores topic.
#pragma once

#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "kafka_handles.h"
#include "latency_histogram.h"

namespace vigil::loadgen {

struct LatencySummary {
  uint64_t count = 0;
  int64_t p50_ms = -1, p95_ms = -1, p99_ms = -1, max_ms = -1;  // -1 when no samples
};

struct CollectorStats {
  uint64_t scored = 0;      // distinct transaction ids of this run
  uint64_t duplicates = 0;  // scores for an id already scored
  uint64_t fraud = 0;       // distinct ids scored is_fraud=true
  uint64_t foreign = 0;     // scores of other runs or producers, ignored
  uint64_t malformed = 0;   // unparseable scores, or our prefix without a valid sequence number
  uint64_t without_event_time = 0;  // our scores lacking event_time_ms (no latency sample)
  LatencySummary window;            // since the previous snapshot that closed the window
  LatencySummary overall;
  std::chrono::steady_clock::time_point last_scored_at;  // when the latest new id arrived
};

// A score as read from the topic, kept to be shown (and compared with Redis) in the summary.
struct ScoreSample {
  std::string transaction_id;
  std::string json;
};

// Reads the scores topic on its own thread and keeps, for the transaction ids of this run
// (`<id_prefix>-<sequence>`), which were scored, how often, and the end-to-end latency
// (receive time minus the score's event_time_ms, wall clock).
//
// It does not join a consumer group: create() assigns every partition explicitly at its end
// offset, queried before the caller produces the first event, so no score of this run can be
// missed (auto.offset.reset=latest could skip scores written before the assignment lands).
//
// Threads: start() launches the reading thread, stop() (idempotent, also run by the
// destructor) joins it. snapshot(), samples() and missing() may be called from any thread;
// one mutex guards the counters, taken once per consumed batch.
class ScoreCollector {
 public:
  static constexpr size_t kSamplesKept = 3;

  static Result<std::unique_ptr<ScoreCollector>> create(const std::string& bootstrap,
                                                        const std::string& topic,
                                                        const std::string& id_prefix,
                                                        const Properties& overrides,
                                                        Deadline deadline);
  ~ScoreCollector();
  ScoreCollector(const ScoreCollector&) = delete;
  ScoreCollector& operator=(const ScoreCollector&) = delete;

  void start();
  void stop();

  // Counters and latency percentiles so far; `close_window` starts a new latency window.
  CollectorStats snapshot(bool close_window);
  // Distinct transaction ids of this run scored so far (cheaper than a snapshot).
  uint64_t scored() const;
  // The first kSamplesKept distinct scores of this run, in arrival order.
  std::vector<ScoreSample> samples() const;
  // Up to `max` sequence numbers below `sent` that have no score yet, ascending.
  std::vector<uint64_t> missing(uint64_t sent, size_t max) const;

 private:
  // One of our scores, parsed on the reading thread before the lock is taken.
  struct Parsed {
    uint64_t sequence = 0;
    int64_t event_time_ms = -1;  // -1 when absent
    bool is_fraud = false;
    std::string json;  // filled only while samples are still wanted
  };
  enum class Kind { kOurs, kForeign, kMalformed };

  ScoreCollector(KafkaHandle rk, std::string id_prefix);
  void run();
  Kind parse(const rd_kafka_message_t& msg, Parsed& out);
  bool parse_sequence(std::string_view id, uint64_t& sequence) const;
  void record(const std::vector<Parsed>& batch, uint64_t foreign, uint64_t malformed,
              int64_t received_ms);
  void report_consume_error(const rd_kafka_message_t& msg);

  KafkaHandle rk_;
  rd_kafka_queue_t* queue_ = nullptr;  // the consumer queue; owned, destroyed before rk_
  const std::string id_prefix_;        // "<id_prefix>-"
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  bool closed_ = false;

  // Reading thread only.
  simdjson::ondemand::parser parser_;
  std::string padded_;
  uint64_t consume_errors_ = 0;

  mutable std::mutex mu_;      // guards everything below
  std::vector<uint8_t> seen_;  // per sequence number: times scored (saturating)
  CollectorStats stats_;
  LatencyHistogram window_;
  LatencyHistogram overall_;
  std::vector<ScoreSample> samples_;
};

}  // namespace vigil::loadgen

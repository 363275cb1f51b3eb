// What vigil-loadgen tells its user: the live progress line (stderr) and the final summary
// (stdout).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "event_producer.h"
#include "redis_lookup.h"
#include "score_collector.h"

namespace vigil::loadgen {

// Prints a progress line once a second: events sent and scored, both rates over the last
// second, and end-to-end p50/p99 over the last second and since the start. Used by the main
// thread only.
class ProgressReporter {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr auto kInterval = std::chrono::seconds(1);

  explicit ProgressReporter(Clock::time_point start) : start_(start), last_(start) {}

  // Prints a line when kInterval has passed since the previous one.
  void maybe_print(Clock::time_point now, uint64_t sent, ScoreCollector& scores);
  Clock::time_point next_due() const { return last_ + kInterval; }

 private:
  Clock::time_point start_;
  Clock::time_point last_;
  uint64_t last_sent_ = 0;
  uint64_t last_scored_ = 0;
};

// Everything the summary reports, gathered once the run is over.
struct RunSummary {
  std::string id_prefix;
  std::string topic;
  double offered_rate_per_s = 0;
  uint64_t sent = 0;
  uint64_t sent_labelled_fraud = 0;  // sent events whose CSV row has Class=1
  DeliveryCounts delivery;
  std::string first_delivery_error;
  CollectorStats scores;
  std::vector<uint64_t> missing_examples;  // first few sequence numbers without a score
  double producing_s = 0;
  double until_last_score_s = 0;  // from the first event to the last new score
  bool interrupted = false;
  std::vector<ScoreSample> samples;
  // The Redis check: skipped (no URL), failed (error), or one reading per sample.
  std::string redis_key_prefix;
  bool redis_checked = false;
  std::string redis_skipped_because;  // when not checked
  std::string redis_error;
  std::vector<RedisReading> redis_readings;

  uint64_t missing() const { return sent > scores.scored ? sent - scores.scored : 0; }
  // The exit status: every sent event was scored (and something was sent).
  bool all_scored() const { return sent > 0 && missing() == 0; }
};

// Writes the summary to stdout.
void print_summary(const RunSummary& s);

}  // namespace vigil::loadgen

// Scoring workers that stop making progress. LibTorch and librdkafka cannot tell us that a
// worker hangs (a forward that never returns, a produce blocked on an unreachable cluster),
// so each worker notes when it started its current batch (Batcher::worker_busy_since_ns, on
// the batcher's clock) and the watchdog checks, every `tick` on its own thread, how long ago
// that was. Two bounds, the second far above the first:
//
//   busy  0 ──────────── stall ──────────────────── liveness ─────────►
//         working         stuck: readiness fails,    hung: liveness fails too, the
//                         the pod leaves the         orchestrator restarts the process
//                         Service; may recover       (the worker's partitions commit
//                         (a slow batch)             nothing behind the batch it holds)
//
// The gauges vigil_scoring_stalled_workers and vigil_scoring_hung_workers say how many are in
// each state, and the log says when each starts and ends.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "scoring/batcher.h"

namespace vigil::scoring {

// How long one worker may stay inside one batch (ScoringConfig::watchdog()).
struct WatchdogLimits {
  std::chrono::milliseconds stall{10000};     // longer: stuck, readiness fails
  std::chrono::milliseconds liveness{60000};  // longer: hung, liveness fails; >= stall
};

class Watchdog {
 public:
  // The batcher and clock (the batcher's) must outlive the watchdog.
  Watchdog(const Batcher& batcher, const Clock& clock, WatchdogLimits limits,
           metrics::Registry& registry,
           std::chrono::milliseconds tick = std::chrono::milliseconds(500));
  // Readiness bound only: liveness fails after kLivenessPerStall × stall (the ratio of the
  // configuration's defaults). For callers that predate scoring.watchdog_liveness_ms.
  static constexpr int kLivenessPerStall = 6;
  Watchdog(const Batcher& batcher, const Clock& clock, std::chrono::milliseconds stall,
           metrics::Registry& registry,
           std::chrono::milliseconds tick = std::chrono::milliseconds(500));
  ~Watchdog();  // stops
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void start();
  void stop();  // joins; idempotent

  // One pass: counts the stuck and the hung workers now. The thread calls it every tick;
  // tests call it.
  void check();
  int stalled() const { return stalled_.load(); }
  int hung() const { return hung_.load(); }
  // "scoring: N worker(s) stuck ..." while any is; empty otherwise. For /ready.
  std::vector<std::string> readiness_failures() const;
  // "scoring: N worker(s) hung ..." while any is; empty otherwise. For /health (liveness):
  // a hung worker never completes its batch, so its partitions never commit again and only
  // a restart frees them. Any thread; as of the last check().
  std::vector<std::string> liveness_failures() const;

 private:
  void main();

  const Batcher& batcher_;
  const Clock& clock_;
  const WatchdogLimits limits_;
  const std::chrono::milliseconds tick_;
  metrics::Gauge& stalled_gauge_;
  metrics::Gauge& hung_gauge_;
  std::atomic<int> stalled_{0};
  std::atomic<int> hung_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace vigil::scoring

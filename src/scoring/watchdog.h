// Scoring workers that stop making progress. LibTorch and librdkafka cannot tell us that a
// worker hangs (a forward that never returns, a produce blocked on an unreachable cluster),
// so each worker notes when it started its current batch (Batcher::worker_busy_since_ns, on
// the batcher's clock) and the watchdog checks, every `tick` on its own thread, how long ago
// that was. A worker busy longer than `stall` counts as stuck: readiness fails, the gauge
// vigil_scoring_stalled_workers says how many, and the log says when it starts and ends.
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

class Watchdog {
 public:
  Watchdog(const Batcher& batcher, const Clock& clock, std::chrono::milliseconds stall,
           metrics::Registry& registry,
           std::chrono::milliseconds tick = std::chrono::milliseconds(500));
  ~Watchdog();  // stops
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void start();
  void stop();  // joins; idempotent

  // One pass: counts the stuck workers now. The thread calls it every tick; tests call it.
  void check();
  int stalled() const { return stalled_.load(); }
  // "scoring: N worker(s) stuck ..." while any is; empty otherwise.
  std::vector<std::string> readiness_failures() const;

 private:
  void main();

  const Batcher& batcher_;
  const Clock& clock_;
  const std::chrono::milliseconds stall_;
  const std::chrono::milliseconds tick_;
  metrics::Gauge& gauge_;
  std::atomic<int> stalled_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace vigil::scoring

#include "scoring/watchdog.h"

#include "common/log.h"
#include "common/thread_name.h"

namespace vigil::scoring {

Watchdog::Watchdog(const Batcher& batcher, const Clock& clock, WatchdogLimits limits,
                   metrics::Registry& registry, std::chrono::milliseconds tick)
    : batcher_(batcher),
      clock_(clock),
      limits_(limits),
      tick_(tick),
      stalled_gauge_(registry.gauge("vigil_scoring_stalled_workers",
                                    "Scoring workers the watchdog found without progress")),
      hung_gauge_(registry.gauge("vigil_scoring_hung_workers",
                                 "Scoring workers without progress past the liveness bound")) {}

Watchdog::Watchdog(const Batcher& batcher, const Clock& clock, std::chrono::milliseconds stall,
                   metrics::Registry& registry, std::chrono::milliseconds tick)
    : Watchdog(batcher, clock, WatchdogLimits{stall, kLivenessPerStall * stall}, registry, tick) {}

Watchdog::~Watchdog() {
  stop();
}

void Watchdog::start() {
  thread_ = std::thread([this] {
    name_this_thread("vigil-watchdog");
    main();
  });
}

void Watchdog::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::main() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, tick_, [this] { return stop_; })) {
    lock.unlock();
    check();
    lock.lock();
  }
}

void Watchdog::check() {
  using std::chrono::nanoseconds;
  const int64_t now = clock_.now().time_since_epoch().count();
  const int64_t stall = std::chrono::duration_cast<nanoseconds>(limits_.stall).count();
  const int64_t liveness = std::chrono::duration_cast<nanoseconds>(limits_.liveness).count();
  int stalled = 0;
  int hung = 0;
  for (int64_t since : batcher_.worker_busy_since_ns()) {
    if (since == 0) continue;  // not in a batch
    stalled += now - since > stall;
    hung += now - since > liveness;
  }
  const int stalled_before = stalled_.exchange(stalled);
  const int hung_before = hung_.exchange(hung);
  stalled_gauge_.set(stalled);
  hung_gauge_.set(hung);
  auto log = logger("scoring");
  if (stalled > 0 && stalled_before == 0) {
    log->error(
        "watchdog: {} scoring worker(s) made no progress for {} ms; readiness fails until they "
        "recover",
        stalled, limits_.stall.count());
  } else if (stalled == 0 && stalled_before > 0) {
    log->info("watchdog: scoring workers recovered");
  }
  if (hung > 0 && hung_before == 0) {
    log->error(
        "watchdog: {} scoring worker(s) made no progress for {} ms; liveness (/health) fails "
        "so that the process is restarted",
        hung, limits_.liveness.count());
  } else if (hung == 0 && hung_before > 0) {
    log->warn("watchdog: hung scoring workers finished their batch; liveness passes again");
  }
}

std::vector<std::string> Watchdog::readiness_failures() const {
  const int n = stalled_.load();
  if (n == 0) return {};
  return {"scoring: " + std::to_string(n) + " worker(s) stuck (no progress for " +
          std::to_string(limits_.stall.count()) + " ms)"};
}

std::vector<std::string> Watchdog::liveness_failures() const {
  const int n = hung_.load();
  if (n == 0) return {};
  return {"scoring: " + std::to_string(n) + " worker(s) hung (no progress for " +
          std::to_string(limits_.liveness.count()) + " ms); restart the process"};
}

}  // namespace vigil::scoring

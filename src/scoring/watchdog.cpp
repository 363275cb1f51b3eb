#include "scoring/watchdog.h"

#include "common/log.h"
#include "common/thread_name.h"

namespace vigil::scoring {

Watchdog::Watchdog(const Batcher& batcher, const Clock& clock, std::chrono::milliseconds stall,
                   metrics::Registry& registry, std::chrono::milliseconds tick)
    : batcher_(batcher),
      clock_(clock),
      stall_(stall),
      tick_(tick),
      gauge_(registry.gauge("vigil_scoring_stalled_workers",
                            "Scoring workers the watchdog found without progress")) {}

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
  const int64_t now = clock_.now().time_since_epoch().count();
  const int64_t limit = std::chrono::duration_cast<std::chrono::nanoseconds>(stall_).count();
  int stalled = 0;
  for (int64_t since : batcher_.worker_busy_since_ns()) {
    stalled += (since != 0 && now - since > limit);
  }
  const int before = stalled_.exchange(stalled);
  gauge_.set(stalled);
  if (stalled > 0 && before == 0) {
    logger("scoring")->error(
        "watchdog: {} scoring worker(s) made no progress for {} ms; readiness fails until they "
        "recover",
        stalled, stall_.count());
  } else if (stalled == 0 && before > 0) {
    logger("scoring")->info("watchdog: scoring workers recovered");
  }
}

std::vector<std::string> Watchdog::readiness_failures() const {
  const int n = stalled_.load();
  if (n == 0) return {};
  return {"scoring: " + std::to_string(n) + " worker(s) stuck (no progress for " +
          std::to_string(stall_.count()) + " ms)"};
}

}  // namespace vigil::scoring

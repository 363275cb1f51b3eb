// RateLimit: at most one "go ahead" per interval, from any number of threads, for log lines
// that could otherwise fire once per record or per request. Lock-free; the suppressed count
// since the last allowed line goes with it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace vigil {

class RateLimit {
 public:
  explicit RateLimit(std::chrono::milliseconds every) : every_ns_(every.count() * 1000000) {}

  // True at most once per interval; `suppressed` then receives how many calls returned false
  // since the last true.
  bool allow(uint64_t& suppressed) {
    const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
    int64_t next = next_ns_.load(std::memory_order_relaxed);
    if (now < next || !next_ns_.compare_exchange_strong(next, now + every_ns_)) {
      suppressed_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
    return true;
  }

 private:
  const int64_t every_ns_;
  std::atomic<int64_t> next_ns_{0};
  std::atomic<uint64_t> suppressed_{0};
};

}  // namespace vigil

// The clock seam: production code reads time through Clock so that unit tests can drive
// time by hand (ManualClock) instead of sleeping.
#pragma once

#include <atomic>
#include <chrono>

namespace vigil {

class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;
  virtual ~Clock() = default;
  virtual time_point now() const = 0;
};

// The process-wide monotonic clock.
class SteadyClock final : public Clock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
  static SteadyClock& instance() {
    static SteadyClock clock;
    return clock;
  }
};

// A clock that only moves when told to. Safe to read and advance from any thread.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(time_point start = time_point{}) : ns_(start.time_since_epoch().count()) {}
  time_point now() const override { return time_point(duration(ns_.load())); }
  void advance(duration d) { ns_.fetch_add(d.count()); }
  void set(time_point t) { ns_.store(t.time_since_epoch().count()); }

 private:
  std::atomic<duration::rep> ns_;
};

// Wall-clock milliseconds since the Unix epoch (for timestamps that leave the process).
inline int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace vigil

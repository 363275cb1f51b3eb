// Waiting on a condition with a deadline: what tests do instead of sleeping "to let things
// settle".
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>

namespace vigil::testing {

// Polls `condition` until it holds or `deadline` has passed; returns its last value. Polls
// every 1 ms at first, backing off to 10 ms, so that quick conditions are seen quickly and
// slow ones do not burn a core.
inline bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  std::chrono::microseconds poll{1000};
  for (;;) {
    if (condition()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return condition();
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(poll, until - now));
    poll = std::min(poll * 2, std::chrono::microseconds(10000));
  }
}

}  // namespace vigil::testing

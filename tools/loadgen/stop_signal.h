// SIGINT/SIGTERM: the first stops producing (what was sent is still waited for, briefly, and
// summarised); the second also skips the remaining waits.
#pragma once

#include <csignal>

namespace vigil::loadgen {

inline volatile std::sig_atomic_t g_stop_requests = 0;

inline void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop_requests = g_stop_requests + 1; };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

inline bool stop_requested() {
  return g_stop_requests >= 1;
}
inline bool stop_now_requested() {
  return g_stop_requests >= 2;
}

}  // namespace vigil::loadgen

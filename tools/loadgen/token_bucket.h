// Paces the producer at a fixed offered rate without sleeping once per event, so that rates of
// several hundred thousand events per second are reachable.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>

namespace vigil::loadgen {

// Tokens accrue at `rate_per_s`, capped at a burst of 100 ms worth; the producer sends as many
// events as there are whole tokens, then sleeps until a chunk (about 1 ms worth) has accrued.
// The cap means a stalled producer (a full librdkafka queue) catches up at most 100 ms of
// backlog in one burst instead of flooding the broker afterwards.
//
//   tokens
//   burst ┤              ________   <- capped: a longer stall is not caught up
//         │   /|  /|    /
//   chunk ┤  / | / |   /
//         │ /  |/  |  /
//       0 ┼────────┴─/─────────►  time
//              ^ a chunk sent     ^ stall
//
// Rate 0 means unlimited: every call offers a fixed chunk. Used by one thread.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr uint64_t kUnlimitedChunk = 4096;

  TokenBucket(double rate_per_s, Clock::time_point start)
      : rate_per_s_(rate_per_s),
        chunk_(rate_per_s > 0 ? std::max(1.0, std::floor(rate_per_s / 1000.0)) : 0),
        burst_(std::max(chunk_, rate_per_s * 0.1)),
        tokens_(1.0),
        last_(start) {}

  // Whole events that may be sent at `now`.
  uint64_t available(Clock::time_point now) {
    if (rate_per_s_ <= 0) return kUnlimitedChunk;
    std::chrono::duration<double> dt = now - last_;
    last_ = now;
    tokens_ = std::min(burst_, tokens_ + dt.count() * rate_per_s_);
    return static_cast<uint64_t>(tokens_);
  }

  void take(uint64_t n) {
    if (rate_per_s_ > 0) tokens_ -= static_cast<double>(n);
  }

  // When a chunk's worth of tokens will have accrued (now, when unlimited).
  Clock::time_point next_chunk_at() const {
    if (rate_per_s_ <= 0 || tokens_ >= chunk_) return last_;
    std::chrono::duration<double> wait((chunk_ - tokens_) / rate_per_s_);
    return last_ + std::chrono::duration_cast<Clock::duration>(wait);
  }

 private:
  double rate_per_s_;
  double chunk_;
  double burst_;
  double tokens_;
  Clock::time_point last_;
};

}  // namespace vigil::loadgen

// End-to-end latencies in whole milliseconds (event_time_ms has millisecond resolution).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace vigil::loadgen {

// One bucket per millisecond up to kMaxTrackedMs; slower samples share the last bucket (their
// percentile reads as the maximum seen). Exact at 1 ms resolution and cheap to record into at
// any rate. Not thread-safe: ScoreCollector guards it with its mutex.
class LatencyHistogram {
 public:
  static constexpr int64_t kMaxTrackedMs = 120'000;

  void record(int64_t ms) {
    ms = std::clamp<int64_t>(ms, 0, kMaxTrackedMs);  // below 0: clocks of two hosts disagree
    ++buckets_[static_cast<size_t>(ms)];
    ++count_;
    max_ms_ = std::max(max_ms_, ms);
  }

  uint64_t count() const { return count_; }
  int64_t max_ms() const { return count_ == 0 ? -1 : max_ms_; }

  // The smallest latency that at least a fraction `q` of the samples do not exceed; -1 when
  // empty.
  int64_t percentile(double q) const {
    if (count_ == 0) return -1;
    const auto rank =
        static_cast<uint64_t>(std::max(1.0, std::ceil(q * static_cast<double>(count_))));
    uint64_t seen = 0;
    for (size_t ms = 0; ms < buckets_.size(); ++ms) {
      seen += buckets_[ms];
      if (seen >= rank) return std::min(static_cast<int64_t>(ms), max_ms_);
    }
    return max_ms_;
  }

  void reset() {
    if (count_ == 0) return;
    std::fill(buckets_.begin(), buckets_.end(), 0);
    count_ = 0;
    max_ms_ = 0;
  }

 private:
  std::vector<uint64_t> buckets_ = std::vector<uint64_t>(kMaxTrackedMs + 1, 0);
  uint64_t count_ = 0;
  int64_t max_ms_ = 0;
};

}  // namespace vigil::loadgen

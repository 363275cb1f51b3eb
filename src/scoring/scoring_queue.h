// ScoringQueue: the bounded lock-free MPMC queue between the sources (Kafka consumers, HTTP)
// and the scoring workers.
//
// Two moodycamel::ConcurrentQueue lanes (HTTP = high priority, Kafka = normal) and one
// lightweight semaphore counting items across both, so a consumer can block on "anything
// arrived". Capacity is exact: a push first reserves a slot with an atomic counter.
//
// Overflow policy: try_push never blocks and returns kFull. HTTP answers 503 with
// Retry-After; the Kafka source pauses its partitions above the high watermark, so for it
// kFull is the rare case of racing the watermark and it retries after a short wait.
// Every rejection is counted (vigil_queue_rejected_total).
//
// Threads: any number of producers and consumers.
#pragma once

#include <concurrentqueue/concurrentqueue.h>
#include <concurrentqueue/lightweightsemaphore.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "scoring/request.h"

namespace vigil::scoring {

struct QueueConfig {
  size_t capacity = 65536;      // requests held at most (both lanes together)
  double high_watermark = 0.8;  // fraction of capacity at which Kafka partitions pause
  double low_watermark = 0.5;   // fraction of capacity below which they resume
};

class ScoringQueue {
 public:
  enum class PushResult { kOk, kFull, kClosed };

  ScoringQueue(const QueueConfig& config, const Clock& clock, metrics::Registry& registry);
  ~ScoringQueue();
  ScoringQueue(const ScoringQueue&) = delete;
  ScoringQueue& operator=(const ScoringQueue&) = delete;

  // Stamps enqueued_at and enqueues. On kFull/kClosed the request is left untouched in
  // `request` so the caller still owns it (and can answer 503 or retry).
  PushResult try_push(ScoreRequest& request, Priority priority);
  // Pushes as many of `requests[0..n)` as fit, in order, with one slot reservation, one bulk
  // enqueue and one wake-up; returns how many (moved from). 0 when full or closed (`closed`
  // then says which). Stamps enqueued_at.
  size_t try_push_bulk(ScoreRequest* requests, size_t n, Priority priority, bool& closed);

  // Moves up to `max` requests (high lane first) into `out`, waiting up to `timeout` for the
  // first one. Returns how many were moved. Returns 0 at once when closed and empty.
  size_t pop_bulk(std::vector<ScoreRequest>& out, size_t max, std::chrono::microseconds timeout);

  // Wakes a consumer waiting in pop_bulk without giving it an item (it returns what it has,
  // maybe nothing), so it can look again at a condition of its own: the batcher's leader
  // learns this way that every worker went idle. Consumers must be serialised (the batcher
  // pops under its former's lock).
  void wake();

  // Stops accepting pushes and wakes every waiting consumer. What is queued can still be
  // popped (drain). Idempotent.
  void close();
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  size_t depth() const { return size_.load(std::memory_order_relaxed); }
  size_t capacity() const { return capacity_; }
  bool above_high_watermark() const { return depth() >= high_mark_; }
  bool below_low_watermark() const { return depth() <= low_mark_; }

 private:
  const size_t capacity_;
  const size_t high_mark_;
  const size_t low_mark_;
  const Clock& clock_;
  metrics::Registry& registry_;
  moodycamel::ConcurrentQueue<ScoreRequest> high_;
  moodycamel::ConcurrentQueue<ScoreRequest> normal_;
  moodycamel::LightweightSemaphore items_;
  std::atomic<size_t> size_{0};
  std::atomic<size_t> wakeups_{0};  // semaphore tokens released by wake(), not for items
  std::atomic<bool> closed_{false};
  metrics::Counter& rejected_full_;
  metrics::Counter& rejected_closed_;
};

}  // namespace vigil::scoring

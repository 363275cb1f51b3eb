#include "scoring/scoring_queue.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>

namespace vigil::scoring {
namespace {
// Tokens released by close(): enough that every consumer that will ever wait wakes up.
constexpr ssize_t kCloseTokens = std::numeric_limits<int32_t>::max() / 2;
}  // namespace

ScoringQueue::ScoringQueue(const QueueConfig& config, const Clock& clock,
                           metrics::Registry& registry)
    : capacity_(std::max<size_t>(config.capacity, 1)),
      high_mark_(std::max<size_t>(1, static_cast<size_t>(std::ceil(
                                         config.high_watermark * static_cast<double>(capacity_))))),
      low_mark_(static_cast<size_t>(config.low_watermark * static_cast<double>(capacity_))),
      clock_(clock),
      registry_(registry),
      high_(std::min<size_t>(capacity_, 4096)),
      normal_(std::min<size_t>(capacity_, 4096)),
      rejected_full_(registry.counter("vigil_queue_rejected_total",
                                      "Requests refused by the scoring queue, by reason",
                                      {{"reason", "full"}})),
      rejected_closed_(registry.counter("vigil_queue_rejected_total",
                                        "Requests refused by the scoring queue, by reason",
                                        {{"reason", "closed"}})) {
  registry.gauge_callback("vigil_queue_depth", "Requests waiting in the scoring queue", {}, this,
                          [this] { return static_cast<double>(depth()); });
  registry.gauge_callback("vigil_queue_capacity", "Capacity of the scoring queue", {}, this,
                          [this] { return static_cast<double>(capacity_); });
}

ScoringQueue::~ScoringQueue() {
  registry_.remove_callbacks(this);
}

ScoringQueue::PushResult ScoringQueue::try_push(ScoreRequest& request, Priority priority) {
  if (closed()) {
    rejected_closed_.inc();
    return PushResult::kClosed;
  }
  // Reserve a slot; the counter never exceeds capacity, even transiently.
  size_t cur = size_.load(std::memory_order_relaxed);
  do {
    if (cur >= capacity_) {
      rejected_full_.inc();
      return PushResult::kFull;
    }
  } while (!size_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel));
  request.enqueued_at = clock_.now();
  auto& lane = priority == Priority::kHigh ? high_ : normal_;
  if (!lane.enqueue(std::move(request))) {  // allocation failure only
    size_.fetch_sub(1, std::memory_order_acq_rel);
    rejected_full_.inc();
    return PushResult::kFull;
  }
  items_.signal();
  return PushResult::kOk;
}

size_t ScoringQueue::try_push_bulk(ScoreRequest* requests, size_t n, Priority priority,
                                   bool& closed_out) {
  closed_out = closed();
  if (closed_out) {
    rejected_closed_.inc(n);
    return 0;
  }
  size_t cur = size_.load(std::memory_order_relaxed);
  size_t take = 0;
  do {
    take = std::min(n, capacity_ - std::min(cur, capacity_));
    if (take == 0) {
      rejected_full_.inc();
      return 0;
    }
  } while (!size_.compare_exchange_weak(cur, cur + take, std::memory_order_acq_rel));
  const auto now = clock_.now();
  for (size_t i = 0; i < take; ++i) requests[i].enqueued_at = now;
  auto& lane = priority == Priority::kHigh ? high_ : normal_;
  if (!lane.enqueue_bulk(std::make_move_iterator(requests), take)) {  // allocation failure only
    size_.fetch_sub(take, std::memory_order_acq_rel);
    rejected_full_.inc();
    return 0;
  }
  items_.signal(static_cast<ssize_t>(take));
  return take;
}

size_t ScoringQueue::pop_bulk(std::vector<ScoreRequest>& out, size_t max,
                              std::chrono::microseconds timeout) {
  if (max == 0) return 0;
  const ssize_t tokens = timeout.count() <= 0
                             ? items_.tryWaitMany(static_cast<ssize_t>(max))
                             : items_.waitMany(static_cast<ssize_t>(max), timeout.count());
  // Tokens from wake() carry no item. Tokens and wake-ups may be matched to each other out of
  // order; the totals agree (tokens = items + wake-ups), so an item taken for a wake-up here
  // is found by the next call. A wake-up does not shorten the batch: its place is refilled
  // from the items already there.
  size_t want = 0;
  size_t taken = static_cast<size_t>(std::max<ssize_t>(tokens, 0));
  while (taken > 0) {
    size_t w = wakeups_.load(std::memory_order_acquire);
    size_t spurious = 0;
    do {
      spurious = std::min(w, taken);
    } while (spurious > 0 &&
             !wakeups_.compare_exchange_weak(w, w - spurious, std::memory_order_acq_rel));
    want += taken - spurious;
    if (spurious == 0 || want >= max) break;
    taken = static_cast<size_t>(
        std::max<ssize_t>(items_.tryWaitMany(static_cast<ssize_t>(max - want)), 0));
  }
  size_t got = 0;
  // Each token stands for an item already enqueued (signal follows enqueue), except the
  // tokens released by close(). So keep dequeuing until we have one item per token, or stop
  // when closed and both lanes are really empty. Bulk dequeues amortise the queue's atomics.
  while (got < want) {
    size_t n = high_.try_dequeue_bulk(std::back_inserter(out), want - got);
    if (got + n < want) n += normal_.try_dequeue_bulk(std::back_inserter(out), want - got - n);
    got += n;
    if (n == 0 && closed() && high_.size_approx() == 0 && normal_.size_approx() == 0) break;
  }
  size_.fetch_sub(got, std::memory_order_acq_rel);
  return got;
}

void ScoringQueue::wake() {
  wakeups_.fetch_add(1, std::memory_order_acq_rel);
  items_.signal();
}

void ScoringQueue::close() {
  if (closed_.exchange(true, std::memory_order_acq_rel)) return;
  items_.signal(kCloseTokens);
}

}  // namespace vigil::scoring

#include "scoring/scoring_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

namespace vigil::scoring {
namespace {

using std::chrono::microseconds;

ScoreRequest make(const std::string& id) {
  ScoreRequest r;
  r.id = id;
  r.features = {1.0f};
  return r;
}

struct QueueTest : ::testing::Test {
  metrics::Registry registry;
  ManualClock clock;
};

TEST_F(QueueTest, RejectsPushesBeyondCapacityAndKeepsTheRequest) {
  ScoringQueue q({4, 0.75, 0.25}, clock, registry);
  for (int i = 0; i < 4; ++i) {
    auto r = make("r" + std::to_string(i));
    ASSERT_EQ(q.try_push(r, Priority::kNormal), ScoringQueue::PushResult::kOk);
  }
  auto extra = make("extra");
  EXPECT_EQ(q.try_push(extra, Priority::kNormal), ScoringQueue::PushResult::kFull);
  EXPECT_EQ(extra.id, "extra");  // still owned by the caller
  EXPECT_EQ(q.depth(), 4u);
  EXPECT_EQ(registry.counter("vigil_queue_rejected_total", "", {{"reason", "full"}}).value(), 1u);

  std::vector<ScoreRequest> out;
  EXPECT_EQ(q.pop_bulk(out, 1, microseconds(0)), 1u);
  EXPECT_EQ(q.try_push(extra, Priority::kNormal), ScoringQueue::PushResult::kOk);
}

TEST_F(QueueTest, ReportsHighAndLowWatermarks) {
  ScoringQueue q({10, 0.8, 0.5}, clock, registry);
  for (int i = 0; i < 7; ++i) {
    auto r = make("r");
    q.try_push(r, Priority::kNormal);
  }
  EXPECT_FALSE(q.above_high_watermark());
  EXPECT_FALSE(q.below_low_watermark());
  auto r = make("r");
  q.try_push(r, Priority::kNormal);
  EXPECT_TRUE(q.above_high_watermark());
  std::vector<ScoreRequest> out;
  q.pop_bulk(out, 3, microseconds(0));
  EXPECT_TRUE(q.below_low_watermark());
  EXPECT_FALSE(q.above_high_watermark());
}

TEST_F(QueueTest, WakeReturnsAWaitingConsumerWithoutAnItem) {
  ScoringQueue q({8, 0.75, 0.25}, clock, registry);
  std::vector<ScoreRequest> out;
  std::thread waker([&] { q.wake(); });
  // Without the wake-up this would wait the whole 10 s.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(q.pop_bulk(out, 4, microseconds(10'000'000)), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  waker.join();
  EXPECT_TRUE(out.empty());
}

TEST_F(QueueTest, WakeUpsNeitherLoseNorShortenABatch) {
  ScoringQueue q({64, 0.75, 0.25}, clock, registry);
  q.wake();
  for (int i = 0; i < 10; ++i) {
    auto r = make("r" + std::to_string(i));
    ASSERT_EQ(q.try_push(r, Priority::kNormal), ScoringQueue::PushResult::kOk);
  }
  q.wake();
  std::vector<ScoreRequest> out;
  EXPECT_EQ(q.pop_bulk(out, 10, microseconds(0)), 10u);  // the wake-ups took no item's place
  EXPECT_EQ(q.depth(), 0u);
  EXPECT_EQ(q.pop_bulk(out, 10, microseconds(0)), 0u);  // and left nothing behind
  EXPECT_EQ(out.size(), 10u);
}

TEST_F(QueueTest, HighPriorityRequestsArePoppedFirst) {
  ScoringQueue q({16, 0.8, 0.5}, clock, registry);
  for (int i = 0; i < 3; ++i) {
    auto r = make("kafka" + std::to_string(i));
    q.try_push(r, Priority::kNormal);
  }
  auto h = make("http");
  q.try_push(h, Priority::kHigh);
  std::vector<ScoreRequest> out;
  ASSERT_EQ(q.pop_bulk(out, 4, microseconds(0)), 4u);
  EXPECT_EQ(out[0].id, "http");
  EXPECT_EQ(out[1].id, "kafka0");
}

TEST_F(QueueTest, StampsEnqueueTimeFromTheClock) {
  ScoringQueue q({4, 0.8, 0.5}, clock, registry);
  clock.advance(std::chrono::milliseconds(42));
  auto r = make("r");
  q.try_push(r, Priority::kNormal);
  std::vector<ScoreRequest> out;
  q.pop_bulk(out, 1, microseconds(0));
  EXPECT_EQ(out[0].enqueued_at, clock.now());
}

TEST_F(QueueTest, ClosedQueueRefusesPushesButDrainsWhatItHolds) {
  ScoringQueue q({4, 0.8, 0.5}, clock, registry);
  auto a = make("a");
  q.try_push(a, Priority::kNormal);
  q.close();
  auto b = make("b");
  EXPECT_EQ(q.try_push(b, Priority::kNormal), ScoringQueue::PushResult::kClosed);
  std::vector<ScoreRequest> out;
  EXPECT_EQ(q.pop_bulk(out, 8, microseconds(1000000)), 1u);
  EXPECT_EQ(q.pop_bulk(out, 8, microseconds(1000000)), 0u);  // returns at once when closed+empty
  EXPECT_EQ(q.depth(), 0u);
}

TEST_F(QueueTest, CloseWakesABlockedConsumer) {
  ScoringQueue q({4, 0.8, 0.5}, clock, registry);
  std::atomic<bool> returned{false};
  std::thread consumer([&] {
    std::vector<ScoreRequest> out;
    q.pop_bulk(out, 4, microseconds(60'000'000));
    returned = true;
  });
  q.close();
  consumer.join();
  EXPECT_TRUE(returned);
}

TEST_F(QueueTest, ManyProducersAndConsumersLoseNothingAndNeverExceedCapacity) {
  SteadyClock& steady = SteadyClock::instance();
  ScoringQueue q({64, 0.8, 0.5}, steady, registry);
  constexpr int kProducers = 4, kPerProducer = 5000;
  std::atomic<int> consumed{0};
  std::atomic<size_t> max_depth{0};
  std::vector<std::thread> threads;
  std::mutex seen_mu;
  std::set<std::string> seen;
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&] {
      std::vector<ScoreRequest> out;
      while (consumed.load() < kProducers * kPerProducer) {
        out.clear();
        q.pop_bulk(out, 16, microseconds(1000));
        std::lock_guard<std::mutex> lock(seen_mu);
        for (auto& r : out) seen.insert(r.id.str());
        consumed += static_cast<int>(out.size());
      }
    });
  }
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        auto r = make(std::to_string(p) + ":" + std::to_string(i));
        while (q.try_push(r, i % 7 == 0 ? Priority::kHigh : Priority::kNormal) !=
               ScoringQueue::PushResult::kOk) {
          std::this_thread::yield();
        }
        size_t d = q.depth(), m = max_depth.load();
        while (d > m && !max_depth.compare_exchange_weak(m, d)) {
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(seen.size(), static_cast<size_t>(kProducers * kPerProducer));
  EXPECT_LE(max_depth.load(), 64u);
  EXPECT_EQ(q.depth(), 0u);
}

}  // namespace
}  // namespace vigil::scoring

#include "scoring/batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "support/fake_model.h"
#include "support/wait.h"

namespace vigil::scoring {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

ScoreRequest make(const std::string& id, size_t width = 30, float first = 1.0f) {
  ScoreRequest r;
  r.id = id;
  r.features.assign(width, 0.5f);
  r.features[0] = first;
  return r;
}

// BatchFormer flush rules, driven by a manual clock (no sleeps, no threads).
struct FormerTest : ::testing::Test {
  metrics::Registry registry;
  ManualClock clock;
  ScoringQueue queue{{1024, 0.8, 0.5}, clock, registry};
  BatchFormer former{queue, clock, /*max_batch_size=*/4, /*max_delay=*/microseconds(1000)};
  std::vector<ScoreRequest> batch;

  void push(const std::string& id) {
    auto r = make(id);
    ASSERT_EQ(queue.try_push(r, Priority::kNormal), ScoringQueue::PushResult::kOk);
  }
};

TEST_F(FormerTest, HoldsAPartialBatchUntilTheOldestRequestReachesMaxDelay) {
  push("a");
  clock.advance(microseconds(500));
  push("b");
  clock.advance(microseconds(499));  // a has waited 999 us
  EXPECT_FALSE(former.next(batch, microseconds(0)));
  EXPECT_EQ(former.pending(), 2u);
  clock.advance(microseconds(1));  // a has waited 1000 us: flush a and b
  ASSERT_TRUE(former.next(batch, microseconds(0)));
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0].id, "a");
  EXPECT_EQ(batch[1].id, "b");
  EXPECT_EQ(former.pending(), 0u);
}

TEST_F(FormerTest, FlushesAtOnceWhenTheBatchIsFull) {
  for (int i = 0; i < 6; ++i) push("r" + std::to_string(i));
  ASSERT_TRUE(former.next(batch, microseconds(0)));
  EXPECT_EQ(batch.size(), 4u);  // max_batch_size, without waiting for the delay
  batch.clear();
  EXPECT_FALSE(former.next(batch, microseconds(0)));  // 2 left, not yet due
  EXPECT_EQ(former.pending(), 2u);
}

TEST_F(FormerTest, DelayCountsFromEnqueueNotFromWhenAWorkerPicksTheRequestUp) {
  push("a");
  clock.advance(microseconds(1500));                 // nobody looked for 1.5 ms
  ASSERT_TRUE(former.next(batch, microseconds(0)));  // due on first sight
  EXPECT_EQ(batch.size(), 1u);
}

TEST_F(FormerTest, DeadlineFollowsTheOldestPendingRequest) {
  push("a");
  EXPECT_FALSE(former.next(batch, microseconds(0)));
  ASSERT_TRUE(former.deadline().has_value());
  EXPECT_EQ(*former.deadline(), clock.now() + microseconds(1000));
  clock.advance(microseconds(300));
  push("b");
  EXPECT_FALSE(former.next(batch, microseconds(0)));
  EXPECT_EQ(*former.deadline(), clock.now() - microseconds(300) + microseconds(1000));
}

TEST_F(FormerTest, EmptyQueueFormsNoBatch) {
  EXPECT_FALSE(former.next(batch, microseconds(0)));
  EXPECT_FALSE(former.deadline().has_value());
}

TEST_F(FormerTest, ClosedQueueFlushesPendingWithoutWaitingForTheDelay) {
  push("a");
  EXPECT_FALSE(former.next(batch, microseconds(0)));
  queue.close();
  ASSERT_TRUE(former.next(batch, microseconds(0)));
  EXPECT_EQ(batch.size(), 1u);
}

TEST(FormerEager, FlushesAPartialBatchAtOnceWhenNoWorkerIsBusy) {
  metrics::Registry registry;
  ManualClock clock;
  ScoringQueue queue{{64, 0.8, 0.5}, clock, registry};
  bool idle = true;
  BatchFormer former{queue, clock, 4, microseconds(1000), [&] { return idle; }};
  auto r = make("a");
  queue.try_push(r, Priority::kNormal);
  std::vector<ScoreRequest> batch;
  ASSERT_TRUE(former.next(batch, microseconds(0)));  // no waiting for the delay
  EXPECT_EQ(batch.size(), 1u);
}

TEST(FormerEager, WaitsForTheDelayWhileAWorkerIsBusy) {
  metrics::Registry registry;
  ManualClock clock;
  ScoringQueue queue{{64, 0.8, 0.5}, clock, registry};
  bool idle = false;
  BatchFormer former{queue, clock, 4, microseconds(1000), [&] { return idle; }};
  auto r = make("a");
  queue.try_push(r, Priority::kNormal);
  std::vector<ScoreRequest> batch;
  EXPECT_FALSE(former.next(batch, microseconds(0)));
  auto r2 = make("b");
  queue.try_push(r2, Priority::kNormal);
  EXPECT_FALSE(former.next(batch, microseconds(0)));
  idle = true;  // the busy worker finished: what has gathered goes now
  ASSERT_TRUE(former.next(batch, microseconds(0)));
  EXPECT_EQ(batch.size(), 2u);
}

// Several models: each model's rows wait in a batch of their own. Two models here, a batch of
// at most 4 rows, 1000 us max delay.
class FormerModels : public ::testing::Test {
 protected:
  void push(const std::string& id, uint16_t model) {
    auto r = make(id);
    r.model = model;
    ASSERT_EQ(queue_.try_push(r, Priority::kNormal), ScoringQueue::PushResult::kOk);
  }

  metrics::Registry registry_;
  ManualClock clock_;
  ScoringQueue queue_{{256, 0.8, 0.5}, clock_, registry_};
  BatchFormer former_{queue_, clock_, 4, microseconds(1000), nullptr, /*models=*/2};
};

TEST_F(FormerModels, KeepsEachModelsRowsInABatchOfTheirOwnAndFlushesTheOldestFirst) {
  push("a0", 0);
  clock_.advance(microseconds(100));
  push("b1", 1);
  push("c0", 0);
  clock_.advance(microseconds(899));
  std::vector<ScoreRequest> batch;
  EXPECT_FALSE(former_.next(batch, microseconds(0)));
  EXPECT_EQ(former_.pending(), 3u);
  clock_.advance(microseconds(1));  // a0 has waited 1000 us: model 0's batch, b1 stays
  ASSERT_TRUE(former_.next(batch, microseconds(0)));
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0].id, "a0");
  EXPECT_EQ(batch[1].id, "c0");
  EXPECT_EQ(former_.pending(), 1u);
  ASSERT_TRUE(former_.deadline().has_value());
  EXPECT_EQ(*former_.deadline(), clock_.now() + microseconds(100));  // b1's
  batch.clear();
  EXPECT_FALSE(former_.next(batch, microseconds(0)));
  clock_.advance(microseconds(100));
  ASSERT_TRUE(former_.next(batch, microseconds(0)));
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].id, "b1");
  EXPECT_EQ(batch[0].model, 1u);
}

TEST_F(FormerModels, AFullBatchOfOneModelGoesAtOnceAndTheOthersRowsWait) {
  push("first", 1);
  clock_.advance(microseconds(10));
  for (int i = 0; i < 5; ++i) push("m0-" + std::to_string(i), 0);
  std::vector<ScoreRequest> batch;
  ASSERT_TRUE(former_.next(batch, microseconds(0)));
  ASSERT_EQ(batch.size(), 4u);  // full: no waiting for the delay
  for (const auto& row : batch) EXPECT_EQ(row.model, 0u);
  batch.clear();
  EXPECT_FALSE(former_.next(batch, microseconds(0))) << "the rest is not due yet";
  EXPECT_EQ(former_.pending(), 2u);
  clock_.advance(microseconds(1000));
  ASSERT_TRUE(former_.next(batch, microseconds(0)));
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].id, "first");  // the oldest
}

TEST_F(FormerModels, AnotherModelsBacklogOfFullBatchesCannotHoldARowPastItsMaxDelay) {
  push("lone", 1);
  clock_.advance(microseconds(10));
  for (int i = 0; i < 40; ++i) push("backlog-" + std::to_string(i), 0);
  std::vector<ScoreRequest> batch;
  // While the lone row is within its delay, model 0's full batches go first.
  ASSERT_TRUE(former_.next(batch, microseconds(0)));
  EXPECT_EQ(batch.size(), 4u);
  EXPECT_EQ(batch[0].model, 0u);
  batch.clear();
  clock_.advance(microseconds(990));  // the lone row is due; model 0 still has full batches
  ASSERT_TRUE(former_.next(batch, microseconds(0)));
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].id, "lone");
}

// Batcher with worker threads and a fake model.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, ScoreOutcome> outcomes;
  Completion completion() {
    return [this](ScoreRequest& r, const ScoreOutcome& o) {
      std::lock_guard<std::mutex> lock(mu);
      EXPECT_TRUE(outcomes.emplace(r.id.str(), o).second) << "completed twice: " << r.id;
      cv.notify_all();
    };
  }
  bool wait_for(size_t n, milliseconds deadline = milliseconds(20000)) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, deadline, [&] { return outcomes.size() >= n; });
  }
};

struct BatcherTest : ::testing::Test {
  metrics::Registry registry;
  Collector collector;
  void push(ScoringQueue& q, ScoreRequest r) {
    r.done = collector.completion();
    while (q.try_push(r, Priority::kNormal) == ScoringQueue::PushResult::kFull) {
      std::this_thread::yield();
    }
  }
};

TEST_F(BatcherTest, ScoresEveryRequestExactlyOnceWithTheModelsScore) {
  // Logits -0.45 .. 0.45 (first feature 0 .. 9): scores 0.39 .. 0.61 on both sides of a
  // threshold that is not 0.5, so is_fraud must come from the model's own threshold.
  testing::FakeModelOptions opts;
  opts.bias = -1.9;
  opts.threshold = 0.52f;
  auto model = std::make_shared<testing::FakeModel>(opts);
  ScoringQueue q({256, 0.8, 0.5}, SteadyClock::instance(), registry);
  Batcher b({32, microseconds(500), 2}, q, model, SteadyClock::instance(), registry);
  b.start();
  constexpr int kN = 5000;
  for (int i = 0; i < kN; ++i)
    push(q, make("t" + std::to_string(i), 30, static_cast<float>(i % 10)));
  ASSERT_TRUE(collector.wait_for(kN));
  b.stop();
  int flagged = 0;
  for (int i = 0; i < kN; ++i) {
    const auto& o = collector.outcomes.at("t" + std::to_string(i));
    ASSERT_TRUE(o.status.ok()) << o.status.message();
    auto expected = make("x", 30, static_cast<float>(i % 10));
    EXPECT_FLOAT_EQ(o.score, testing::fake_score(expected.features.data(), 30, opts.bias));
    EXPECT_EQ(o.is_fraud, o.score >= opts.threshold) << "t" << i << " scored " << o.score;
    flagged += o.is_fraud;
    ASSERT_NE(o.model, nullptr);
    EXPECT_EQ(o.model->name, "fake");
  }
  EXPECT_EQ(flagged, kN * 4 / 10);  // first feature 6 .. 9 (0.51 at 5 is below 0.52)
  EXPECT_EQ(b.stats().scored(), static_cast<uint64_t>(kN));
  EXPECT_LE(model->max_batch_seen(), 32u);
  EXPECT_LT(model->forwards(), static_cast<uint64_t>(kN));  // batching happened
}

TEST_F(BatcherTest, ReasonCodesListAtMostEveryInputWhenTopKIsLargerThanTheModelsInputs) {
  testing::FakeModelOptions opts;
  opts.width = 5;
  opts.explains = true;
  auto model = std::make_shared<testing::FakeModel>(opts);
  ScoringQueue q({256, 0.8, 0.5}, SteadyClock::instance(), registry);
  BatcherConfig config{32, microseconds(500), 1};
  config.explain_top_k = 100;  // more than the 5 inputs: clamped to 5 on the stream
  Batcher b(config, q, model, SteadyClock::instance(), registry);
  b.start();
  ScoreRequest kafka = make("kafka", 5);
  kafka.features = {0.2f, 0.9f, -0.4f, 0.5f, 0.1f};
  push(q, std::move(kafka));
  ScoreRequest http = make("http", 5);  // an HTTP request asking for 2
  http.origin = Origin::kHttp;
  http.explain_top_k = 2;
  http.features = {0.2f, 0.9f, -0.4f, 0.5f, 0.1f};
  push(q, std::move(http));
  ASSERT_TRUE(collector.wait_for(2));
  b.stop();
  const std::vector<uint32_t> by_contribution = {1, 3, 0, 4, 2};
  const auto& all = collector.outcomes.at("kafka").reasons;
  ASSERT_EQ(all.size(), 5u);
  for (size_t j = 0; j < all.size(); ++j) EXPECT_EQ(all[j].input, by_contribution[j]);
  EXPECT_FLOAT_EQ(all[0].contribution, 0.09f);
  const auto& two = collector.outcomes.at("http").reasons;
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].input, 1u);
  EXPECT_EQ(two[1].input, 3u);
}

TEST_F(BatcherTest, FormsFullBatchesWhenRequestsAreAlreadyWaiting) {
  auto model = std::make_shared<testing::FakeModel>();
  ScoringQueue q({1024, 0.8, 0.5}, SteadyClock::instance(), registry);
  for (int i = 0; i < 256; ++i) push(q, make("t" + std::to_string(i)));
  Batcher b({64, microseconds(1'000'000), 1}, q, model, SteadyClock::instance(), registry);
  b.start();
  ASSERT_TRUE(collector.wait_for(256));
  b.stop();
  EXPECT_EQ(model->forwards(), 4u);  // 256 / 64, no partial batches despite the 1 s delay
}

TEST_F(BatcherTest, PoisonRowFailsAloneAndItsNeighboursAreScored) {
  testing::FakeModelOptions opts;
  opts.poison = -999.0f;
  auto model = std::make_shared<testing::FakeModel>(opts);
  ScoringQueue q({1024, 0.8, 0.5}, SteadyClock::instance(), registry);
  for (int i = 0; i < 10; ++i) push(q, make("t" + std::to_string(i), 30, i == 3 ? -999.0f : 1.0f));
  Batcher b({16, microseconds(1000), 1}, q, model, SteadyClock::instance(), registry);
  b.start();
  ASSERT_TRUE(collector.wait_for(10));
  b.stop();
  EXPECT_FALSE(collector.outcomes.at("t3").status.ok());
  EXPECT_NE(collector.outcomes.at("t3").status.message().find("poison"), std::string::npos);
  for (int i = 0; i < 10; ++i) {
    if (i != 3) {
      EXPECT_TRUE(collector.outcomes.at("t" + std::to_string(i)).status.ok());
    }
  }
  EXPECT_EQ(b.stats().failed_model(), 1u);
}

TEST_F(BatcherTest, RowOfTheWrongWidthFailsWithAClearReason) {
  auto model = std::make_shared<testing::FakeModel>();
  ScoringQueue q({64, 0.8, 0.5}, SteadyClock::instance(), registry);
  push(q, make("short", 29));
  push(q, make("ok", 30));
  Batcher b({16, microseconds(100), 1}, q, model, SteadyClock::instance(), registry);
  b.start();
  ASSERT_TRUE(collector.wait_for(2));
  b.stop();
  EXPECT_EQ(collector.outcomes.at("short").status.message(), "expected 30 features, got 29");
  EXPECT_TRUE(collector.outcomes.at("ok").status.ok());
}

TEST_F(BatcherTest, StopDrainsQueuedRequestsWithinTheGrace) {
  testing::FakeModelOptions opts;
  opts.delay = microseconds(2000);
  auto model = std::make_shared<testing::FakeModel>(opts);
  ScoringQueue q({1024, 0.8, 0.5}, SteadyClock::instance(), registry);
  for (int i = 0; i < 200; ++i) push(q, make("t" + std::to_string(i)));
  Batcher b({16, microseconds(100), 2}, q, model, SteadyClock::instance(), registry);
  b.start();
  b.stop(milliseconds(10000));
  ASSERT_EQ(collector.outcomes.size(), 200u);
  for (auto& [id, o] : collector.outcomes) EXPECT_TRUE(o.status.ok()) << id;
}

TEST_F(BatcherTest, StopPastTheGraceFailsWhatIsLeftInsteadOfDroppingIt) {
  testing::FakeModelOptions opts;
  opts.delay = microseconds(20000);
  auto model = std::make_shared<testing::FakeModel>(opts);
  ScoringQueue q({1024, 0.8, 0.5}, SteadyClock::instance(), registry);
  for (int i = 0; i < 100; ++i) push(q, make("t" + std::to_string(i)));
  Batcher b({4, microseconds(100), 1}, q, model, SteadyClock::instance(), registry);
  b.start();
  b.stop(milliseconds(0));
  ASSERT_EQ(collector.outcomes.size(), 100u);  // every request completed, one way or the other
  size_t shut = 0;
  for (auto& [id, o] : collector.outcomes) {
    if (!o.status.ok()) {
      EXPECT_EQ(o.status.message(), "server is shutting down");
      ++shut;
    }
  }
  EXPECT_GT(shut, 0u);
  EXPECT_EQ(b.stats().failed_shutdown(), shut);
}

TEST_F(BatcherTest, SwappedModelIsUsedForLaterBatches) {
  auto m1 = std::make_shared<testing::FakeModel>();
  testing::FakeModelOptions o2;
  o2.version = "2";
  auto m2 = std::make_shared<testing::FakeModel>(o2);
  ScoringQueue q({64, 0.8, 0.5}, SteadyClock::instance(), registry);
  Batcher b({8, microseconds(100), 1}, q, m1, SteadyClock::instance(), registry);
  b.start();
  push(q, make("before"));
  ASSERT_TRUE(collector.wait_for(1));
  b.swap_model(m2);
  EXPECT_EQ(b.model_info()->version, "2");
  push(q, make("after"));
  ASSERT_TRUE(collector.wait_for(2));
  b.stop();
  EXPECT_EQ(collector.outcomes.at("before").model->version, "1");
  EXPECT_EQ(collector.outcomes.at("after").model->version, "2");
}

TEST_F(BatcherTest, TwoModelsShareTheWorkersAndEachRowIsScoredByTheModelItNames) {
  testing::FakeModelOptions o1, o2;
  o1.name = "wide";
  o2.name = "narrow";
  o2.width = 5;
  o2.bias = 1.0;
  auto wide = std::make_shared<testing::FakeModel>(o1);
  auto narrow = std::make_shared<testing::FakeModel>(o2);
  struct Batches : BatchCompletion {
    std::mutex mu;
    std::vector<std::string> mixed;  // batches whose rows were not all of their model
    void complete(std::vector<ScoreRequest>& batch, const std::vector<ScoreOutcome>&,
                  const ModelInfo& model) override {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& r : batch) {
        if ((r.model == 0) != (model.name == "wide")) mixed.push_back(r.id.str());
      }
    }
  } batches;
  ScoringQueue q({4096, 0.8, 0.5}, SteadyClock::instance(), registry);
  Batcher b({16, microseconds(300), 2}, q, {wide, narrow}, SteadyClock::instance(), registry,
            &batches);
  ASSERT_EQ(b.model_count(), 2u);
  b.start();
  constexpr int kN = 2000;
  for (int i = 0; i < kN; ++i) {
    const bool second = i % 3 == 0;
    ScoreRequest r = make("t" + std::to_string(i), second ? 5 : 30, static_cast<float>(i % 7));
    r.model = second ? 1 : 0;
    push(q, std::move(r));
  }
  ASSERT_TRUE(collector.wait_for(kN));
  // A new version of one model leaves the other as it was.
  testing::FakeModelOptions o3 = o2;
  o3.version = "2";
  b.swap_model(std::make_shared<testing::FakeModel>(o3), 1);
  EXPECT_EQ(b.model_info(0)->version, "1");
  EXPECT_EQ(b.model_info(1)->version, "2");
  b.stop();
  EXPECT_TRUE(batches.mixed.empty()) << batches.mixed.size() << " rows in another model's batch";
  for (int i = 0; i < kN; ++i) {
    const bool second = i % 3 == 0;
    const auto& o = collector.outcomes.at("t" + std::to_string(i));
    ASSERT_TRUE(o.status.ok()) << o.status.message();
    ASSERT_NE(o.model, nullptr);
    EXPECT_EQ(o.model->name, second ? "narrow" : "wide");
    auto expected = make("x", second ? 5 : 30, static_cast<float>(i % 7));
    EXPECT_FLOAT_EQ(o.score, testing::fake_score(expected.features.data(), second ? 5 : 30,
                                                 second ? o2.bias : o1.bias));
  }
  EXPECT_EQ(wide->rows_scored() + narrow->rows_scored(), static_cast<uint64_t>(kN));
  EXPECT_EQ(narrow->rows_scored(), static_cast<uint64_t>((kN + 2) / 3));
  EXPECT_EQ(b.stats(1).scored(), narrow->rows_scored());
  EXPECT_EQ(b.figures().scored_kafka, static_cast<uint64_t>(kN)) << "both models' together";
  EXPECT_EQ(
      registry.counter("vigil_requests_scored_total", "", {{"origin", "kafka"}, {"model", "wide"}})
          .value(),
      wide->rows_scored());
  EXPECT_EQ(
      registry.counter("vigil_requests_scored_total", "", {{"origin", "http"}, {"model", "wide"}})
          .value(),
      0u);
}

// The inline lane (HTTP io threads): only while idle, only once a worker has timed the model
// fast, and completed exactly as a worker completes a batch.
TEST_F(BatcherTest, ScoresInlineOnTheCallersThreadOnlyWhileIdleAndOnceTheModelIsTimedFast) {
  auto model = std::make_shared<testing::FakeModel>();
  ScoringQueue q({256, 0.8, 0.5}, SteadyClock::instance(), registry);
  struct Seen : BatchCompletion {
    std::atomic<size_t> rows{0};
    std::thread::id thread;
    void complete(std::vector<ScoreRequest>& batch, const std::vector<ScoreOutcome>&,
                  const ModelInfo&) override {
      thread = std::this_thread::get_id();
      rows += batch.size();
    }
  } delivery;
  Batcher b({32, microseconds(0), 1}, q, model, SteadyClock::instance(), registry, &delivery);
  auto lane = b.make_inline_lane();
  std::vector<ScoreRequest> batch;
  auto fill = [&](const std::string& id) {
    batch.clear();
    ScoreRequest r = make(id, 30, 1.0f);
    r.done = collector.completion();
    batch.push_back(std::move(r));
  };
  fill("before-start");
  EXPECT_FALSE(b.try_score_inline(*lane, batch)) << "not started";
  b.start();
  EXPECT_FALSE(b.try_score_inline(*lane, batch)) << "the model has not been timed yet";
  ASSERT_EQ(batch.size(), 1u) << "a refused batch is left to the caller";
  push(q, make("timed-by-a-worker", 30, 1.0f));
  ASSERT_TRUE(collector.wait_for(1));
  ASSERT_TRUE(testing::wait_until([&] { return delivery.rows.load() == 1; }, milliseconds(5000)));
  fill("inline");
  ASSERT_TRUE(b.try_score_inline(*lane, batch));
  ASSERT_TRUE(collector.wait_for(2, milliseconds(0))) << "completed before it returned";
  EXPECT_TRUE(collector.outcomes.at("inline").status.ok());
  EXPECT_EQ(delivery.thread, std::this_thread::get_id()) << "delivered from the caller's thread";
  EXPECT_EQ(delivery.rows.load(), 2u);
  EXPECT_EQ(registry.counter("vigil_requests_scored_inline_total", "", {{"model", "fake"}}).value(),
            1u);
  b.stop();
  fill("after-stop");
  EXPECT_FALSE(b.try_score_inline(*lane, batch)) << "stopping";
}

TEST_F(BatcherTest, DoesNotScoreInlineAModelThatIsSlowOrNotTimedSinceASwap) {
  testing::FakeModelOptions slow;
  slow.delay = std::chrono::microseconds(3000);  // over the 1 ms bound
  auto model = std::make_shared<testing::FakeModel>(slow);
  ScoringQueue q({256, 0.8, 0.5}, SteadyClock::instance(), registry);
  Batcher b({32, microseconds(0), 1}, q, model, SteadyClock::instance(), registry);
  b.start();
  auto lane = b.make_inline_lane();
  push(q, make("timed-slow", 30, 1.0f));
  ASSERT_TRUE(collector.wait_for(1));
  std::vector<ScoreRequest> batch;
  batch.push_back(make("refused", 30, 1.0f));
  EXPECT_FALSE(b.try_score_inline(*lane, batch)) << "the last forward took 3 ms";
  // A fast model swapped in is timed again by a worker first.
  b.swap_model(std::make_shared<testing::FakeModel>());
  EXPECT_FALSE(b.try_score_inline(*lane, batch)) << "not timed since the swap";
  push(q, make("timed-fast", 30, 1.0f));
  ASSERT_TRUE(collector.wait_for(2));
  ASSERT_TRUE(
      testing::wait_until([&] { return b.worker_busy_since_ns()[0] == 0; }, milliseconds(5000)));
  batch.front().done = collector.completion();
  EXPECT_TRUE(b.try_score_inline(*lane, batch)) << "idle, and the new model is fast";
  b.stop();
}

TEST_F(BatcherTest, ReportsHowLongAWorkerHasBeenBusyForTheWatchdog) {
  testing::FakeModelOptions slow;
  slow.delay = std::chrono::milliseconds(300);
  auto model = std::make_shared<testing::FakeModel>(slow);
  ScoringQueue q({64, 0.8, 0.5}, SteadyClock::instance(), registry);
  Batcher b({8, microseconds(100), 1}, q, model, SteadyClock::instance(), registry);
  b.start();
  EXPECT_EQ(b.worker_busy_since_ns(), std::vector<int64_t>{0});  // idle
  push(q, make("slow"));
  const auto t0 = std::chrono::steady_clock::now();
  bool seen_busy = false;
  while (!seen_busy && std::chrono::steady_clock::now() - t0 < milliseconds(5000)) {
    seen_busy = b.worker_busy_since_ns()[0] != 0;  // during the 300 ms forward
  }
  ASSERT_TRUE(collector.wait_for(1));
  EXPECT_TRUE(seen_busy);
  b.stop();
  EXPECT_EQ(b.worker_busy_since_ns(), std::vector<int64_t>{0});
}

}  // namespace
}  // namespace vigil::scoring

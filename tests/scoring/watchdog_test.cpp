// The watchdog against a real batcher whose (fake) model takes longer than the stall limit,
// and, on a manual clock, one whose model never returns until the test lets it.
#include "scoring/watchdog.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "scoring/scoring_config.h"
#include "support/fake_model.h"
#include "support/wait.h"

namespace vigil::scoring {
namespace {

using std::chrono::milliseconds;

TEST(Watchdog, AWorkerBusyLongerThanTheStallLimitFailsReadinessUntilItFinishes) {
  metrics::Registry registry;
  ScoringQueue queue{{64, 0.8, 0.5}, SteadyClock::instance(), registry};
  testing::FakeModelOptions slow;
  slow.delay = milliseconds(600);
  Batcher batcher({8, std::chrono::microseconds(0), 1}, queue,
                  std::make_shared<testing::FakeModel>(slow), SteadyClock::instance(), registry);
  Watchdog watchdog(batcher, SteadyClock::instance(), milliseconds(150), registry,
                    milliseconds(20));
  batcher.start();
  watchdog.start();
  EXPECT_TRUE(watchdog.readiness_failures().empty());

  std::atomic<bool> done{false};
  ScoreRequest r;
  r.features.resize(30);
  r.origin = Origin::kHttp;
  r.done = [&](ScoreRequest&, const ScoreOutcome&) { done = true; };
  ASSERT_EQ(queue.try_push(r, Priority::kNormal), ScoringQueue::PushResult::kOk);

  ASSERT_TRUE(testing::wait_until([&] { return watchdog.stalled() == 1; }, milliseconds(2000)));
  ASSERT_EQ(watchdog.readiness_failures().size(), 1u);
  EXPECT_NE(watchdog.readiness_failures()[0].find("1 worker(s) stuck"), std::string::npos);
  EXPECT_EQ(registry.gauge("vigil_scoring_stalled_workers", "").value(), 1.0);

  ASSERT_TRUE(testing::wait_until([&] { return done.load(); }, milliseconds(5000)));
  ASSERT_TRUE(testing::wait_until([&] { return watchdog.stalled() == 0; }, milliseconds(2000)));
  EXPECT_TRUE(watchdog.readiness_failures().empty());
  watchdog.stop();
  batcher.stop(milliseconds(1000));
}

// A model whose forward pass blocks until release(): a hung worker, for as long as a test
// wants one.
class BlockingModel final : public Model {
 public:
  BlockingModel() {
    info_.name = "blocking";
    info_.version = "1";
    for (int i = 0; i < 30; ++i) info_.input_names.push_back("f" + std::to_string(i));
  }
  const ModelInfo& info() const override { return info_; }
  std::unique_ptr<ModelSession> new_session() override { return std::make_unique<Session>(*this); }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }

 private:
  class Session final : public ModelSession {
   public:
    explicit Session(BlockingModel& m) : m_(m) {}
    Status score(const float*, size_t rows, float* out) override {
      std::unique_lock<std::mutex> lock(m_.mu_);
      m_.cv_.wait(lock, [this] { return m_.released_; });
      for (size_t r = 0; r < rows; ++r) out[r] = 0.0f;
      return Status::Ok();
    }

   private:
    BlockingModel& m_;
  };

  ModelInfo info_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

// Releases the model when the test leaves, even on a failed ASSERT, so that the batcher
// (declared before it, destroyed after it) can join its worker.
struct ReleaseAtExit {
  BlockingModel& model;
  ~ReleaseAtExit() { model.release(); }
};

TEST(Watchdog, AWorkerBusyPastTheLivenessBoundFailsLivenessUntilItFinishes) {
  metrics::Registry registry;
  // Not at 0: a busy_since of 0 means "not in a batch".
  ManualClock clock{Clock::time_point(std::chrono::hours(1))};
  ScoringQueue queue{{64, 0.8, 0.5}, clock, registry};
  auto model = std::make_shared<BlockingModel>();
  Batcher batcher({8, std::chrono::microseconds(0), 1}, queue, model, clock, registry);
  Watchdog watchdog(batcher, clock, WatchdogLimits{milliseconds(1000), milliseconds(5000)},
                    registry);  // not started: the test calls check() itself
  ReleaseAtExit release_at_exit{*model};
  batcher.start();

  std::atomic<bool> done{false};
  ScoreRequest r;
  r.features.resize(30);
  r.origin = Origin::kHttp;
  r.done = [&](ScoreRequest&, const ScoreOutcome&) { done = true; };
  ASSERT_EQ(queue.try_push(r, Priority::kNormal), ScoringQueue::PushResult::kOk);
  ASSERT_TRUE(testing::wait_until([&] { return batcher.worker_busy_since_ns()[0] != 0; },
                                  milliseconds(5000)));

  watchdog.check();
  EXPECT_TRUE(watchdog.readiness_failures().empty());
  EXPECT_TRUE(watchdog.liveness_failures().empty());

  clock.advance(milliseconds(1001));  // stuck: not ready, still live
  watchdog.check();
  EXPECT_EQ(watchdog.readiness_failures().size(), 1u);
  EXPECT_TRUE(watchdog.liveness_failures().empty());

  clock.advance(milliseconds(3999));  // busy exactly the liveness bound: still live
  watchdog.check();
  EXPECT_TRUE(watchdog.liveness_failures().empty());
  EXPECT_EQ(watchdog.hung(), 0);

  clock.advance(milliseconds(1));  // past it: hung
  watchdog.check();
  EXPECT_EQ(watchdog.hung(), 1);
  const auto failures = watchdog.liveness_failures();
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_NE(failures[0].find("1 worker(s) hung (no progress for 5000 ms)"), std::string::npos)
      << failures[0];
  EXPECT_EQ(watchdog.readiness_failures().size(), 1u);  // not ready either
  EXPECT_EQ(registry.gauge("vigil_scoring_hung_workers", "").value(), 1.0);

  model->release();  // the batch completes: live and ready again
  ASSERT_TRUE(testing::wait_until([&] { return done.load(); }, milliseconds(5000)));
  ASSERT_TRUE(testing::wait_until([&] { return batcher.worker_busy_since_ns()[0] == 0; },
                                  milliseconds(5000)));
  watchdog.check();
  EXPECT_TRUE(watchdog.liveness_failures().empty());
  EXPECT_TRUE(watchdog.readiness_failures().empty());
  EXPECT_EQ(registry.gauge("vigil_scoring_hung_workers", "").value(), 0.0);
  batcher.stop(milliseconds(1000));
}

TEST(Watchdog, TheStallOnlyConstructorFailsLivenessAtSixTimesTheStall) {
  metrics::Registry registry;
  ManualClock clock{Clock::time_point(std::chrono::hours(1))};
  ScoringQueue queue{{64, 0.8, 0.5}, clock, registry};
  auto model = std::make_shared<BlockingModel>();
  Batcher batcher({8, std::chrono::microseconds(0), 1}, queue, model, clock, registry);
  Watchdog watchdog(batcher, clock, milliseconds(1000), registry);
  ReleaseAtExit release_at_exit{*model};
  batcher.start();
  ScoreRequest r;
  r.features.resize(30);
  r.origin = Origin::kHttp;
  r.done = [](ScoreRequest&, const ScoreOutcome&) {};
  ASSERT_EQ(queue.try_push(r, Priority::kNormal), ScoringQueue::PushResult::kOk);
  ASSERT_TRUE(testing::wait_until([&] { return batcher.worker_busy_since_ns()[0] != 0; },
                                  milliseconds(5000)));
  clock.advance(milliseconds(6000));
  watchdog.check();
  EXPECT_TRUE(watchdog.liveness_failures().empty());
  clock.advance(milliseconds(1));
  watchdog.check();
  EXPECT_EQ(watchdog.liveness_failures().size(), 1u);
  model->release();
  batcher.stop(milliseconds(1000));
}

TEST(Watchdog, TheLivenessBoundIsConfiguredAndMayNotBeBelowTheStallBound) {
  ScoringConfig config;
  EXPECT_EQ(config.watchdog().stall, milliseconds(10000));
  EXPECT_EQ(config.watchdog().liveness, milliseconds(60000));
  EXPECT_TRUE(config.validate().empty());
  config.watchdog_liveness = milliseconds(9999);
  const auto errors = config.validate();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "scoring.watchdog_liveness_ms must be >= scoring.watchdog_stall_ms");
}

}  // namespace
}  // namespace vigil::scoring

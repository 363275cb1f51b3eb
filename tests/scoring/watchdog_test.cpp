// The watchdog against a real batcher whose (fake) model takes longer than the stall limit.
#include "scoring/watchdog.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace vigil::scoring

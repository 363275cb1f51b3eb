// Every Kafka broker down for 10 s in the middle of the stream, then up again — driven over
// stdin of vigil-fault-harness, which owns the cluster, with vigil as a third process. No
// transaction may go missing; vigil stays live throughout, and its readiness shows the outage.
#include <gtest/gtest.h>

#include "faults/fault_fixture.h"
#include "support/wait.h"

namespace vigil::faults {
namespace {

using steady = std::chrono::steady_clock;

constexpr size_t kEvents = 40000;
constexpr double kRate = 2000;  // events/s: the stream lasts 20 s
constexpr double kOutageAfter = 6000;
constexpr milliseconds kOutage{10000};

class BrokerOutageFaultTest : public FaultTest {
 protected:
  void SetUp() override {
    FaultTest::SetUp();
    testing::ProcessOptions po;
    po.log_path = dir_ + "/harness.log";
    po.pipe_stdin = po.pipe_stdout = true;
    auto h = testing::Process::Spawn(harness_binary(),
                                     {"--brokers", "3", "--topic", "transactions:12", "--topic",
                                      "scores:12", "--topic", "transactions.dlq:12"},
                                     po);
    ASSERT_TRUE(h.ok()) << h.error();
    harness_ = std::move(h.value());
    auto line = harness_->read_line(milliseconds(10000));
    ASSERT_TRUE(line.ok() && line->rfind("bootstrap ", 0) == 0)
        << (line.ok() ? *line : line.error()) << "\n"
        << harness_->log_tail();
    bootstrap_ = line->substr(10);
  }

  void command(const std::string& line) {
    ASSERT_TRUE(harness_->write_line(line).ok());
    auto answer = harness_->read_line(milliseconds(5000));
    ASSERT_TRUE(answer.ok()) << answer.error();
    ASSERT_EQ(*answer, "ok") << line;
  }

  std::unique_ptr<testing::Process> harness_;
  std::string bootstrap_;
};

TEST_F(BrokerOutageFaultTest, AllBrokersDownTenSecondsMidStreamLosesNothingAndVigilStaysLive) {
  const Records events = make_events(ref_, "b-", 0, kEvents);
  VigilOptions options;
  options.bootstrap = bootstrap_;
  auto vigil = start_vigil("vigil", options);
  ASSERT_NE(vigil, nullptr);
  ASSERT_TRUE(testing::wait_until([&] { return vigil->ready(); }, milliseconds(60000)))
      << vigil->log_tail();
  PacedProducer producer(bootstrap_, "transactions", events, kRate);
  ASSERT_TRUE(testing::wait_until([&] { return vigil->scores_delivered() >= kOutageAfter; },
                                  milliseconds(60000)))
      << vigil->log_tail();

  command("down all");
  const auto down_at = steady::now();
  const size_t produced_at_down = producer.produced();
  // Through the outage: /health must answer 200 every time; /ready should turn 503.
  size_t health_checks = 0, health_failures = 0;
  std::optional<milliseconds> not_ready_after;
  std::string not_ready_body;
  while (steady::now() - down_at < kOutage) {
    auto [health, health_body] = vigil->get("/health");
    ++health_checks;
    if (health != 200) {
      ++health_failures;
      ADD_FAILURE() << "/health answered " << health << ": " << health_body;
    }
    auto [ready, ready_body] = vigil->get("/ready");
    if (ready == 503 && !not_ready_after) {
      not_ready_after = std::chrono::duration_cast<milliseconds>(steady::now() - down_at);
      not_ready_body = ready_body;
    }
    std::this_thread::sleep_for(milliseconds(200));  // sampling the outage is the point here
  }
  const double scored_at_up = vigil->scores_delivered();
  command("up all");
  const std::string ready_note =
      not_ready_after
          ? "after " + std::to_string(not_ready_after->count()) + " ms: " + not_ready_body
          : "never during the outage";
  std::printf(
      "[ faults ] brokers down 10 s: %zu of %zu events produced at the outage; /health "
      "200 in %zu/%zu checks; /ready 503 %s\n",
      produced_at_down, kEvents, health_checks - health_failures, health_checks,
      ready_note.c_str());
  EXPECT_TRUE(not_ready_after.has_value())
      << "readiness never reflected the outage within " << kOutage.count() << " ms";
  if (not_ready_after) {
    EXPECT_NE(not_ready_body.find("kafka"), std::string::npos) << not_ready_body;
  }

  ASSERT_TRUE(producer.wait_done(milliseconds(120000)).ok());
  TopicWatcher watcher(bootstrap_, "scores");
  EXPECT_TRUE(watcher.wait_for_keys([](size_t n) { return n >= kEvents; }, milliseconds(120000)))
      << watcher.distinct_keys() << " of " << kEvents << " scored; log:\n"
      << vigil->log_tail();
  EXPECT_TRUE(testing::wait_until([&] { return vigil->ready(); }, milliseconds(30000)))
      << vigil->get("/ready").second;
  EXPECT_GT(vigil->scores_delivered(), scored_at_up) << "scoring did not resume";
  stop_all({vigil.get()});

  Tally t = tally("all brokers down 10 s mid-stream", bootstrap_, events);
  expect_every_input_scored(t, kEvents);

  ASSERT_TRUE(harness_->write_line("quit").ok());
  auto st = harness_->wait(milliseconds(10000));
  EXPECT_TRUE(st.has_value() && st->ok());
}

TEST_F(BrokerOutageFaultTest, BrokersDownAtStartUpVigilWaitsNotReadyAndConsumesOnceTheyReturn) {
  command("down all");
  constexpr size_t kStartupEvents = 2000;
  const Records events = make_events(ref_, "s-", 0, kStartupEvents);
  VigilOptions options;
  options.bootstrap = bootstrap_;
  options.extra_flags = {"--kafka.startup_timeout_ms=60000"};
  auto vigil = start_vigil("vigil", options);  // returns once the side-port is up
  ASSERT_NE(vigil, nullptr);

  // Start-up waits for the brokers: live, not ready, saying why, and it does not exit.
  const auto start = steady::now();
  size_t checks = 0;
  while (steady::now() - start < milliseconds(5000)) {
    auto [health, health_body] = vigil->get("/health");
    EXPECT_EQ(health, 200) << health_body;
    auto [ready, ready_body] = vigil->get("/ready");
    EXPECT_EQ(ready, 503) << ready_body;
    EXPECT_NE(ready_body.find("waiting for the brokers"), std::string::npos) << ready_body;
    ++checks;
    std::this_thread::sleep_for(milliseconds(250));  // sampling the wait is the point here
  }
  ASSERT_FALSE(vigil->process().wait(milliseconds(0)).has_value())
      << "vigil exited while the brokers were down:\n"
      << vigil->log_tail();

  command("up all");
  const auto up_at = steady::now();
  ASSERT_TRUE(testing::wait_until([&] { return vigil->ready(); }, milliseconds(60000)))
      << vigil->get("/ready").second << "\n"
      << vigil->log_tail();
  const auto ready_after = std::chrono::duration_cast<milliseconds>(steady::now() - up_at);
  std::printf(
      "[ faults ] brokers down at start-up: /health 200 and /ready 503 in %zu checks over 5 s; "
      "ready %lld ms after the brokers came up\n",
      checks, static_cast<long long>(ready_after.count()));

  PacedProducer producer(bootstrap_, "transactions", events, 2000);
  ASSERT_TRUE(producer.wait_done(milliseconds(60000)).ok());
  TopicWatcher watcher(bootstrap_, "scores");
  EXPECT_TRUE(
      watcher.wait_for_keys([](size_t n) { return n >= kStartupEvents; }, milliseconds(60000)))
      << watcher.distinct_keys() << " of " << kStartupEvents << " scored";
  stop_all({vigil.get()});
  Tally t = tally("brokers down at start-up", bootstrap_, events);
  EXPECT_EQ(t.scored, kStartupEvents);
  EXPECT_EQ(t.missing, 0u);
}

TEST_F(BrokerOutageFaultTest, BrokersUnreachableForTheWholeStartupTimeoutVigilExitsWithTheCause) {
  command("down all");
  VigilOptions options;
  options.bootstrap = bootstrap_;
  options.extra_flags = {"--kafka.startup_timeout_ms=2000"};
  auto vigil = start_vigil("vigil", options);
  ASSERT_NE(vigil, nullptr);
  auto exit = vigil->process().wait(milliseconds(30000));
  ASSERT_TRUE(exit.has_value()) << "vigil kept running past its start-up timeout";
  EXPECT_TRUE(exit->exited && exit->code == 1) << exit->to_string();
  EXPECT_NE(vigil->log_tail().find("unreachable for 2000 ms"), std::string::npos)
      << vigil->log_tail();
  command("up all");
}

}  // namespace
}  // namespace vigil::faults

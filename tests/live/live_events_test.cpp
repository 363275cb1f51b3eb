// LiveEvents without sockets: what an update says about its inputs between two updates, the
// bounded mailbox of a subscriber that does not take its frames, and the end of a stream.
#include "live/live_events.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <initializer_list>
#include <mutex>
#include <thread>

namespace vigil::live {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

http::HttpConfig config(size_t max_subscribers = 4) {
  http::HttpConfig c;
  c.max_event_subscribers = max_subscribers;
  return c;
}

// The components' figures as the tests set them; each input reads them under a lock, as the
// update thread reads the real ones.
struct FakeFigures {
  std::mutex mutex;
  consumers::KafkaSourceStats::Figures consumer;
  scoring::ScoringStats::Figures scoring;
  delivery::DeliveryStats::Figures delivery;
  http::HttpStats::Figures http;
  std::shared_ptr<const scoring::ModelInfo> model;

  Inputs inputs() {
    Inputs in;
    in.consumer = [this] { return read(consumer); };
    in.scoring = [this] { return read(scoring); };
    in.delivery = [this] { return read(delivery); };
    in.http = [this] { return read(http); };
    in.model = [this] { return read(model); };
    return in;
  }
  template <class T>
  T read(const T& figures) {
    std::lock_guard<std::mutex> lock(mutex);
    return figures;
  }
};

// A histogram's snapshot after `observations`.
metrics::Histogram::Snapshot observed(metrics::Histogram& h,
                                      std::initializer_list<std::pair<double, int>> observations) {
  for (const auto& [value, times] : observations) {
    for (int i = 0; i < times; ++i) h.observe(value);
  }
  return h.snapshot();
}

TEST(LiveEventsTest, AnUpdateReportsRatesAndPercentilesOfTheIntervalSinceTheLastOne) {
  metrics::Registry registry;
  FakeFigures f;
  metrics::Histogram e2e({0.001, 0.002, 0.004, 0.008});
  f.scoring.scored_kafka = 1000;
  f.delivery.end_to_end = observed(e2e, {{0.0070, 100}});  // before the first update: not counted
  LiveEvents live(config(), f.inputs(), registry);
  live.publish_update();
  std::this_thread::sleep_for(milliseconds(200));
  {
    std::lock_guard<std::mutex> lock(f.mutex);
    f.scoring.scored_kafka = 1400;
    f.scoring.scored_http = 100;
    f.consumer.consumed = 400;
    f.consumer.assigned_partitions = 4;
    f.consumer.paused_partitions = 1;
    f.consumer.lag = 42;
    f.delivery.dead_letters = {{"decode_error", 3}};
    f.delivery.end_to_end = observed(e2e, {{0.0015, 98}, {0.0035, 2}});
  }
  const json::object u = json::parse(live.publish_update()).as_object();
  const double seconds = u.at("interval_s").to_number<double>();
  EXPECT_GE(seconds, 0.19);
  EXPECT_NEAR(u.at("scored_per_s").to_number<double>(), 500 / seconds, 500 / seconds * 0.02);
  EXPECT_NEAR(u.at("scored_http_per_s").to_number<double>(), 100 / seconds, 100 / seconds * 0.02);
  EXPECT_EQ(u.at("scored_total").to_number<double>(), 1500.0);
  EXPECT_NEAR(u.at("events_in_per_s").to_number<double>(), 400 / seconds, 400 / seconds * 0.02);
  EXPECT_NEAR(u.at("dead_letters_per_s").at("decode_error").to_number<double>(), 3 / seconds, 0.5);
  EXPECT_EQ(u.at("dead_letters_total").to_number<double>(), 3.0);
  EXPECT_EQ(u.at("partitions").at("assigned").to_number<double>(), 4.0);
  EXPECT_EQ(u.at("partitions").at("paused").to_number<double>(), 1.0);
  EXPECT_EQ(u.at("consumer_lag").to_number<double>(), 42.0);
  // 100 observations of the interval: p50 within (1, 2] ms, p99 within (2, 4] ms.
  const auto& ms = u.at("end_to_end_ms").as_object();
  EXPECT_EQ(ms.at("count").to_number<double>(), 100.0);
  EXPECT_GT(ms.at("p50").to_number<double>(), 1.0);
  EXPECT_LE(ms.at("p50").to_number<double>(), 2.0);
  EXPECT_GT(ms.at("p99").to_number<double>(), 2.0);
  EXPECT_LE(ms.at("p99").to_number<double>(), 4.0);
  EXPECT_TRUE(u.at("model").is_null());
  EXPECT_TRUE(u.at("http_ms").at("p99").is_null()) << "no HTTP requests: no percentile";
}

TEST(LiveEventsTest, AComponentThatIsOffShowsZeroesAndTheModelShownNamesNoPath) {
  metrics::Registry registry;
  auto model = std::make_shared<scoring::ModelInfo>();
  model->name = "fraud";
  model->version = "3";
  model->path = "/srv/secret-models/fraud/3/model.pt";
  Inputs in;  // no Kafka, no side-port, no delivery figures
  in.model = [model] { return model; };
  LiveEvents live(config(), std::move(in), registry);
  const std::string update = live.publish_update();
  const json::object u = json::parse(update).as_object();
  EXPECT_EQ(u.at("events_in_per_s").to_number<double>(), 0.0);
  EXPECT_EQ(u.at("queue").at("capacity").to_number<double>(), 0.0);
  EXPECT_EQ(u.at("model").at("version").as_string(), "3");
  EXPECT_EQ(update.find("secret-models"), std::string::npos) << update;
}

TEST(LiveEventsTest, ASubscriberThatDoesNotTakeItsFramesKeepsTheNewestAndIsToldWhatItLost) {
  metrics::Registry registry;
  int wakes = 0;  // before `live`: its destructor ends the subscriber, which wakes it once more
  LiveEvents live(config(), Inputs{}, registry);
  auto s = live.subscribe([&] { ++wakes; });
  ASSERT_NE(s, nullptr);
  std::string frame;
  while (s->take(frame)) {
  }  // the greeting; now it waits, so the next frame wakes it once
  for (size_t i = 0; i < LiveEvents::kMailboxMessages + 5; ++i) live.publish_update();
  EXPECT_EQ(wakes, 1);
  ASSERT_TRUE(s->take(frame));
  EXPECT_EQ(frame.rfind("event: dropped\ndata: {\"dropped\":5,", 0), 0u) << frame;
  size_t kept = 0;
  while (s->take(frame)) ++kept;
  EXPECT_EQ(kept, LiveEvents::kMailboxMessages);
  EXPECT_EQ(registry.counter("vigil_http_event_updates_dropped_total", "").value(), 5.0);
}

TEST(LiveEventsTest, SubscribersAreBoundedAndStopEndsEveryStreamWithALastFrame) {
  metrics::Registry registry;
  LiveEvents live(config(2), Inputs{}, registry);
  auto a = live.subscribe([] {});
  auto b = live.subscribe([] {});
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(live.subscribe([] {}), nullptr) << "a third stream over the bound of 2";
  live.unsubscribe(b);
  EXPECT_NE(live.subscribe([] {}), nullptr) << "a slot freed by unsubscribe";
  live.stop();
  std::string frame, last;
  while (a->take(frame)) last = frame;
  EXPECT_EQ(last, "event: end\ndata: {\"why\":\"vigil is shutting down\"}\n\n");
  EXPECT_TRUE(a->finished());
  EXPECT_EQ(live.subscribe([] {}), nullptr) << "stopped";
}

TEST(LiveEventsTest, EveryFlaggedRowCountsInTheTotalWhileUpdatesReadTheShownList) {
  metrics::Registry registry;
  LiveEvents live(config(), Inputs{}, registry);
  const auto model = std::make_shared<const scoring::ModelInfo>();
  constexpr int kWorkers = 2, kRowsEach = 20000;
  std::atomic<int> running{kWorkers};
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      scoring::ScoreRequest request;
      request.id = InlineString("row-" + std::to_string(w));
      scoring::ScoreOutcome outcome;
      outcome.score = 0.99f;
      for (int i = 0; i < kRowsEach; ++i) live.flagged(request, outcome, *model);
      running.fetch_sub(1);
    });
  }
  // Updates copy the shown list meanwhile: the workers find its lock taken now and then.
  while (running.load() > 0) live.publish_update();
  for (auto& t : workers) t.join();
  const json::object u = json::parse(live.publish_update()).as_object();
  EXPECT_EQ(u.at("high_scores_total").to_number<double>(), double(kWorkers) * kRowsEach);
  EXPECT_EQ(u.at("high_scores").as_array().size(), LiveEvents::kHighScoresShown);
}

}  // namespace
}  // namespace vigil::live

// LiveEvents without sockets: what an update says about the registry between two updates, the
// bounded mailbox of a subscriber that does not take its frames, and the end of a stream.
#include "http/live_events.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <thread>

namespace vigil::http {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

HttpConfig config(size_t max_subscribers = 4) {
  HttpConfig c;
  c.max_event_subscribers = max_subscribers;
  return c;
}

TEST(LiveEventsTest, AnUpdateReportsRatesAndPercentilesOfTheIntervalSinceTheLastOne) {
  metrics::Registry registry;
  auto& scored = registry.counter("vigil_requests_scored_total", "", {{"origin", "kafka"}});
  auto& e2e = registry.histogram("vigil_end_to_end_seconds", "", {0.001, 0.002, 0.004, 0.008});
  auto& dlq = registry.counter("vigil_kafka_dead_lettered_total", "", {{"reason", "decode_error"}});
  auto& consumed = registry.counter("vigil_kafka_consumed_total", "");  // no labels
  LiveEvents live(config(), registry, [] { return nullptr; });
  scored.inc(1000);
  for (int i = 0; i < 100; ++i) e2e.observe(0.0070);  // before the first update: not counted
  live.publish_update();
  std::this_thread::sleep_for(milliseconds(200));
  scored.inc(500);
  consumed.inc(400);
  dlq.inc(3);
  for (int i = 0; i < 98; ++i) e2e.observe(0.0015);
  e2e.observe(0.0035);
  e2e.observe(0.0035);
  const json::object u = json::parse(live.publish_update()).as_object();
  const double seconds = u.at("interval_s").to_number<double>();
  EXPECT_GE(seconds, 0.19);
  EXPECT_NEAR(u.at("scored_per_s").to_number<double>(), 500 / seconds, 500 / seconds * 0.02);
  EXPECT_EQ(u.at("scored_total").to_number<double>(), 1500.0);
  EXPECT_NEAR(u.at("events_in_per_s").to_number<double>(), 400 / seconds, 400 / seconds * 0.02);
  EXPECT_NEAR(u.at("dead_letters_per_s").at("decode_error").to_number<double>(), 3 / seconds, 0.5);
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

TEST(LiveEventsTest, ASubscriberThatDoesNotTakeItsFramesKeepsTheNewestAndIsToldWhatItLost) {
  metrics::Registry registry;
  int wakes = 0;  // before `live`: its destructor ends the subscriber, which wakes it once more
  LiveEvents live(config(), registry, [] { return nullptr; });
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
  LiveEvents live(config(2), registry, [] { return nullptr; });
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

}  // namespace
}  // namespace vigil::http

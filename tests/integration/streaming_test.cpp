// The streaming path end to end, in-process: embedded Kafka (librdkafka mock cluster) over
// TCP, a real redis-server on loopback, and the real Service wiring (consumer, queue,
// batcher, model, Kafka and Redis sinks, offset commits).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <thread>

#include "app/service.h"
#include "kafka/embedded_cluster.h"
#include "support/fake_model.h"
#include "support/http_client.h"
#include "support/kafka_test_util.h"
#include "support/redis_server.h"
#include "support/service_config.h"
#include "support/service_fixture.h"
#include "support/wait.h"

namespace vigil {
namespace {

using std::chrono::milliseconds;
using testing::TestRecord;

class StreamingTest : public testing::ServiceFixture {
 protected:
  void SetUp() override {
    start_cluster_and_redis({{"transactions", 6}, {"scores", 6}, {"transactions.dlq", 6}});
  }

  config::AppConfig config() const {
    config::AppConfig c = base_config();
    c.kafka.commit_interval = milliseconds(200);
    c.redis.ttl_s = 3600;
    c.scoring.workers = 2;
    return c;
  }

  std::unique_ptr<app::Service> start(const config::AppConfig& c,
                                      std::shared_ptr<scoring::Model> model = nullptr) {
    return start_service(c, {std::move(model), nullptr});
  }

  // Produces events it-<prefix>-<i> for i in [from, to), row i of the reference.
  // Features alternate between the named-object and the array shape unless `arrays_only`.
  void produce(const std::string& prefix, size_t from, size_t to, bool arrays_only = false) {
    std::vector<std::pair<std::string, std::string>> recs;
    for (size_t i = from; i < to; ++i) {
      const std::string id = prefix + std::to_string(i);
      recs.emplace_back(id, testing::reference_event(ref_, i, id, !arrays_only && i % 2 == 0));
    }
    ASSERT_TRUE(testing::produce_all(cluster_->bootstrap(), "transactions", recs).ok());
  }
};

TEST_F(StreamingTest, EveryEventGivesOneScoreEqualToTheReferenceOnTheTopicAndInRedis) {
  constexpr size_t kEvents = 20000;
  produce("e-", 0, kEvents);
  auto service = start(config());
  ASSERT_NE(service, nullptr);
  auto scores =
      testing::read_distinct_keys(cluster_->bootstrap(), "scores", kEvents, milliseconds(120000));
  std::map<std::string, std::string> by_id;
  for (const auto& r : scores) by_id[r.key] = r.value;
  ASSERT_EQ(by_id.size(), kEvents);
  EXPECT_EQ(scores.size(), kEvents) << "duplicates on the scores topic";
  double max_diff = 0.0;
  for (size_t i = 0; i < kEvents; ++i) {
    const std::string id = "e-" + std::to_string(i);
    auto it = by_id.find(id);
    ASSERT_NE(it, by_id.end()) << id;
    EXPECT_EQ(testing::json_string(it->second, "transaction_id"), id);
    EXPECT_EQ(testing::json_string(it->second, "model_name"), "fraud_mlp");
    const double score = testing::json_number(it->second, "score");
    max_diff = std::max(max_diff, std::fabs(score - ref_.scores[i % ref_.scores.size()]));
  }
  EXPECT_LE(max_diff, 1e-5);

  // Redis holds the same JSON under vigil:score:<id>, with a TTL.
  ASSERT_TRUE(testing::wait_until([&] { return service->redis()->stats().written() >= kEvents; },
                                  milliseconds(30000)));
  auto client = testing::RedisClient::Connect(*redis_);
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client->dbsize().value(), static_cast<long long>(kEvents));
  for (size_t i : {size_t{0}, size_t{1}, size_t{777}, kEvents - 1}) {
    const std::string id = "e-" + std::to_string(i);
    auto v = client->get("vigil:score:" + id);
    ASSERT_TRUE(v.ok() && v->has_value()) << id;
    EXPECT_EQ(**v, by_id[id]);
    auto ttl = client->ttl("vigil:score:" + id);
    EXPECT_GT(ttl.value(), 0);
    EXPECT_LE(ttl.value(), 3600);
  }
  service->stop();
}

TEST_F(StreamingTest, MalformedEventsGoToTheDeadLetterTopicWithTheirReasonAndNothingIsLost) {
  std::vector<std::pair<std::string, std::string>> recs;
  recs.emplace_back("ok-1", testing::reference_event(ref_, 1, "ok-1", true));
  recs.emplace_back("bad-json", "{\"transaction_id\":\"bad-json\",\"features\":[1,2");
  std::string missing = testing::reference_event(ref_, 2, "bad-missing", true);
  missing.replace(missing.find("\"V3\":"), 5, "\"VX\":");  // V3 missing, VX unknown
  recs.emplace_back("bad-missing", missing);
  std::string nan = testing::reference_event(ref_, 3, "bad-nan", false);
  nan.replace(nan.find('[') + 1, 0, "NaN,");
  nan.erase(nan.rfind(','));  // keep 30 values
  nan += "]}";
  recs.emplace_back("bad-nan", nan);
  std::string type = testing::reference_event(ref_, 4, "bad-type", true);
  type.replace(type.find("\"Amount\":") + 9, 0, "\"");
  type.replace(type.rfind('}'), 0, "\"");
  recs.emplace_back("bad-type", type);
  recs.emplace_back("bad-big",
                    "{\"transaction_id\":\"bad-big\",\"pad\":\"" + std::string(70000, 'x') + "\"}");
  recs.emplace_back("ok-2", testing::reference_event(ref_, 5, "ok-2", false));
  ASSERT_TRUE(testing::produce_all(cluster_->bootstrap(), "transactions", recs).ok());

  auto service = start(config());
  ASSERT_NE(service, nullptr);
  auto dlq = testing::read_distinct_keys(cluster_->bootstrap(), "transactions.dlq", 5,
                                         milliseconds(60000));
  auto scores =
      testing::read_distinct_keys(cluster_->bootstrap(), "scores", 2, milliseconds(30000));
  std::map<std::string, TestRecord> by_key;
  for (const auto& r : dlq) by_key[r.key] = r;
  ASSERT_EQ(by_key.size(), 5u);
  EXPECT_EQ(by_key["bad-json"].headers["vigil.error"], "malformed_json");
  EXPECT_EQ(by_key["bad-missing"].headers["vigil.error"], "unknown_feature");
  EXPECT_NE(by_key["bad-missing"].headers["vigil.error_message"].find("'VX'"), std::string::npos);
  EXPECT_EQ(by_key["bad-nan"].headers["vigil.error"], "non_finite");
  EXPECT_EQ(by_key["bad-type"].headers["vigil.error"], "wrong_type");
  EXPECT_NE(by_key["bad-type"].headers["vigil.error_message"].find("'Amount'"), std::string::npos);
  EXPECT_EQ(by_key["bad-big"].headers["vigil.error"], "too_large");
  // The original value and its source position travel with the dead letter.
  EXPECT_EQ(by_key["bad-json"].value, recs[1].second);
  EXPECT_EQ(by_key["bad-json"].headers["vigil.source_topic"], "transactions");
  EXPECT_FALSE(by_key["bad-json"].headers["vigil.source_offset"].empty());
  std::set<std::string> scored;
  for (const auto& r : scores) scored.insert(r.key);
  EXPECT_EQ(scored, (std::set<std::string>{"ok-1", "ok-2"}));
  // Dead-lettered records are committed like scored ones: the whole input is accounted for.
  ASSERT_TRUE(testing::wait_until([&] { return service->source()->offsets().in_flight() == 0; },
                                  milliseconds(10000)));
  service->stop();
}

TEST_F(StreamingTest, CleanStopMidStreamAndRestartScoresEveryEventExactlyOnce) {
  constexpr size_t kEvents = 12000;
  produce("r-", 0, kEvents);
  auto cfg = config();
  cfg.scoring.max_batch_size = 32;  // slower draining so the stop lands mid-stream
  // A graceful stop scores what is queued: a small queue keeps the consumer from reading the
  // whole stream ahead into it, which (fast enough) made the stop land after the last event.
  cfg.scoring.queue_capacity = 512;
  auto first = start(cfg);
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(testing::wait_until([&] { return first->batcher().stats().scored() >= kEvents / 4; },
                                  milliseconds(60000)));
  first->stop();
  const uint64_t scored_first = first->batcher().stats().scored();
  // No partition's position moved back (librdkafka 2.0 restarts a fetcher that is resumed
  // without being paused from where it started: records consumed twice).
  EXPECT_EQ(first->registry().counter("vigil_kafka_offset_regressions_total", "").value(), 0u);
  first.reset();
  EXPECT_LT(scored_first, kEvents) << "stop did not land mid-stream";

  auto second = start(cfg);
  ASSERT_NE(second, nullptr);
  auto scores =
      testing::read_distinct_keys(cluster_->bootstrap(), "scores", kEvents, milliseconds(120000));
  std::map<std::string, int> count;
  std::map<std::string, std::string> first_value;
  size_t identical = 0;  // the same record twice: a produce retried, not an offset replayed
  for (const auto& r : scores) {
    if (++count[r.key] == 1) {
      first_value[r.key] = r.value;
    } else if (first_value[r.key] == r.value) {
      ++identical;
    }
  }
  EXPECT_EQ(count.size(), kEvents);
  size_t duplicates = 0;
  for (const auto& [k, n] : count) duplicates += n - 1;
  EXPECT_EQ(duplicates, 0u) << identical << " of them identical records (a produce retried), "
                            << duplicates - identical << " scored again (offsets replayed)";
  second->stop();
  EXPECT_EQ(second->registry().counter("vigil_kafka_offset_regressions_total", "").value(), 0u);
  std::printf(
      "[ summary ] inputs %zu, scored first run %llu, distinct scores %zu, duplicates %zu\n",
      kEvents, static_cast<unsigned long long>(scored_first), count.size(), duplicates);
}

TEST_F(StreamingTest, SlowModelWithASmallQueuePausesTheConsumerAndStillScoresEverything) {
  constexpr size_t kEvents = 3000;
  produce("s-", 0, kEvents, /*arrays_only=*/true);  // the fake model's inputs are f0..f29
  auto cfg = config();
  cfg.scoring.queue_capacity = 64;
  cfg.scoring.max_batch_size = 16;
  cfg.scoring.workers = 1;
  cfg.redis.url = "";
  testing::FakeModelOptions slow;
  slow.delay = std::chrono::microseconds(2000);
  auto model = std::make_shared<testing::FakeModel>(slow);
  auto service = start(cfg, model);
  ASSERT_NE(service, nullptr);
  // Memory is bounded by the queue, not by the topic: records taken from Kafka and not yet
  // delivered (each holds its librdkafka message) are at most one consume call's worth
  // (KafkaSource takes 500 at most), the queue, the batch on the worker and the scores of the
  // last few batches on their way to Kafka (linger 1 ms), while the topic holds 3000. Sampled
  // under the tracker's lock, every few ms until everything is scored.
  ASSERT_NE(service->source(), nullptr);
  const size_t bound = cfg.scoring.queue_capacity + 500 + 5 * cfg.scoring.max_batch_size;
  size_t max_in_flight = 0;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        max_in_flight = std::max(max_in_flight, service->source()->offsets().in_flight());
        return service->batcher().stats().scored() >= kEvents;
      },
      milliseconds(120000)));
  EXPECT_LE(max_in_flight, bound) << "records consumed and not yet delivered";
  EXPECT_GE(max_in_flight, cfg.scoring.queue_capacity) << "the samples never saw the queue full";
  EXPECT_GT(service->source()->stats().pauses_.value(), 0u);
  auto scores =
      testing::read_distinct_keys(cluster_->bootstrap(), "scores", kEvents, milliseconds(60000));
  std::set<std::string> ids;
  for (const auto& r : scores) ids.insert(r.key);
  EXPECT_EQ(ids.size(), kEvents);
  service->stop();
}

TEST_F(StreamingTest, AWorkerHungPastTheLivenessBoundFailsHealthSoThePodIsRestarted) {
  // A hung worker freezes the commits of its partitions: readiness alone would leave the pod
  // running forever. Past scoring.watchdog_liveness_ms, /health and /v2/health/live answer 503
  // naming it; once the worker is back they answer 200 again.
  auto cfg = config();
  cfg.redis.url = "";
  cfg.scoring.workers = 1;
  cfg.scoring.watchdog_stall = milliseconds(200);
  cfg.scoring.watchdog_liveness = milliseconds(600);
  testing::enable_test_http(cfg);
  testing::FakeModelOptions hang;
  hang.delay = std::chrono::milliseconds(3000);  // one forward far past the liveness bound
  auto service = start(cfg, std::make_shared<testing::FakeModel>(hang));
  ASSERT_NE(service, nullptr);
  const auto port = static_cast<uint16_t>(service->http_port());
  auto status_of = [&](const char* target) {
    testing::HttpClient http(port);
    return http.request(boost::beast::http::verb::get, target).result_int();
  };
  EXPECT_EQ(status_of("/health"), 200);
  produce("h-", 0, 1, /*arrays_only=*/true);
  ASSERT_TRUE(testing::wait_until([&] { return status_of("/health") == 503; }, milliseconds(20000)))
      << "a worker hung past the liveness bound and /health stayed 200";
  EXPECT_EQ(status_of("/v2/health/live"), 503);
  {
    testing::HttpClient http(port);
    const auto res = http.request(boost::beast::http::verb::get, "/health");
    EXPECT_NE(res.body().find("hung"), std::string::npos) << res.body();
  }
  EXPECT_EQ(service->registry().gauge("vigil_scoring_hung_workers", "").value(), 1.0);
  ASSERT_TRUE(testing::wait_until([&] { return service->batcher().stats().scored() == 1; },
                                  milliseconds(10000)));
  EXPECT_TRUE(testing::wait_until([&] { return status_of("/health") == 200; }, milliseconds(5000)));
  service->stop();
}

TEST_F(StreamingTest, WatchdogFailsReadinessWhileAWorkerIsStuckAndRecovers) {
  auto cfg = config();
  cfg.redis.url = "";
  cfg.scoring.workers = 1;
  cfg.scoring.watchdog_stall = milliseconds(300);
  testing::FakeModelOptions hang;
  hang.delay = std::chrono::milliseconds(2500);  // one forward far longer than the limit
  auto service = start(cfg, std::make_shared<testing::FakeModel>(hang));
  ASSERT_NE(service, nullptr);
  produce("w-", 0, 1, /*arrays_only=*/true);
  auto stuck = [&] {
    for (const auto& f : service->readiness_failures()) {
      if (f.rfind("scoring:", 0) == 0) return true;
    }
    return false;
  };
  ASSERT_TRUE(testing::wait_until(stuck, milliseconds(20000)));
  EXPECT_EQ(service->registry().gauge("vigil_scoring_stalled_workers", "").value(), 1.0);
  ASSERT_TRUE(testing::wait_until([&] { return service->batcher().stats().scored() == 1; },
                                  milliseconds(10000)));
  EXPECT_TRUE(testing::wait_until([&] { return !stuck(); }, milliseconds(5000)));
  service->stop();
}

}  // namespace
}  // namespace vigil

// The consumer under backpressure, in-process on an embedded Kafka (librdkafka mock cluster over
// TCP) and a real redis-server: while the scoring queue is full, or the producer cannot deliver,
// the consumer pauses its partitions and keeps polling. It never blocks: a rebalance is served
// at once (not after max.poll.interval.ms, which would evict the member), and scoring workers
// never wait on a full producer queue, so HTTP scoring goes on while Kafka refuses writes.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "app/service.h"
#include "kafka/kafka_client.h"
#include "scoring/model_repository.h"
#include "scoring/torch_model.h"
#include "support/fake_model.h"
#include "support/http_client.h"
#include "support/kafka_test_util.h"
#include "support/service_config.h"
#include "support/service_fixture.h"
#include "support/wait.h"

namespace vigil {
namespace {

using std::chrono::milliseconds;

constexpr int16_t kProduceApiKey = 0;  // RD_KAFKAP_Produce (rdkafka_protocol.h, not installed)
constexpr int kPartitions = 6;

class ConsumerBackpressureTest : public testing::ServiceFixture {
 protected:
  void SetUp() override {
    // transactions12/scores12: the 50k events/s rebalance test (48 partitions keep its 240k
    // events within the ~5 MiB the mock keeps per partition).
    start_cluster_and_redis({{"transactions", kPartitions},
                             {"scores", kPartitions},
                             {"transactions.dlq", kPartitions},
                             {"transactions12", 48},
                             {"scores12", 48},
                             {"retained", 1}});
  }
  void TearDown() override {
    if (cluster_) rd_kafka_mock_clear_request_errors(cluster_->mock(), kProduceApiKey);
  }

  void produce(const std::string& prefix, size_t n) {
    std::vector<std::pair<std::string, std::string>> recs;
    for (size_t i = 0; i < n; ++i) {
      const std::string id = prefix + std::to_string(i);
      recs.emplace_back(
          id, testing::reference_event(ref_, i % ref_.rows.size(), id, /*as_object=*/false));
    }
    ASSERT_TRUE(testing::produce_all(cluster_->bootstrap(), "transactions", recs).ok());
  }

  static uint64_t counter(app::Service& s, const std::string& name) {
    return s.registry().counter(name, "").value();
  }
};

TEST_F(ConsumerBackpressureTest, AFullScoringQueueDoesNotStopTheConsumerServingARebalance) {
  // A slow model and a small queue: the queue is full nearly all the time. A second member
  // joins: the first must take part in the rebalance promptly (its revoke waits at most 5 s
  // for the records being scored, then the group re-forms). A consumer that waits for room in
  // the queue instead of polling (500 records staged at ~16/s: 30 s) holds the rebalance up
  // to max.poll.interval.ms (20 s) and is then evicted, its assignment lost.
  constexpr size_t kEvents = 4000;
  produce("q-", kEvents);
  auto cfg = base_config();
  cfg.redis.url = "";
  cfg.kafka.group_id = "backpressure-rebalance";
  cfg.kafka.consumer["max.poll.interval.ms"] = "20000";
  cfg.scoring.queue_capacity = 16;
  cfg.scoring.max_batch_size = 1;
  cfg.scoring.workers = 1;
  testing::FakeModelOptions slow;
  slow.delay = std::chrono::microseconds(60000);  // ~16 records/s: 500 staged take 30 s
  auto first = start_service(cfg, {std::make_shared<testing::FakeModel>(slow), {}});
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(testing::wait_until(
      [&] { return first->source()->stats().pauses_.value() > 0 && first->queue().depth() >= 12; },
      milliseconds(30000)));

  auto second = start_service(cfg, {std::make_shared<testing::FakeModel>(slow), {}});
  ASSERT_NE(second, nullptr);
  const auto joined = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      testing::wait_until([&] { return second->source()->has_assignment(); }, milliseconds(30000)));
  const auto took =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - joined);
  ASSERT_TRUE(
      testing::wait_until([&] { return first->source()->has_assignment(); }, milliseconds(30000)));
  EXPECT_EQ(counter(*first, "vigil_kafka_assignments_lost_total"), 0u)
      << "the first member was evicted: its consumer stopped polling";
  EXPECT_LT(took.count(), 20000) << "the rebalance waited for max.poll.interval.ms";
  std::printf(
      "[ summary ] the second member got its partitions %lld ms after joining; first "
      "member's assignments lost: %llu\n",
      static_cast<long long>(took.count()),
      static_cast<unsigned long long>(counter(*first, "vigil_kafka_assignments_lost_total")));
  second->stop();
  first->stop();
}

TEST_F(ConsumerBackpressureTest, RebalancesAt50kEventsPerSecondLoseNothingAndNeverAbort) {
  // A stream at 50k events/s with two rebalances while every stage is full: a second member
  // joins mid-stream, then the first leaves. A rebalance served inside the consume call that
  // returned a batch used to track records of revoked partitions and abort the process.
  // Every id must be scored, none dead-lettered.
  // 4.8 s at 50k/s: the second member (its model loaded beforehand) starts once 5,000 are
  // scored and joins well inside the stream even on a loaded 2-core box (with 2.4 s, a CI-like
  // run once saw it join after the stream had ended).
  constexpr size_t kEvents = 240000;
  constexpr double kRate = 50000;
  std::vector<std::pair<std::string, std::string>> recs;
  recs.reserve(kEvents);
  for (size_t i = 0; i < kEvents; ++i) {
    const std::string id = "r-" + std::to_string(i);
    recs.emplace_back(id, testing::reference_event(ref_, i % ref_.rows.size(), id, false));
  }
  auto cfg = base_config();
  cfg.redis.url = "";
  cfg.kafka.input_topic = "transactions12";
  cfg.kafka.output_topic = "scores12";
  cfg.kafka.group_id = "backpressure-fast-rebalance";
  auto first = start_service(cfg);
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(
      testing::wait_until([&] { return first->source()->has_assignment(); }, milliseconds(30000)));
  // The second member's model, loaded before the stream starts.
  auto info = scoring::load_model_info(cfg.model.repository, cfg.model.name,
                                       first->batcher().model_info()->version);
  ASSERT_TRUE(info.ok()) << info.error();
  auto model = scoring::load_torch_model(*info, {"cpu", 1, 256});
  ASSERT_TRUE(model.ok()) << model.error();
  app::Service::Options second_options;
  second_options.model = std::move(model.value());

  std::atomic<size_t> produced{0};
  std::thread producer([&] {
    kafka::Handle rk =
        testing::test_client(RD_KAFKA_PRODUCER, cluster_->bootstrap(),
                             {{"linger.ms", "5"}, {"acks", "all"}}, "paced producer");
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < kEvents; ++i) {
      const auto due = t0 + std::chrono::microseconds(static_cast<int64_t>(i * 1e6 / kRate));
      if (i % 500 == 0) std::this_thread::sleep_until(due);
      const auto& [k, v] = recs[i];
      testing::produce_copy(rk.get(), "transactions12", k.data(), k.size(), v.data(), v.size(), 5);
      produced.store(i + 1, std::memory_order_relaxed);
      rd_kafka_poll(rk.get(), 0);
    }
    rd_kafka_flush(rk.get(), 30000);
  });
  ASSERT_TRUE(testing::wait_until([&] { return first->batcher().stats().scored() >= 5000; },
                                  milliseconds(60000)));
  auto second = start_service(cfg, second_options);
  const size_t produced_at_join = produced.load();
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(
      testing::wait_until([&] { return second->source()->has_assignment(); }, milliseconds(30000)));
  first->stop();  // the second member takes every partition
  const size_t produced_at_leave = produced.load();
  const uint64_t first_scored = first->batcher().stats().scored();
  producer.join();
  auto scores =
      testing::read_distinct_keys(cluster_->bootstrap(), "scores12", kEvents, milliseconds(120000));
  std::set<std::string> ids;
  for (const auto& r : scores) ids.insert(r.key);
  EXPECT_EQ(ids.size(), kEvents) << kEvents - ids.size() << " ids never scored";
  auto dead = testing::read_topic(
      cluster_->bootstrap(), "transactions.dlq", [](const auto&) { return false; },
      milliseconds(2000));
  EXPECT_TRUE(dead.empty()) << dead.size() << " dead letters, e.g. " << dead.front().key;
  EXPECT_LT(produced_at_join, kEvents) << "the second member joined after the stream";
  std::printf(
      "[ summary ] %zu events at %.0f/s: second member joined at %zu produced, first left at %zu; "
      "first scored %llu, second %llu; %zu distinct scores in %zu records (duplicates: replays "
      "of records in flight at a revoke); %zu dead letters; untracked after a revoke: %llu\n",
      kEvents, kRate, produced_at_join, produced_at_leave,
      static_cast<unsigned long long>(first_scored),
      static_cast<unsigned long long>(second->batcher().stats().scored()), ids.size(),
      scores.size(), dead.size(),
      static_cast<unsigned long long>(counter(*first, "vigil_kafka_untracked_total") +
                                      counter(*second, "vigil_kafka_untracked_total")));
  second->stop();
}

TEST_F(ConsumerBackpressureTest, RecordsRemovedByRetentionBeforeTheyWereReadAreCountedAsLost) {
  // vigil commits 100 records and stops; while it is down the topic grows past what the
  // broker keeps (the mock keeps ~5 MiB per partition), so the records after the committed
  // offset are deleted unread. On restart the consumer's position is out of range and
  // auto.offset.reset moves it to the earliest offset kept: the records in between were never
  // scored. That must be counted (vigil_kafka_records_lost_total{reason="offset_out_of_range"})
  // and logged, not passed over silently.
  auto cfg = base_config();
  cfg.redis.url = "";
  cfg.kafka.input_topic = "retained";
  cfg.kafka.group_id = "retention";
  auto make = [&](const std::string& prefix, size_t n) {
    std::vector<std::pair<std::string, std::string>> recs;
    for (size_t i = 0; i < n; ++i) {
      const std::string id = prefix + std::to_string(i);
      recs.emplace_back(id, testing::reference_event(ref_, i % ref_.rows.size(), id, false));
    }
    return recs;
  };
  ASSERT_TRUE(testing::produce_all(cluster_->bootstrap(), "retained", make("kept-", 100)).ok());
  {
    auto service = start_service(cfg);
    ASSERT_NE(service, nullptr);
    ASSERT_TRUE(testing::wait_until([&] { return service->offsets().committable(0) == 100; },
                                    milliseconds(30000)));
    service->stop();  // commits offset 100
  }
  ASSERT_TRUE(testing::produce_all(cluster_->bootstrap(), "retained", make("gone-", 15000)).ok());
  kafka::Handle rk = testing::test_client(RD_KAFKA_CONSUMER, cluster_->bootstrap(),
                                          {{"group.id", "probe"}}, "probe");
  int64_t low = -1, high = -1;
  ASSERT_EQ(rd_kafka_query_watermark_offsets(rk.get(), "retained", 0, &low, &high, 5000),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_GT(low, 100) << "the broker kept every record: nothing to lose (high " << high << ")";

  auto service = start_service(cfg);
  ASSERT_NE(service, nullptr);
  auto lost = [&] {
    return service->registry()
        .counter("vigil_kafka_records_lost_total", "", {{"reason", "offset_out_of_range"}})
        .value();
  };
  ASSERT_TRUE(testing::wait_until([&] { return lost() > 0; }, milliseconds(30000)))
      << "records deleted before they were read were not counted";
  EXPECT_EQ(lost(), static_cast<uint64_t>(low - 100));
  ASSERT_TRUE(testing::wait_until([&] { return service->offsets().committable(0) == high; },
                                  milliseconds(60000)));
  std::printf(
      "[ summary ] committed 100, the broker then kept offsets %lld..%lld: %llu records "
      "counted lost (offset_out_of_range), the rest scored\n",
      static_cast<long long>(low), static_cast<long long>(high - 1),
      static_cast<unsigned long long>(lost()));
  service->stop();
}

TEST_F(ConsumerBackpressureTest, HttpScoringGoesOnWhileKafkaRefusesEveryWrite) {
  // Kafka answers every Produce request with a retriable error: scores cannot be delivered.
  // The consumer stops at kafka.max_in_flight_records undelivered records (below the
  // producer's queue), so the scoring workers never wait on a full producer queue and
  // /predict, which does not need Kafka, keeps answering.
  constexpr size_t kEvents = 3000;
  produce("o-", kEvents);
  const std::vector<rd_kafka_resp_err_t> errors(1000000, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  rd_kafka_mock_push_request_errors_array(cluster_->mock(), kProduceApiKey, errors.size(),
                                          errors.data());
  auto cfg = base_config();
  cfg.redis.url = "";
  cfg.kafka.group_id = "backpressure-outage";
  cfg.kafka.producer["queue.buffering.max.messages"] = "1000";
  cfg.kafka.max_in_flight_records = 500;
  testing::enable_test_http(cfg);
  cfg.http.request_timeout = milliseconds(2000);
  auto service = start_service(cfg);
  ASSERT_NE(service, nullptr);
  // The stream fills what may be in flight, then the consumer pauses.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return service->offsets().in_flight() >= 500 &&
               service->source()->stats().pauses_.value() > 0;
      },
      milliseconds(30000)))
      << service->offsets().in_flight() << " in flight";
  namespace json = boost::json;
  json::object instance;
  for (size_t i = 0; i < ref_.feature_names.size(); ++i) {
    instance[ref_.feature_names[i]] = ref_.rows[3][i];
  }
  const std::string body = json::serialize(json::object{{"instances", json::array{instance}}});
  testing::HttpClient http(static_cast<uint16_t>(service->http_port()));
  size_t ok = 0;
  int last_status = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = http.request(boost::beast::http::verb::post, "/predict", body);
    last_status = r.result_int();
    if (last_status == 200) ++ok;
  }
  EXPECT_EQ(ok, 20u) << "/predict failed while Kafka refused writes (last status " << last_status
                     << ")";
  EXPECT_LE(service->offsets().in_flight(), 500u + 500u)
      << "more than max_in_flight_records (+ one consume batch) consumed and undelivered";
  // Kafka accepts again: everything is delivered.
  rd_kafka_mock_clear_request_errors(cluster_->mock(), kProduceApiKey);
  auto scores =
      testing::read_distinct_keys(cluster_->bootstrap(), "scores", kEvents, milliseconds(120000));
  std::set<std::string> ids;
  for (const auto& r : scores) ids.insert(r.key);
  EXPECT_EQ(ids.size(), kEvents);
  service->stop();
}

}  // namespace
}  // namespace vigil

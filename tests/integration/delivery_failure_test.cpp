// The delivery stage's failure paths end to end, in-process: the real Service on an embedded
// Kafka (librdkafka mock cluster) over TCP and a real redis-server. Faults are injected into
// the mock cluster (Produce requests refused) or into the producer (a fatal error). Every
// test counts every transaction id: none missing (each is on the scores topic or the
// dead-letter topic), none stuck (nothing in flight or held at the end), and the group's
// committed offsets reach the high watermark of every input partition.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "app/service.h"
#include "kafka/embedded_cluster.h"
#include "kafka/kafka_client.h"
#include "sinks/kafka_sink.h"
#include "support/kafka_test_util.h"
#include "support/redis_server.h"
#include "support/service_config.h"
#include "support/service_fixture.h"
#include "support/wait.h"

namespace vigil {
namespace {

using std::chrono::milliseconds;
using testing::TestRecord;

constexpr int16_t kProduceApiKey = 0;  // RD_KAFKAP_Produce (rdkafka_protocol.h, not installed)
constexpr int kPartitions = 6;
const char* const kGroup = "vigil";
const char* const kInput = "transactions";

// The consumer group's committed offsets and the input topic's high watermarks, read with a
// plain librdkafka consumer of the same group that never subscribes (so it never joins the
// group: it only asks the coordinator, like `kafka-consumer-groups --describe`).
class GroupOffsets {
 public:
  explicit GroupOffsets(const std::string& bootstrap)
      : rk_(testing::test_client(
            RD_KAFKA_CONSUMER, bootstrap,
            {{"group.id", kGroup}, {"session.timeout.ms", "6000"}, {"enable.auto.commit", "false"}},
            "offsets client")) {}
  GroupOffsets(const GroupOffsets&) = delete;
  GroupOffsets& operator=(const GroupOffsets&) = delete;

  struct Partition {
    int64_t committed = -1;  // -1: nothing committed (or not known)
    int64_t high = -1;       // -1: not known
  };

  // One entry per partition 0..5; unknown values stay -1.
  std::vector<Partition> read() {
    std::vector<Partition> out(kPartitions);
    kafka::PartitionList list(rd_kafka_topic_partition_list_new(kPartitions));
    for (int p = 0; p < kPartitions; ++p) rd_kafka_topic_partition_list_add(list.get(), kInput, p);
    if (rd_kafka_committed(rk_.get(), list.get(), 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (int i = 0; i < list->cnt; ++i) {
        const auto& e = list->elems[i];
        if (e.err == RD_KAFKA_RESP_ERR_NO_ERROR && e.offset >= 0) {
          out[e.partition].committed = e.offset;
        }
      }
    }
    for (int p = 0; p < kPartitions; ++p) {
      int64_t lo = -1, hi = -1;
      if (rd_kafka_query_watermark_offsets(rk_.get(), kInput, p, &lo, &hi, 5000) ==
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        out[p].high = hi;
      }
    }
    return out;
  }

  // Whether every partition's committed offset is its high watermark, and together they
  // cover `records` input records.
  bool all_committed(size_t records) {
    int64_t total = 0;
    for (const auto& p : read()) {
      if (p.high == 0 && p.committed <= 0) continue;  // an empty partition: nothing to commit
      if (p.high < 0 || p.committed != p.high) return false;
      total += p.high;
    }
    return total == static_cast<int64_t>(records);
  }

  static std::string describe(const std::vector<Partition>& ps) {
    std::string s;
    for (size_t p = 0; p < ps.size(); ++p) {
      s += " p" + std::to_string(p) + " " + std::to_string(ps[p].committed) + "/" +
           std::to_string(ps[p].high);
    }
    return s;
  }

 private:
  kafka::Handle rk_;
};

// Polls an expensive condition (broker round trips) at most every `period`; in between the
// last answer stands.
std::function<bool()> at_most_every(milliseconds period, std::function<bool()> condition) {
  auto last = std::make_shared<std::chrono::steady_clock::time_point>();
  auto answer = std::make_shared<bool>(false);
  return [=] {
    const auto now = std::chrono::steady_clock::now();
    if (now - *last >= period) {
      *last = now;
      *answer = condition();
    }
    return *answer;
  };
}

// The series of `family` in a registry snapshot: labels (as "k=v,...") -> value.
std::map<std::string, double> series(const metrics::Registry& registry, const std::string& family) {
  std::map<std::string, double> out;
  for (const auto& f : registry.collect()) {
    if (f.name != family) continue;
    for (const auto& s : f.series) {
      std::string key;
      for (const auto& [k, v] : s.labels) key += (key.empty() ? "" : ",") + k + "=" + v;
      out[key] = s.value;
    }
  }
  return out;
}

uint64_t counter(app::Service& s, const std::string& name, const metrics::Labels& labels = {}) {
  return s.registry().counter(name, "", labels).value();
}

bool readiness_mentions(const app::Service& s, const std::string& text) {
  for (const auto& f : s.readiness_failures()) {
    if (f.find(text) != std::string::npos) return true;
  }
  return false;
}

class DeliveryFailureTest : public testing::ServiceFixture {
 protected:
  void SetUp() override {
    start_cluster_and_redis(
        {{kInput, kPartitions}, {"scores", kPartitions}, {"transactions.dlq", kPartitions}});
    if (HasFatalFailure()) return;
    offsets_ = std::make_unique<GroupOffsets>(cluster_->bootstrap());
  }

  void TearDown() override {
    // Whatever a test left in the mock must not outlive it (the cluster goes with it anyway).
    if (cluster_) rd_kafka_mock_clear_request_errors(cluster_->mock(), kProduceApiKey);
  }

  config::AppConfig config() const {
    config::AppConfig c = base_config();
    c.kafka.commit_interval = milliseconds(100);
    c.redis.ttl_s = 3600;
    c.scoring.workers = 2;
    return c;
  }

  std::unique_ptr<app::Service> start() { return start_service(config()); }

  // Produces events <prefix><i> for i in [0, n) (key = id), row i of the reference; keeps
  // each event's value by id.
  void produce(const std::string& prefix, size_t n) {
    ASSERT_TRUE(testing::produce_all(cluster_->bootstrap(), kInput, make_events(prefix, n)).ok());
  }
  // The same events, only made (and expected), not produced.
  std::vector<std::pair<std::string, std::string>> make_events(const std::string& prefix,
                                                               size_t n) {
    std::vector<std::pair<std::string, std::string>> recs;
    for (size_t i = 0; i < n; ++i) {
      const std::string id = prefix + std::to_string(i);
      recs.emplace_back(id, testing::reference_event(ref_, i, id, i % 2 == 0));
      events_[id] = recs.back().second;
    }
    return recs;
  }

  // Waits until the group has committed every input record (deadline), with a failure
  // message naming the offsets. `observe` (if any) runs at every poll.
  ::testing::AssertionResult wait_all_committed(milliseconds deadline,
                                                const std::function<void()>& observe = {}) {
    const size_t n = events_.size();
    auto committed = at_most_every(milliseconds(100), [&] { return offsets_->all_committed(n); });
    if (testing::wait_until(
            [&] {
              if (observe) observe();
              return committed();
            },
            deadline)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << "committed/high watermark:" << GroupOffsets::describe(offsets_->read());
  }

  // What became of every event: its scores and its dead letters, read until together they
  // cover every id (or the deadline).
  struct Outcome {
    std::vector<TestRecord> scores;
    std::vector<TestRecord> dead_letters;
    std::map<std::string, int> scored;         // id -> records on the scores topic
    std::map<std::string, int> dead_lettered;  // id -> records on the dead-letter topic
    std::vector<std::string> missing;          // ids on neither
  };
  Outcome read_outcome(size_t dead_letters_expected, milliseconds deadline) {
    Outcome o;
    o.dead_letters = testing::read_topic(
        cluster_->bootstrap(), "transactions.dlq",
        [&](const std::vector<TestRecord>& rs) { return rs.size() >= dead_letters_expected; },
        deadline);
    std::set<std::string> covered;
    for (const auto& r : o.dead_letters) {
      ++o.dead_lettered[r.key];
      covered.insert(r.key);
    }
    size_t seen = 0;
    o.scores = testing::read_topic(
        cluster_->bootstrap(), "scores",
        [&](const std::vector<TestRecord>& rs) {
          for (; seen < rs.size(); ++seen) covered.insert(rs[seen].key);
          return covered.size() >= events_.size();
        },
        deadline);
    for (const auto& r : o.scores) ++o.scored[r.key];
    for (const auto& [id, value] : events_) {
      if (!o.scored.count(id) && !o.dead_lettered.count(id)) o.missing.push_back(id);
    }
    return o;
  }

  // Every dead letter is a refused score's record: reason, cause and the original event.
  void expect_delivery_failed_dead_letters(const Outcome& o) {
    for (const auto& r : o.dead_letters) {
      auto h = r.headers;
      EXPECT_EQ(h["vigil.error"], "delivery_failed") << r.key;
      EXPECT_NE(h["vigil.error_message"].find("score not accepted by Kafka"), std::string::npos)
          << r.key << ": " << h["vigil.error_message"];
      EXPECT_NE(h["vigil.error_message"].find("too large"), std::string::npos)
          << r.key << ": " << h["vigil.error_message"];
      EXPECT_EQ(h["vigil.source_topic"], kInput);
      EXPECT_FALSE(h["vigil.source_partition"].empty());
      EXPECT_FALSE(h["vigil.source_offset"].empty());
      auto it = events_.find(r.key);
      ASSERT_NE(it, events_.end()) << "dead letter of an unknown id " << r.key;
      EXPECT_EQ(r.value, it->second) << "dead letter of " << r.key << " is not the original";
    }
  }

  // Nothing in flight, nothing held, ready.
  void expect_settled(app::Service& s) {
    EXPECT_TRUE(
        testing::wait_until([&] { return s.offsets().in_flight() == 0; }, milliseconds(10000)))
        << s.offsets().in_flight() << " records in flight";
    EXPECT_TRUE(s.offsets().held().empty());
    EXPECT_EQ(s.delivery()->held_records(), 0u);
    EXPECT_TRUE(s.readiness_failures().empty()) << ::testing::PrintToString(s.readiness_failures());
  }

  std::unique_ptr<GroupOffsets> offsets_;
  std::map<std::string, std::string> events_;  // id -> the event as produced
};

TEST_F(DeliveryFailureTest, ScoresKafkaRefusesForGoGoToTheDeadLetterTopicAndCommitsAdvance) {
  constexpr size_t kEvents = 3000;
  produce("f-", kEvents);
  // 40 of the next 80 Produce requests to the cluster are refused for good, every other one,
  // so some score batches get through and others do not. Dead-letter writes are Produce
  // requests too: some of them fail as well (those records are held and retried).
  std::vector<rd_kafka_resp_err_t> errors;
  for (int i = 0; i < 40; ++i) {
    errors.push_back(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    errors.push_back(RD_KAFKA_RESP_ERR_NO_ERROR);  // this request goes through
  }
  rd_kafka_mock_push_request_errors_array(cluster_->mock(), kProduceApiKey, errors.size(),
                                          errors.data());
  auto service = start();
  ASSERT_NE(service, nullptr);

  size_t max_held = 0;  // records held at once (their dead-letter write failed)
  ASSERT_TRUE(wait_all_committed(milliseconds(60000), [&] {
    max_held = std::max(max_held, service->delivery()->held_records());
  }));
  const uint64_t dlq_delivered = counter(*service, "vigil_kafka_produced_total", {{"kind", "dlq"}});
  const Outcome o = read_outcome(dlq_delivered, milliseconds(30000));
  EXPECT_TRUE(o.missing.empty()) << o.missing.size() << " ids on neither topic, e.g. "
                                 << o.missing.front();
  EXPECT_GT(o.dead_lettered.size(), 0u) << "no score was refused";
  EXPECT_GT(counter(*service, "vigil_kafka_delivery_failures_total"), 0u);
  EXPECT_EQ(o.dead_letters.size(), o.dead_lettered.size()) << "an id dead-lettered twice";
  for (const auto& [id, n] : o.dead_lettered) {
    EXPECT_EQ(o.scored.count(id), 0u) << id << " both scored and dead-lettered";
  }
  expect_delivery_failed_dead_letters(o);
  EXPECT_EQ(o.scored.size() + o.dead_lettered.size(), kEvents);
  EXPECT_EQ(counter(*service, "vigil_kafka_delivery_failures_total"), o.dead_lettered.size());
  EXPECT_EQ(counter(*service, "vigil_kafka_dead_lettered_total", {{"reason", "delivery_failed"}}),
            o.dead_lettered.size());
  expect_settled(*service);
  EXPECT_TRUE(offsets_->all_committed(kEvents)) << GroupOffsets::describe(offsets_->read());
  std::printf(
      "[ summary ] %zu events: %zu scored, %zu dead-lettered (delivery_failed), %llu "
      "dead-letter writes failed and retried, at most %zu records held at once\n",
      kEvents, o.scored.size(), o.dead_lettered.size(),
      static_cast<unsigned long long>(counter(*service, "vigil_kafka_dead_letter_failures_total")),
      max_held);
  service->stop();
}

TEST_F(DeliveryFailureTest, AFailedDeadLetterWriteHoldsThePartitionUntilKafkaAcceptsAgain) {
  constexpr size_t kEvents = 500;
  produce("h-", kEvents);
  // Every Produce request fails: scores and dead-letter writes alike.
  const std::vector<rd_kafka_resp_err_t> errors(100000, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  rd_kafka_mock_push_request_errors_array(cluster_->mock(), kProduceApiKey, errors.size(),
                                          errors.data());
  auto service = start();
  ASSERT_NE(service, nullptr);

  // Scores are refused, then their dead-letter writes too: the records are held.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return !service->offsets().held().empty() && readiness_mentions(*service, "held at offset");
      },
      milliseconds(60000)))
      << ::testing::PrintToString(service->readiness_failures());
  const auto held_since = std::chrono::steady_clock::now();
  EXPECT_TRUE(testing::wait_until(
      [&] { return service->registry().gauge("vigil_kafka_held_partitions", "").value() > 0; },
      milliseconds(5000)));
  EXPECT_GT(service->delivery()->held_records(), 0u);
  // While Kafka refuses, the stage keeps retrying with backoff (100 ms, 200 ms, ...) and
  // failing: every held record's write fails at least three times, and the holds stay.
  EXPECT_TRUE(testing::wait_until(
      [&] {
        return service->delivery()->stats().dead_letter_failures() >=
               3 * service->delivery()->held_records();
      },
      milliseconds(10000)));
  const auto holds = service->offsets().held();
  ASSERT_FALSE(holds.empty());
  // The lag gauges of held (paused) partitions are refreshed too: their records are not done.
  auto lag_of = [&](int p) {
    const auto lag = series(service->registry(), "vigil_kafka_consumer_lag");
    auto it = lag.find("partition=" + std::to_string(p));
    return it == lag.end() ? -1.0 : it->second;
  };
  for (const auto& h : holds) {
    EXPECT_TRUE(testing::wait_until([&] { return lag_of(h.partition) > 0; }, milliseconds(3000)))
        << "partition " << h.partition << " lag " << lag_of(h.partition);
  }
  // No commit passes a held record.
  const auto before = offsets_->read();
  for (const auto& h : holds) {
    const auto& p = before[h.partition];
    EXPECT_LE(p.committed, h.offset) << "partition " << h.partition;
    EXPECT_LT(p.committed, p.high) << "partition " << h.partition;
  }
  const size_t held_partitions = holds.size();
  const size_t held_records = service->delivery()->held_records();
  EXPECT_EQ(counter(*service, "vigil_kafka_produced_total", {{"kind", "dlq"}}), 0u);

  // Kafka accepts again: the held dead letters go through, the partitions resume, every
  // remaining record is delivered and the commits reach the end.
  rd_kafka_mock_clear_request_errors(cluster_->mock(), kProduceApiKey);
  const auto cleared = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      testing::wait_until([&] { return service->offsets().held().empty(); }, milliseconds(30000)));
  const auto released = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_all_committed(milliseconds(60000)));
  const uint64_t dlq_delivered = counter(*service, "vigil_kafka_produced_total", {{"kind", "dlq"}});
  const Outcome o = read_outcome(dlq_delivered, milliseconds(30000));
  EXPECT_TRUE(o.missing.empty()) << o.missing.size() << " ids on neither topic, e.g. "
                                 << o.missing.front();
  EXPECT_GT(o.dead_lettered.size(), 0u);
  expect_delivery_failed_dead_letters(o);
  expect_settled(*service);
  EXPECT_TRUE(testing::wait_until(
      [&] { return service->registry().gauge("vigil_kafka_held_partitions", "").value() == 0; },
      milliseconds(5000)));
  EXPECT_TRUE(testing::wait_until(
      [&] {
        for (int p = 0; p < kPartitions; ++p) {
          if (lag_of(p) != 0.0) return false;
        }
        return true;
      },
      milliseconds(5000)))
      << ::testing::PrintToString(series(service->registry(), "vigil_kafka_consumer_lag"));
  auto ms = [](auto d) { return std::chrono::duration_cast<milliseconds>(d).count(); };
  std::printf(
      "[ summary ] %zu events: %zu held records on %zu partitions; hold lasted %lld ms "
      "(%lld ms after Kafka accepted again); %zu dead-lettered, %zu scored, %llu dead-letter "
      "writes failed\n",
      kEvents, held_records, held_partitions, static_cast<long long>(ms(released - held_since)),
      static_cast<long long>(ms(released - cleared)), o.dead_lettered.size(), o.scored.size(),
      static_cast<unsigned long long>(service->delivery()->stats().dead_letter_failures()));
  service->stop();
}

TEST_F(DeliveryFailureTest, AnOversizedRecordIsDeadLetteredTruncatedAndItsPartitionFlowsOn) {
  // What a new user tries first: an event a real broker accepts (1,020,202 bytes; Kafka's
  // default limit is 1,048,588) but vigil cannot score, then normal events on the same
  // partition. The dead letter cannot carry the whole value (the producer's
  // message.max.bytes is 1,000,000): it carries a prefix, its size and SHA-256, and the
  // partition goes on. Before, the partition was held forever.
  constexpr int kPartition = 2;
  const std::string big_id = "big-0";
  std::string big = "{\"transaction_id\":\"" + big_id + "\",\"pad\":\"";
  big.append(1020202 - big.size() - 2, 'x');
  big += "\"}";
  ASSERT_EQ(big.size(), 1020202u);
  const auto normal = make_events("after-", 5);
  {
    kafka::Handle rk = testing::test_client(
        RD_KAFKA_PRODUCER, cluster_->bootstrap(),
        {{"linger.ms", "5"}, {"acks", "all"}, {"message.max.bytes", "2000000"}}, "test producer");
    ASSERT_EQ(testing::produce_copy(rk.get(), kInput, big_id.data(), big_id.size(), big.data(),
                                    big.size(), 10, kPartition),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    for (const auto& [k, v] : normal) {
      ASSERT_EQ(testing::produce_copy(rk.get(), kInput, k.data(), k.size(), v.data(), v.size(), 10,
                                      kPartition),
                RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    ASSERT_EQ(rd_kafka_flush(rk.get(), 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  events_[big_id] = big;
  auto service = start();
  ASSERT_NE(service, nullptr);
  ASSERT_TRUE(wait_all_committed(milliseconds(60000)))
      << ::testing::PrintToString(service->readiness_failures());
  const Outcome o = read_outcome(1, milliseconds(30000));
  EXPECT_TRUE(o.missing.empty()) << o.missing.size() << " ids on neither topic";
  ASSERT_EQ(o.dead_letters.size(), 1u);
  const TestRecord& d = o.dead_letters.front();
  EXPECT_EQ(d.key, big_id);
  auto h = d.headers;
  EXPECT_EQ(h["vigil.value_truncated"], "true");
  EXPECT_EQ(h["vigil.value_size"], "1020202");
  EXPECT_EQ(h["vigil.value_sha256"].size(), 64u);
  EXPECT_EQ(h["vigil.source_partition"], std::to_string(kPartition));
  EXPECT_EQ(h["vigil.source_offset"], "0");
  EXPECT_FALSE(h["vigil.error"].empty());
  EXPECT_EQ(d.value, big.substr(0, 4096)) << "the dead letter carries the value's first 4 KiB";
  for (const auto& [id, value] : normal) EXPECT_EQ(o.scored.count(id), 1u) << id;
  EXPECT_EQ(o.scored.count(big_id), 0u);
  EXPECT_EQ(counter(*service, "vigil_kafka_dead_letters_truncated_total"), 1u);
  EXPECT_EQ(counter(*service, "vigil_kafka_dead_letter_failures_total"), 0u)
      << "a record's own size counted as a failed dead-letter write";
  expect_settled(*service);
  service->stop();
}

TEST_F(DeliveryFailureTest, ATimedOutScoreIsProducedAgainNeverDeadLettered) {
  // Kafka answers every Produce request with a retriable error for a while: librdkafka
  // retries until message.timeout.ms (1 s here) and reports the scores timed out. A timeout
  // is not a refusal: the scores are produced again until Kafka takes them, their partitions
  // held meanwhile; nothing goes to the dead-letter topic, so no id is both scored and
  // dead-lettered. Before, each timed-out score was dead-lettered.
  constexpr size_t kEvents = 600;
  produce("t-", kEvents);
  const std::vector<rd_kafka_resp_err_t> errors(400, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  rd_kafka_mock_push_request_errors_array(cluster_->mock(), kProduceApiKey, errors.size(),
                                          errors.data());
  auto cfg = config();
  cfg.kafka.producer["message.timeout.ms"] = "1000";
  cfg.kafka.producer["retry.backoff.ms"] = "20";
  // One Produce request in flight per connection. The mock checks no sequence numbers of an
  // idempotent producer without a transactional id (rd_kafka_mock_validate_records): with
  // pipelined requests, the one that draws the last injected error is refused and the next
  // one for the same partition is written, and librdkafka, seeing the later batch acked,
  // acks the refused one implicitly (rd_kafka_dr_implicit_ack) although it was never
  // written: one score of 600 went missing that way in one run. A real broker refuses
  // the later batch (OUT_OF_ORDER_SEQUENCE_NUMBER), so vigil keeps its pipelining.
  cfg.kafka.producer["max.in.flight.requests.per.connection"] = "1";
  auto service = start_service(cfg);
  ASSERT_NE(service, nullptr);
  bool saw_hold = false;
  ASSERT_TRUE(wait_all_committed(milliseconds(90000), [&] {
    saw_hold = saw_hold || readiness_mentions(*service, "timed out");
  })) << ::testing::PrintToString(service->readiness_failures());
  EXPECT_GT(counter(*service, "vigil_kafka_produce_timeouts_total"), 0u)
      << "no score timed out: the fault did not land";
  EXPECT_TRUE(saw_hold) << "readiness never named a timed-out score's partition";
  const Outcome o = read_outcome(0, milliseconds(30000));
  EXPECT_TRUE(o.missing.empty()) << o.missing.size() << " ids on neither topic, e.g. "
                                 << o.missing.front();
  EXPECT_TRUE(o.dead_letters.empty())
      << o.dead_letters.size() << " dead letters, e.g. " << o.dead_letters.front().key;
  EXPECT_EQ(o.scored.size(), kEvents);
  EXPECT_EQ(counter(*service, "vigil_kafka_delivery_failures_total"), 0u);
  expect_settled(*service);
  std::printf(
      "[ summary ] %zu events: %zu scored, %llu score timeouts produced again, 0 dead "
      "letters\n",
      kEvents, o.scored.size(),
      static_cast<unsigned long long>(counter(*service, "vigil_kafka_produce_timeouts_total")));
  service->stop();
}

TEST_F(DeliveryFailureTest, FailedOffsetCommitsAreCountedForTheAlertAndRetriedUntilTheyLand) {
  // The coordinator refuses OffsetCommit requests for a while. The asynchronous commits'
  // failures reach vigil_kafka_commit_failures_total (what VigilKafkaCommitsFailing watches;
  // before, asynchronous commits had no callback and the counter never moved), and the
  // offsets are committed once the coordinator accepts again.
  constexpr int16_t kOffsetCommitApiKey = 8;  // RD_KAFKAP_OffsetCommit
  constexpr size_t kEvents = 2000;
  auto service = start();
  ASSERT_NE(service, nullptr);
  ASSERT_TRUE(testing::wait_until([&] { return service->source()->has_assignment(); },
                                  milliseconds(30000)));
  const std::vector<rd_kafka_resp_err_t> errors(60, RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE);
  rd_kafka_mock_push_request_errors_array(cluster_->mock(), kOffsetCommitApiKey, errors.size(),
                                          errors.data());
  produce("c-", kEvents);
  EXPECT_TRUE(testing::wait_until(
      [&] { return counter(*service, "vigil_kafka_commit_failures_total") >= 5; },
      milliseconds(30000)))
      << counter(*service, "vigil_kafka_commit_failures_total") << " commit failures counted";
  ASSERT_TRUE(wait_all_committed(milliseconds(60000)));
  const Outcome o = read_outcome(0, milliseconds(30000));
  EXPECT_TRUE(o.missing.empty());
  std::printf(
      "[ summary ] %zu events, %llu failed commits counted, all offsets committed after\n", kEvents,
      static_cast<unsigned long long>(counter(*service, "vigil_kafka_commit_failures_total")));
  service->stop();
}

TEST_F(DeliveryFailureTest, HeldDeadLettersOfPartitionsThatMovedAreDroppedNotWrittenTwice) {
  // Every Produce request fails: the first instance holds records on all its partitions and
  // keeps retrying their dead letters. A second instance joins and takes half the partitions:
  // the first must drop the held dead letters of the partitions it lost (their new owner
  // consumes the records again), or once Kafka accepts again a record could end up with two
  // outcomes (scored by the new owner and dead-lettered by the old one).
  constexpr size_t kEvents = 600;
  produce("m-", kEvents);
  const std::vector<rd_kafka_resp_err_t> errors(100000, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  rd_kafka_mock_push_request_errors_array(cluster_->mock(), kProduceApiKey, errors.size(),
                                          errors.data());
  auto first = start();
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(testing::wait_until([&] { return first->offsets().held().size() == kPartitions; },
                                  milliseconds(60000)))
      << first->offsets().held().size() << " partitions held";
  const size_t held_before = first->delivery()->held_records();
  auto second = start();
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(testing::wait_until(
      [&] { return second->source()->has_assignment() && first->source()->has_assignment(); },
      milliseconds(60000)));
  ASSERT_TRUE(testing::wait_until(
      [&] { return counter(*first, "vigil_delivery_abandoned_total") > 0; }, milliseconds(10000)))
      << "the first instance kept retrying dead letters of partitions it no longer owns";
  // Kafka accepts again: every record gets exactly one outcome.
  rd_kafka_mock_clear_request_errors(cluster_->mock(), kProduceApiKey);
  ASSERT_TRUE(wait_all_committed(milliseconds(60000)));
  const uint64_t dlq = counter(*first, "vigil_kafka_produced_total", {{"kind", "dlq"}}) +
                       counter(*second, "vigil_kafka_produced_total", {{"kind", "dlq"}});
  const Outcome o = read_outcome(dlq, milliseconds(30000));
  EXPECT_TRUE(o.missing.empty()) << o.missing.size() << " ids on neither topic";
  EXPECT_EQ(o.dead_letters.size(), o.dead_lettered.size()) << "an id dead-lettered twice";
  size_t both = 0;
  for (const auto& [id, n] : o.dead_lettered) both += o.scored.count(id);
  EXPECT_EQ(both, 0u) << "ids both scored and dead-lettered";
  std::printf(
      "[ summary ] %zu events: %zu held before the rebalance, %llu dropped by the old "
      "owner; %zu scored, %zu dead-lettered, %zu both\n",
      kEvents, held_before,
      static_cast<unsigned long long>(counter(*first, "vigil_delivery_abandoned_total")),
      o.scored.size(), o.dead_lettered.size(), both);
  second->stop();
  first->stop();
}

TEST_F(DeliveryFailureTest, AFatalProducerErrorReplacesTheProducerAndLosesNothing) {
  constexpr size_t kEvents = 20000;
  constexpr size_t kChunk = 1000;
  const auto recs = make_events("x-", kEvents);
  auto service = start();
  ASSERT_NE(service, nullptr);
  ASSERT_TRUE(testing::wait_until([&] { return service->source()->has_assignment(); },
                                  milliseconds(30000)));
  // The input keeps arriving while the fault hits: records are in flight on the old producer,
  // and the later ones can only be delivered by its replacement.
  std::atomic<size_t> input_produced{0};
  std::atomic<bool> input_ok{true};
  std::thread input([&] {
    for (size_t from = 0; from < recs.size(); from += kChunk) {
      const std::vector<std::pair<std::string, std::string>> chunk(
          recs.begin() + static_cast<std::ptrdiff_t>(from),
          recs.begin() + static_cast<std::ptrdiff_t>(std::min(from + kChunk, recs.size())));
      if (!testing::produce_all(cluster_->bootstrap(), kInput, chunk).ok()) input_ok = false;
      input_produced += chunk.size();
    }
  });
  struct JoinOnExit {
    std::thread& t;
    ~JoinOnExit() {
      if (t.joinable()) t.join();
    }
  } join_input{input};

  ASSERT_TRUE(testing::wait_until(
      [&] {
        return counter(*service, "vigil_kafka_produced_total", {{"kind", "score"}}) > 2000;
      },
      milliseconds(60000)));
  const uint64_t delivered_before =
      counter(*service, "vigil_kafka_produced_total", {{"kind", "score"}});
  const size_t input_before = input_produced.load();
  dynamic_cast<sinks::KafkaSink&>(*service->delivery()->producer())
      .inject_fatal_error_for_test("test");

  ASSERT_TRUE(testing::wait_until(
      [&] { return counter(*service, "vigil_kafka_producer_replaced_total") >= 1; },
      milliseconds(30000)));
  input.join();
  ASSERT_TRUE(input_ok.load());
  ASSERT_TRUE(wait_all_committed(milliseconds(60000)));
  const Outcome o = read_outcome(0, milliseconds(60000));
  EXPECT_TRUE(o.missing.empty()) << o.missing.size() << " ids on neither topic, e.g. "
                                 << o.missing.front();
  EXPECT_EQ(o.scored.size(), kEvents);
  EXPECT_TRUE(o.dead_letters.empty());
  size_t duplicates = 0;
  for (const auto& [id, n] : o.scored) duplicates += n - 1;
  EXPECT_GE(counter(*service, "vigil_kafka_producer_fatal_errors_total"), 1u);
  EXPECT_GE(counter(*service, "vigil_kafka_producer_replaced_total"), 1u);
  expect_settled(*service);
  std::printf(
      "[ summary ] %zu events: fatal error after %zu produced to the input, %llu scores "
      "delivered; %zu distinct scores, %zu duplicates; %llu produced again; %llu producer(s) "
      "replaced\n",
      kEvents, input_before, static_cast<unsigned long long>(delivered_before), o.scored.size(),
      duplicates,
      static_cast<unsigned long long>(counter(*service, "vigil_delivery_produced_again_total")),
      static_cast<unsigned long long>(counter(*service, "vigil_kafka_producer_replaced_total")));
  service->stop();
}

TEST_F(DeliveryFailureTest, LagGaugesAreRefreshedAndRemovedOnRevoke) {
  constexpr size_t kEvents = 2000;
  produce("l-", kEvents);
  auto service = start();
  ASSERT_NE(service, nullptr);
  ASSERT_TRUE(wait_all_committed(milliseconds(60000)));
  // Every partition has a lag series, refreshed to 0 once all its records are delivered.
  auto all_caught_up = [&] {
    const auto lag = series(service->registry(), "vigil_kafka_consumer_lag");
    for (int p = 0; p < kPartitions; ++p) {
      auto it = lag.find("partition=" + std::to_string(p));
      if (it == lag.end() || it->second != 0.0) return false;
    }
    return lag.size() == static_cast<size_t>(kPartitions);
  };
  EXPECT_TRUE(testing::wait_until(all_caught_up, milliseconds(5000)))
      << ::testing::PrintToString(series(service->registry(), "vigil_kafka_consumer_lag"));
  const Outcome o = read_outcome(0, milliseconds(30000));
  EXPECT_TRUE(o.missing.empty()) << o.missing.size() << " ids on neither topic";
  expect_settled(*service);

  // Leaving the group revokes every partition: their lag series go with them.
  service->source()->stop();
  EXPECT_TRUE(series(service->registry(), "vigil_kafka_consumer_lag").empty())
      << ::testing::PrintToString(series(service->registry(), "vigil_kafka_consumer_lag"));
  EXPECT_TRUE(offsets_->all_committed(kEvents)) << GroupOffsets::describe(offsets_->read());
  service->stop();
}

}  // namespace
}  // namespace vigil

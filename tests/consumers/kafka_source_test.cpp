// KafkaSource against the embedded cluster over TCP, with the rest of the pipeline played by
// a test thread the way the delivery stage plays it: it pops the scoring queue in batches and
// acknowledges the records from its own thread, and acknowledges the dead letters the consumer
// hands over. The consumer thread meanwhile decodes, tracks, pauses its partitions when the
// (small) queue fills, resumes them, and commits. Also run under TSan: what vigil's code shares
// between the consumer thread, librdkafka's callbacks and the acknowledging thread is checked;
// librdkafka's own frames are not instrumented (tests/tsan.supp).
#include "consumers/kafka_source.h"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "consumers/offset_tracker.h"
#include "kafka/embedded_cluster.h"
#include "support/kafka_test_util.h"
#include "support/wait.h"

namespace vigil::consumers {
namespace {

using std::chrono::milliseconds;

constexpr int kPartitions = 4;
constexpr size_t kGood = 3000;
constexpr size_t kMalformed = 30;

// Takes the consumer's dead letters; the acknowledging thread reports their outcome.
class QueuedDeadLetters final : public delivery::DeadLetterSink {
 public:
  void dead_letter(scoring::SourceRecord source, std::string_view reason,
                   std::string message) override {
    std::lock_guard<std::mutex> lock(mutex_);
    EXPECT_FALSE(message.empty());
    reasons_[std::string(reason)]++;
    pending_.push_back(source);  // the position; the record itself is released here
  }
  std::vector<scoring::RecordPosition> take() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<scoring::RecordPosition> out(pending_.begin(), pending_.end());
    pending_.clear();
    return out;
  }
  std::map<std::string, size_t> reasons() {
    std::lock_guard<std::mutex> lock(mutex_);
    return reasons_;
  }

 private:
  std::mutex mutex_;
  std::deque<scoring::RecordPosition> pending_;
  std::map<std::string, size_t> reasons_;
};

// The delivery stage's part, on its own thread: pops the scoring queue in batches, notes each
// id, and acknowledges the records and the dead letters, pausing `pace` after each batch.
class DeliveryStageStandIn {
 public:
  DeliveryStageStandIn(scoring::ScoringQueue& queue, OffsetTracker& tracker,
                       QueuedDeadLetters& dead_letters, milliseconds pace)
      : thread_([this, &queue, &tracker, &dead_letters, pace] {
          std::vector<scoring::ScoreRequest> batch;
          std::vector<scoring::RecordPosition> positions;
          while (!done_.load()) {
            batch.clear();
            positions.clear();
            queue.pop_bulk(batch, 32, std::chrono::microseconds(2000));
            {
              std::lock_guard<std::mutex> lock(ids_mutex_);
              for (auto& r : batch) {
                ids_.emplace(r.id.view());
                positions.push_back(r.source);
              }
            }
            for (const auto& p : dead_letters.take()) positions.push_back(p);
            if (!positions.empty()) tracker.acknowledge(positions.data(), positions.size());
            outcomes_ += positions.size();
            std::this_thread::sleep_for(pace);
          }
        }) {}
  ~DeliveryStageStandIn() { stop(); }
  void stop() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }
  size_t outcomes() const { return outcomes_.load(); }
  std::multiset<std::string> ids() {
    std::lock_guard<std::mutex> lock(ids_mutex_);
    return ids_;
  }

 private:
  std::atomic<bool> done_{false};
  std::atomic<size_t> outcomes_{0};
  std::mutex ids_mutex_;
  std::multiset<std::string> ids_;
  std::thread thread_;  // last: starts once the members above exist
};

// kGood reference events, ids `prefix`0.., and with `with_malformed` kMalformed records that
// are not JSON spread among them.
std::vector<std::pair<std::string, std::string>> events_of(const testing::ReferenceData& ref,
                                                           const std::string& prefix,
                                                           bool with_malformed) {
  std::vector<std::pair<std::string, std::string>> events;
  for (size_t i = 0; i < kGood; ++i) {
    const std::string id = prefix + std::to_string(i);
    events.emplace_back(id, testing::reference_event(ref, i % ref.rows.size(), id, i % 2 == 0));
    if (with_malformed && i % (kGood / kMalformed) == 0) {
      events.emplace_back("bad-" + std::to_string(i), "{not json");
    }
  }
  return events;
}

TEST(KafkaSourceTest, EveryRecordGetsOneOutcomeAndTheCommitsReachTheEndThroughBackpressure) {
  auto cluster = kafka::EmbeddedCluster::start(1, {{"transactions", kPartitions}});
  ASSERT_TRUE(cluster) << cluster.error();
  const std::string bootstrap = cluster.value()->bootstrap();
  const testing::ReferenceData ref = testing::load_reference();
  const auto events = events_of(ref, "src-", /*with_malformed=*/true);
  ASSERT_TRUE(testing::produce_all(bootstrap, "transactions", events).ok());

  metrics::Registry registry;
  scoring::QueueConfig qc;
  qc.capacity = 128;  // a few fetches' worth: the consumer pauses and resumes many times
  scoring::ScoringQueue queue(qc, SteadyClock::instance(), registry);
  codec::FeatureSchema schema(ref.feature_names);
  OffsetTracker tracker;
  QueuedDeadLetters dead_letters;
  kafka::KafkaConfig kc;
  kc.brokers = bootstrap;
  kc.group_id = "kafka-source-test";
  kc.commit_interval = milliseconds(20);
  kc.consumer["fetch.wait.max.ms"] = "1";
  auto source = KafkaSource::create(kc, bootstrap, queue, schema, tracker, dead_letters, registry);
  ASSERT_TRUE(source) << source.error();

  DeliveryStageStandIn tail(queue, tracker, dead_letters, milliseconds(1));
  source.value()->start();
  const bool all =
      testing::wait_until([&] { return tail.outcomes() >= events.size(); }, milliseconds(60000));
  source.value()->stop_intake();
  tail.stop();
  source.value()->stop();  // commits what has an outcome, synchronously
  ASSERT_TRUE(all) << tail.outcomes() << " of " << events.size() << " records got an outcome";

  const std::multiset<std::string> ids = tail.ids();
  std::set<std::string> distinct(ids.begin(), ids.end());
  EXPECT_EQ(distinct.size(), kGood);
  EXPECT_EQ(ids.size(), kGood) << "a record was queued twice";
  EXPECT_EQ(dead_letters.reasons(),
            (std::map<std::string, size_t>{{"malformed_json", events.size() - kGood}}));
  EXPECT_GT(source.value()->stats().pauses_.value(), 0u) << "the queue never filled";

  // What the group committed is the end of every partition.
  auto reader = testing::test_client(RD_KAFKA_CONSUMER, bootstrap, {{"group.id", kc.group_id}},
                                     "committed-reader");
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(kPartitions);
  for (int p = 0; p < kPartitions; ++p) {
    rd_kafka_topic_partition_list_add(parts, "transactions", p);
  }
  ASSERT_EQ(rd_kafka_committed(reader.get(), parts, 5000), RD_KAFKA_RESP_ERR_NO_ERROR);
  int64_t committed_total = 0;
  for (int p = 0; p < kPartitions; ++p) {
    int64_t low = 0, high = 0;
    ASSERT_EQ(rd_kafka_query_watermark_offsets(reader.get(), "transactions", p, &low, &high, 5000),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    EXPECT_EQ(parts->elems[p].offset, high) << "partition " << p;
    committed_total += parts->elems[p].offset;
  }
  EXPECT_EQ(committed_total, static_cast<int64_t>(events.size()));
  rd_kafka_topic_partition_list_destroy(parts);
}

// librdkafka stops fetching while its queue holds queued.min.messages records and, left alone,
// looks again only when its broker thread next wakes, up to a second later. With a bound
// smaller than one fetch, every fetch reaches it: the consumer wakes the fetchers each time
// the queue has drained to half, and every record still gets exactly one outcome.
TEST(KafkaSourceTest, TheConsumerWakesItsFetchersEachTimeTheirFullQueueHasDrained) {
  auto cluster = kafka::EmbeddedCluster::start(1, {{"transactions", kPartitions}});
  ASSERT_TRUE(cluster) << cluster.error();
  const std::string bootstrap = cluster.value()->bootstrap();
  const testing::ReferenceData ref = testing::load_reference();
  const auto events = events_of(ref, "gate-", /*with_malformed=*/false);
  ASSERT_TRUE(testing::produce_all(bootstrap, "transactions", events).ok());

  metrics::Registry registry;
  scoring::QueueConfig qc;
  qc.capacity = 2 * kGood;  // never paused: only librdkafka's own bound holds the fetchers
  scoring::ScoringQueue queue(qc, SteadyClock::instance(), registry);
  codec::FeatureSchema schema(ref.feature_names);
  OffsetTracker tracker;
  QueuedDeadLetters dead_letters;
  kafka::KafkaConfig kc;
  kc.brokers = bootstrap;
  kc.group_id = "kafka-source-gate-test";
  kc.consumer["fetch.wait.max.ms"] = "1";
  kc.consumer["queued.min.messages"] = "50";
  auto source = KafkaSource::create(kc, bootstrap, queue, schema, tracker, dead_letters, registry);
  ASSERT_TRUE(source) << source.error();
  DeliveryStageStandIn tail(queue, tracker, dead_letters, milliseconds(0));
  source.value()->start();
  const bool all =
      testing::wait_until([&] { return tail.outcomes() >= events.size(); }, milliseconds(60000));
  const uint64_t pauses = source.value()->stats().pauses_.value();  // stop_intake pauses
  source.value()->stop_intake();
  tail.stop();
  source.value()->stop();
  ASSERT_TRUE(all) << tail.outcomes() << " of " << events.size() << " records got an outcome";
  const std::multiset<std::string> ids = tail.ids();
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), kGood);
  EXPECT_EQ(ids.size(), kGood) << "a record was queued twice";
  EXPECT_EQ(pauses, 0u);
  EXPECT_GT(source.value()->stats().prefetch_wakes_.value(), 0u)
      << "the queue never came near queued.min.messages";
}

}  // namespace
}  // namespace vigil::consumers

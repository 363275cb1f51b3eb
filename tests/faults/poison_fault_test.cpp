// A poison record: it decodes, but the model throws on it (tests/data/poison_model raises when
// the first feature is -999). It goes to the dead-letter topic with vigil.error=model_error,
// and the records after it on the same partition are still scored.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "faults/fault_fixture.h"
#include "kafka/embedded_cluster.h"
#include "support/wait.h"

namespace vigil::faults {
namespace {

constexpr size_t kEvents = 3000;
const std::vector<size_t> kPoisonAt = {700, 1500, 2999};

TEST_F(FaultTest, PoisonRecordGoesToTheDeadLetterTopicAndItsPartitionKeepsFlowing) {
  // One input partition: every record after a poison one is behind it in the same partition.
  auto cluster = kafka::EmbeddedCluster::start(
      3, {{"transactions", 1}, {"scores", 3}, {"transactions.dlq", 3}});
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  const std::string bootstrap = (*cluster)->bootstrap();
  Records events = make_events(ref_, "p-", 0, kEvents);
  for (size_t i : kPoisonAt) {
    auto& value = events[i].second;
    const size_t open = value.find('[') + 1;
    value.replace(open, value.find(',', open) - open, "-999");
  }

  VigilOptions options;
  options.bootstrap = bootstrap;
  options.model_repository = std::string(VIGIL_SOURCE_DIR) + "/tests/data/poison_model";
  options.model_name = "poison";
  auto vigil = start_vigil("vigil", options);
  ASSERT_NE(vigil, nullptr);
  ASSERT_TRUE(testing::wait_until([&] { return vigil->ready(); }, milliseconds(60000)))
      << vigil->get("/ready").second << "\n"
      << vigil->log_tail();
  PacedProducer producer(bootstrap, "transactions", events, 3000, /*partition=*/0);
  ASSERT_TRUE(producer.wait_done(milliseconds(60000)).ok());
  const std::string dlq_model = "vigil_kafka_dead_lettered_total{reason=\"model_error\"}";
  EXPECT_TRUE(testing::wait_until(
      [&] {
        return vigil->scores_delivered() +
                   vigil->metric_or_zero("vigil_kafka_produced_total{kind=\"dlq\"}") >=
               kEvents;
      },
      milliseconds(60000)))
      << vigil->log_tail();
  EXPECT_EQ(vigil->metric(dlq_model), static_cast<double>(kPoisonAt.size()));
  stop_all({vigil.get()});

  auto dlq = read_all(bootstrap, "transactions.dlq");
  auto scores = read_all(bootstrap, "scores");
  ASSERT_TRUE(dlq.ok() && scores.ok());
  ASSERT_EQ(dlq->size(), kPoisonAt.size());
  std::map<std::string, testing::TestRecord> dead;
  for (const auto& r : *dlq) dead[r.key] = r;
  int64_t last_poison_offset = -1;
  for (size_t i : kPoisonAt) {
    const auto& [id, value] = events[i];
    ASSERT_EQ(dead.count(id), 1u) << id;
    const auto& h = dead[id].headers;
    EXPECT_EQ(h.at("vigil.error"), "model_error");
    EXPECT_EQ(h.at("vigil.error_message").rfind("model forward failed", 0), 0u)
        << h.at("vigil.error_message");
    EXPECT_NE(h.at("vigil.error_message").find("poison"), std::string::npos)  // the cause
        << h.at("vigil.error_message");
    EXPECT_EQ(h.at("vigil.source_partition"), "0");
    EXPECT_EQ(dead[id].value, value);  // the raw record travels with the dead letter
    last_poison_offset =
        std::max<int64_t>(last_poison_offset, std::stoll(h.at("vigil.source_offset")));
  }
  // Records after the first poison one, on the same partition, were scored; the batch
  // neighbours of each poison record too (the batcher retries a failed batch row by row).
  std::set<std::string> scored;
  for (const auto& r : *scores) scored.insert(r.key);
  for (size_t i = 0; i < kEvents; ++i) {
    const bool poison = std::find(kPoisonAt.begin(), kPoisonAt.end(), i) != kPoisonAt.end();
    EXPECT_EQ(scored.count(events[i].first), poison ? 0u : 1u) << events[i].first;
  }
  EXPECT_EQ(last_poison_offset, static_cast<int64_t>(kEvents - 1));

  Tally t = tally("poison record", bootstrap, events);
  EXPECT_EQ(t.inputs, kEvents);
  EXPECT_EQ(t.scored, kEvents - kPoisonAt.size());
  EXPECT_EQ(t.dlq, kPoisonAt.size());
  EXPECT_EQ(t.missing, 0u);
  EXPECT_EQ(t.duplicates, 0u);
  EXPECT_EQ(t.unknown, 0u);
}

}  // namespace
}  // namespace vigil::faults

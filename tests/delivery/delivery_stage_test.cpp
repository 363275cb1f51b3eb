// The delivery stage, the one exit for scores, driven through its producer seam by a scripted
// producer (support/fake_producer.h): every outcome a delivery report can bring, and what the
// stage then acknowledges, holds, produces again or dead-letters. No broker, no librdkafka
// client: these run under TSan too.
#include "delivery/delivery_stage.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "support/fake_producer.h"
#include "support/wait.h"

namespace vigil::delivery {
namespace {

using std::chrono::milliseconds;
using testing::FakeProducer;
using Topic = testing::FakeProducer::Topic;

// The consumer's side of the seam: what was acknowledged and held, and which partitions this
// member still owns.
class RecordingAcknowledger final : public Acknowledger {
 public:
  void acknowledge(const scoring::RecordPosition* records, size_t n) override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < n; ++i) acked_.push_back({records[i].partition, records[i].offset});
  }
  void hold(const scoring::RecordPosition& r, const std::string& why) override {
    std::lock_guard<std::mutex> lock(mutex_);
    holds_.push_back({{r.partition, r.offset}, why});
  }
  bool owns(const scoring::RecordPosition& r) const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return revoked_.count(r.partition) == 0;
  }
  void revoke(int32_t partition) {
    std::lock_guard<std::mutex> lock(mutex_);
    revoked_.insert(partition);
  }
  std::vector<std::pair<int32_t, int64_t>> acked() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return acked_;
  }
  std::vector<std::pair<std::pair<int32_t, int64_t>, std::string>> holds() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return holds_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<int32_t, int64_t>> acked_;
  std::vector<std::pair<std::pair<int32_t, int64_t>, std::string>> holds_;
  std::set<int32_t> revoked_;
};

class DeliveryStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_.name = "fraud_mlp";
    model_.version = "7";
    model_.input_names = {"V1", "V2"};
  }
  void TearDown() override {
    if (stage_) stage_->stop(milliseconds(0));
  }

  void start(DeliveryConfig config = {}) {
    config.retry_backoff = milliseconds(10);  // held dead letters are retried soon
    config.retry_backoff_max = milliseconds(20);
    auto stage = DeliveryStage::create(
        config,
        [this](sinks::DeliveryListener& listener) {
          auto p = std::make_unique<FakeProducer>(listener);
          producer_ = p.get();
          return Result<std::unique_ptr<sinks::Producer>>(std::move(p));
        },
        nullptr, ack_, registry_);
    ASSERT_TRUE(stage.ok()) << stage.error();
    stage_ = std::move(stage.value());
    stage_->start();
  }

  // A streamed row of partition `p` at `offset`; its consumed record's value names `id`.
  scoring::ScoreRequest kafka_row(int32_t p, int64_t offset, const std::string& id) {
    scoring::ScoreRequest r;
    r.id = id;
    r.origin = scoring::Origin::kKafka;
    r.source = testing::make_source(p, offset, "{\"transaction_id\":\"" + id + "\"}", id);
    return r;
  }
  scoring::ScoreRequest http_row(const std::string& id) {
    scoring::ScoreRequest r;
    r.id = id;
    r.origin = scoring::Origin::kHttp;
    r.done = [](scoring::ScoreRequest&, const scoring::ScoreOutcome&) {};  // answered already
    return r;
  }
  static scoring::ScoreOutcome scored(float score) {
    scoring::ScoreOutcome o;
    o.score = score;
    o.is_fraud = score >= 0.5f;
    return o;
  }
  void complete(std::vector<scoring::ScoreRequest>& batch, std::vector<scoring::ScoreOutcome> o) {
    stage_->complete(batch, o, model_);
  }
  double counter(const std::string& name, const metrics::Labels& labels = {}) {
    return registry_.counter(name, "", labels).value();
  }

  metrics::Registry registry_;
  RecordingAcknowledger ack_;
  scoring::ModelInfo model_;
  FakeProducer* producer_ = nullptr;
  std::unique_ptr<DeliveryStage> stage_;
};

TEST_F(DeliveryStageTest, ABatchIsAcknowledgedAtOnceWhenItsLastScoreIsDelivered) {
  start();
  std::vector<scoring::ScoreRequest> batch;
  batch.push_back(kafka_row(0, 10, "a"));
  batch.push_back(kafka_row(1, 20, "b"));
  batch.push_back(kafka_row(0, 11, "c"));
  complete(batch, {scored(0.1f), scored(0.9f), scored(0.2f)});
  const auto produced = producer_->produced();
  ASSERT_EQ(produced.size(), 3u);
  EXPECT_EQ(produced[1].key, "b");
  EXPECT_NE(produced[1].value.find("\"is_fraud\":true"), std::string::npos) << produced[1].value;
  EXPECT_NE(produced[1].value.find("\"source\":\"kafka\""), std::string::npos);
  producer_->report(2, RD_KAFKA_RESP_ERR_NO_ERROR);
  producer_->report(0, RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_TRUE(ack_.acked().empty()) << "acknowledged before every score of the batch was";
  producer_->report(1, RD_KAFKA_RESP_ERR_NO_ERROR);
  const std::vector<std::pair<int32_t, int64_t>> in_batch_order = {{0, 10}, {1, 20}, {0, 11}};
  EXPECT_EQ(ack_.acked(), in_batch_order);
  EXPECT_EQ(counter("vigil_kafka_produced_total", {{"kind", "score"}}), 3.0);
}

TEST_F(DeliveryStageTest, EachRoutesScoresGoToItsOutputTopicAndItsDeadLettersNameItsInputTopic) {
  DeliveryConfig config;
  config.input_topics = {"transactions", "transactions.raw"};
  start(config);
  auto routed = [](scoring::ScoreRequest r, uint16_t route) {
    r.source.route = route;
    return r;
  };
  // One model scores both routes: a batch holds records of both, partitions and offsets alike.
  std::vector<scoring::ScoreRequest> batch;
  batch.push_back(kafka_row(0, 10, "a"));
  batch.push_back(routed(kafka_row(0, 10, "b"), 1));
  batch.push_back(routed(kafka_row(1, 3, "c"), 1));
  batch.push_back(kafka_row(0, 11, "d"));
  complete(batch, {scored(0.1f), scored(0.2f), scored(0.3f), scored(0.4f)});
  const auto produced = producer_->produced();
  ASSERT_EQ(produced.size(), 4u);
  const std::vector<std::pair<std::string, size_t>> expected = {
      {"a", 0}, {"b", 1}, {"c", 1}, {"d", 0}};
  for (size_t i = 0; i < produced.size(); ++i) {
    EXPECT_EQ(std::make_pair(produced[i].key, produced[i].output), expected[i]) << i;
  }
  for (size_t i = 0; i < 4; ++i) producer_->report(i, RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(ack_.acked().size(), 4u);

  stage_->dead_letter(routed(kafka_row(2, 7, "bad"), 1).source, "malformed_json", "bad");
  ASSERT_TRUE(producer_->wait_for(Topic::kDeadLetter, 1));
  EXPECT_EQ(producer_->produced()[4].header("vigil.source_topic"), "transactions.raw");
}

TEST_F(DeliveryStageTest,
       AScoreRefusedForGoodIsDeadLetteredAndAcknowledgedOnlyOnceThatIsDelivered) {
  start();
  std::vector<scoring::ScoreRequest> batch;
  batch.push_back(kafka_row(0, 1, "ok"));
  batch.push_back(kafka_row(0, 2, "refused"));
  complete(batch, {scored(0.1f), scored(0.2f)});
  producer_->report(0, RD_KAFKA_RESP_ERR_NO_ERROR);
  producer_->report(1, RD_KAFKA_RESP_ERR_INVALID_RECORD);
  ASSERT_TRUE(producer_->wait_for(Topic::kDeadLetter, 1));
  const auto letter = producer_->produced()[2];
  EXPECT_EQ(letter.key, "refused");
  EXPECT_EQ(letter.value, "{\"transaction_id\":\"refused\"}") << "the consumed record, as read";
  EXPECT_EQ(letter.header("vigil.error"), "delivery_failed");
  EXPECT_EQ(letter.header("vigil.source_offset"), "2");
  // The delivered score of the batch is acknowledged; the refused one waits for its letter.
  ASSERT_TRUE(testing::wait_until([&] { return ack_.acked().size() == 1; }, milliseconds(5000)));
  EXPECT_EQ(ack_.acked()[0], std::make_pair(0, int64_t{1}));
  producer_->report(2, RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(ack_.acked().size(), 2u);
  EXPECT_EQ(ack_.acked()[1], std::make_pair(0, int64_t{2}));
  EXPECT_EQ(counter("vigil_kafka_delivery_failures_total"), 1.0);
  EXPECT_EQ(counter("vigil_kafka_dead_lettered_total", {{"reason", "delivery_failed"}}), 1.0);
  EXPECT_TRUE(ack_.holds().empty());
}

TEST_F(DeliveryStageTest, ATimedOutScoreIsProducedAgainWithItsPartitionHeldAndNeverDeadLettered) {
  start();
  std::vector<scoring::ScoreRequest> batch;
  batch.push_back(kafka_row(3, 40, "slow"));
  complete(batch, {scored(0.3f)});
  const std::string first_value = producer_->produced()[0].value;
  producer_->report(0, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
  ASSERT_EQ(ack_.holds().size(), 1u);
  EXPECT_EQ(ack_.holds()[0].first, std::make_pair(3, int64_t{40}));
  EXPECT_NE(ack_.holds()[0].second.find("timed out"), std::string::npos);
  ASSERT_TRUE(producer_->wait_for(Topic::kScores, 2));
  const auto again = producer_->produced()[1];
  EXPECT_EQ(again.key, "slow");
  EXPECT_EQ(again.value, first_value) << "produced again byte for byte";
  EXPECT_TRUE(ack_.acked().empty());
  producer_->report(1, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);  // and again: no bound
  ASSERT_TRUE(producer_->wait_for(Topic::kScores, 3));
  producer_->report(2, RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(ack_.acked().size(), 1u);
  EXPECT_EQ(producer_->count(Topic::kDeadLetter), 0u);
  EXPECT_EQ(counter("vigil_kafka_produce_timeouts_total"), 2.0);
}

TEST_F(DeliveryStageTest, AFatalProducerIsReplacedAndWhatItHadNotDeliveredIsProducedAgain) {
  start();
  std::vector<scoring::ScoreRequest> batch;
  batch.push_back(kafka_row(0, 5, "x"));
  batch.push_back(kafka_row(0, 6, "y"));
  complete(batch, {scored(0.1f), scored(0.1f)});
  producer_->report(0, RD_KAFKA_RESP_ERR_NO_ERROR);
  producer_->set_fatal();
  // The retry thread replaces the producer; the undelivered score comes back to be produced.
  ASSERT_TRUE(testing::wait_until([&] { return producer_->replaced() == 1; }, milliseconds(5000)));
  ASSERT_TRUE(producer_->wait_for(Topic::kScores, 3));
  EXPECT_EQ(producer_->produced()[2].key, "y");
  producer_->report(2, RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(ack_.acked().size(), 2u);
  EXPECT_EQ(producer_->count(Topic::kDeadLetter), 0u);
  EXPECT_EQ(counter("vigil_delivery_produced_again_total"), 1.0);
}

TEST_F(DeliveryStageTest, ADeadLetterKafkaRefusesHoldsItsPartitionAndIsRetriedUntilItGoesThrough) {
  start();
  stage_->dead_letter(testing::make_source(2, 7, "not json"), "malformed_json", "bad");
  ASSERT_EQ(producer_->count(Topic::kDeadLetter), 1u);
  producer_->report(0, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  ASSERT_EQ(ack_.holds().size(), 1u);
  EXPECT_EQ(ack_.holds()[0].first, std::make_pair(2, int64_t{7}));
  EXPECT_NE(ack_.holds()[0].second.find("dead-letter write failed"), std::string::npos);
  EXPECT_EQ(stage_->held_records(), 1u);
  ASSERT_TRUE(producer_->wait_for(Topic::kDeadLetter, 2));  // after the backoff
  producer_->report(1, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  ASSERT_TRUE(producer_->wait_for(Topic::kDeadLetter, 3));
  EXPECT_TRUE(ack_.acked().empty());
  producer_->report(2, RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(ack_.acked().size(), 1u) << "the hold is lifted by the acknowledgement";
  EXPECT_EQ(stage_->held_records(), 0u);
  EXPECT_EQ(ack_.holds().size(), 1u) << "held once, not once per attempt";
  EXPECT_EQ(counter("vigil_kafka_dead_letter_failures_total"), 2.0);
}

TEST_F(DeliveryStageTest, ADeadLetterTooLargeGoesAgainTruncatedWithItsSizeAndHashAndHoldsNothing) {
  start();
  const std::string huge(100000, 'x');
  stage_->dead_letter(testing::make_source(0, 3, huge), "event_too_large", "too large");
  producer_->report(0, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  ASSERT_TRUE(producer_->wait_for(Topic::kDeadLetter, 2));
  const auto letter = producer_->produced()[1];
  EXPECT_EQ(letter.value, huge.substr(0, 4096));
  EXPECT_EQ(letter.header("vigil.value_truncated"), "true");
  EXPECT_EQ(letter.header("vigil.value_size"), "100000");
  EXPECT_EQ(letter.header("vigil.value_sha256").size(), 64u);
  EXPECT_TRUE(ack_.holds().empty());
  producer_->report(1, RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(ack_.acked().size(), 1u);
  EXPECT_EQ(counter("vigil_kafka_dead_letters_truncated_total"), 1.0);
}

TEST_F(DeliveryStageTest, WorkOfARevokedPartitionIsDroppedInsteadOfRetried) {
  start();
  stage_->dead_letter(testing::make_source(4, 9, "v"), "malformed_json", "bad");
  ack_.revoke(4);  // the partition moves to another member, which consumes the record again
  producer_->report(0, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  ASSERT_TRUE(testing::wait_until([&] { return stage_->held_records() == 0; }, milliseconds(5000)));
  EXPECT_EQ(counter("vigil_delivery_abandoned_total"), 1.0);
  EXPECT_EQ(producer_->count(Topic::kDeadLetter), 1u) << "retried after its partition moved";
  EXPECT_TRUE(ack_.acked().empty());
}

TEST_F(DeliveryStageTest, HttpRowsLeaveByTheSameEncoderMarkedHttpAndOnlyWithATransactionId) {
  DeliveryConfig config;
  config.publish_http_scores = true;
  start(config);
  std::vector<scoring::ScoreRequest> batch;
  batch.push_back(http_row("h-1"));
  batch.push_back(http_row(""));  // an anonymous instance: answered, never published
  batch.push_back(kafka_row(0, 1, "k-1"));
  auto outcomes = std::vector<scoring::ScoreOutcome>{scored(0.75f), scored(0.5f), scored(0.75f)};
  outcomes[0].reasons = {{1, 0.25f}};
  outcomes[2].reasons = {{1, 0.25f}};
  complete(batch, outcomes);
  const auto produced = producer_->produced();
  ASSERT_EQ(produced.size(), 2u);
  const auto& http = produced[0].topic == Topic::kScoresBestEffort ? produced[0] : produced[1];
  const auto& kafka = produced[0].topic == Topic::kScores ? produced[0] : produced[1];
  ASSERT_EQ(http.topic, Topic::kScoresBestEffort);
  ASSERT_EQ(kafka.topic, Topic::kScores);
  EXPECT_EQ(http.key, "h-1");
  // Byte for byte the streamed record's encoding, but for the id and the source.
  std::string expected = kafka.value;
  expected.replace(expected.find("k-1"), 3, "h-1");
  const std::string scored_at = "\"scored_at_ms\":";
  const auto strip_time = [&](std::string v) {
    const size_t at = v.find(scored_at) + scored_at.size();
    return v.erase(at, v.find(',', at) - at);
  };
  expected.replace(expected.find("\"source\":\"kafka\""), 16, "\"source\":\"http\"");
  EXPECT_EQ(strip_time(http.value), strip_time(expected));
  EXPECT_NE(http.value.find("\"reasons\":[{\"feature\":\"V2\",\"contribution\":0.25}]"),
            std::string::npos)
      << http.value;
  producer_->report(0, RD_KAFKA_RESP_ERR_NO_ERROR);
  producer_->report(1, RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(ack_.acked().size(), 1u) << "only the streamed row has an offset";
  EXPECT_EQ(counter("vigil_http_scores_published_total"), 1.0);
}

TEST_F(DeliveryStageTest, HttpRowsAreNotProducedUnlessPublishingIsOn) {
  start();
  std::vector<scoring::ScoreRequest> batch;
  batch.push_back(http_row("h-2"));
  complete(batch, {scored(0.1f)});
  EXPECT_TRUE(producer_->produced().empty());
}

TEST_F(DeliveryStageTest, WhatHasNoOutcomeAtStopIsReleasedUnacknowledged) {
  start();
  std::vector<scoring::ScoreRequest> batch;
  batch.push_back(kafka_row(0, 1, "a"));
  batch.push_back(kafka_row(0, 2, "b"));
  complete(batch, {scored(0.1f), scored(0.1f)});
  producer_->report(0, RD_KAFKA_RESP_ERR_NO_ERROR);
  stage_->stop(milliseconds(0));  // the producer purges the rest
  EXPECT_EQ(ack_.acked().size(), 1u) << "the delivered one only";
  EXPECT_EQ(counter("vigil_delivery_released_total"), 1.0);
  EXPECT_EQ(producer_->count(Topic::kDeadLetter), 0u);
}

}  // namespace
}  // namespace vigil::delivery

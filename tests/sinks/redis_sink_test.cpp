// RedisSink against a real redis-server on loopback (tests/support/redis_server.h).
#include "sinks/redis_sink.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "sinks/score_record.h"
#include "support/redis_server.h"
#include "support/wait.h"

namespace {

using namespace std::chrono_literals;
using vigil::metrics::Registry;
using vigil::sinks::RedisConfig;
using vigil::sinks::RedisSink;
using vigil::testing::RedisClient;
using vigil::testing::RedisServer;
using vigil::testing::RedisServerOptions;
using vigil::testing::wait_until;

// A score as the delivery stage hands it to the sink: its key and its encoded record.
struct TestRecord {
  std::string transaction_id;
  std::string json;
  bool http = false;  // cached only where no record exists (SET NX)
};

TestRecord make_record(const std::string& id, int i = 0, bool http = false) {
  TestRecord r{id, {}, http};
  const float score = 0.001f * static_cast<float>(i % 1000);
  vigil::sinks::append_score_json(
      r.json, id, score, score > 0.5f, "fraud_mlp", "3", 1'700'000'000'000 + i,
      i % 2 == 0 ? 1'699'999'999'000 + i : -1,
      http ? vigil::sinks::ScoreSource::kHttp : vigil::sinks::ScoreSource::kKafka);
  return r;
}

bool publish(RedisSink& sink, const TestRecord& r) {
  const vigil::sinks::EncodedScore e{r.transaction_id, r.json, r.http};
  return sink.publish(&e, 1) == 1;
}

// The value of one series in the registry (counter or gauge); -1 when it is not there.
double metric(const Registry& registry, const std::string& name,
              const vigil::metrics::Labels& labels = {}) {
  for (const auto& family : registry.collect()) {
    if (family.name != name) continue;
    for (const auto& series : family.series) {
      if (series.labels == labels) return series.value;
    }
  }
  return -1;
}

class RedisSinkTest : public ::testing::Test {
 protected:
  void SetUp() override { start_server({}); }

  void start_server(RedisServerOptions options) {
    auto server = RedisServer::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.error();
    server_ = std::move(server.value());
  }

  RedisConfig config() const {
    RedisConfig c;
    c.url = server_->url();
    c.ttl_s = 600;
    c.key_prefix = "test:score:";
    c.command_timeout = 2000ms;
    c.reconnect_backoff_max = 200ms;
    return c;
  }

  std::unique_ptr<RedisSink> make_sink(const RedisConfig& c) {
    auto sink = RedisSink::Create(c, registry_);
    EXPECT_TRUE(sink.ok()) << sink.error();
    return sink.ok() ? std::move(sink.value()) : nullptr;
  }

  RedisClient client() {
    auto c = RedisClient::Connect(*server_);
    EXPECT_TRUE(c.ok()) << c.error();
    return std::move(c.value());
  }

  long long dbsize() {
    auto n = client().dbsize();
    EXPECT_TRUE(n.ok()) << n.error();
    return n.ok() ? *n : -1;
  }

  Registry registry_;  // outlives the sinks, which are locals of each test
  std::unique_ptr<RedisServer> server_;
};

TEST_F(RedisSinkTest, AnHttpScoreNeverReplacesAStreamedTransactionsRecord) {
  // POST /predict with a chosen transaction_id must not forge the cached score of a streamed
  // transaction: an HTTP-scored record is cached only where none exists (SET NX), while a
  // streamed record always replaces what is there.
  auto c = config();
  auto sink = make_sink(c);
  sink->start();
  ASSERT_TRUE(wait_until([&] { return sink->connected(); }, 5s));
  const std::string streamed_json = R"({"transaction_id":"real-1","score":0.9,"source":"kafka"})";
  const vigil::sinks::EncodedScore streamed{"real-1", streamed_json};
  ASSERT_EQ(sink->publish(&streamed, 1), 1u);
  ASSERT_TRUE(sink->flush(10s));
  TestRecord forged = make_record("real-1", 1, /*http=*/true);
  TestRecord fresh = make_record("http-only-1", 2, /*http=*/true);
  EXPECT_TRUE(publish(*sink, forged));
  EXPECT_TRUE(publish(*sink, fresh));
  ASSERT_TRUE(sink->flush(10s));
  EXPECT_EQ(sink->stats().failed(), 0u);
  auto redis = client();
  auto value = redis.get(c.key_prefix + "real-1");
  ASSERT_TRUE(value.ok() && value->has_value());
  EXPECT_EQ(**value, streamed_json) << "an HTTP score replaced a streamed transaction's record";
  value = redis.get(c.key_prefix + "http-only-1");
  ASSERT_TRUE(value.ok() && value->has_value());
  EXPECT_EQ(**value, fresh.json);
  EXPECT_NE((**value).find("\"source\":\"http\""), std::string::npos) << **value;
  // A streamed score of a transaction first scored over HTTP replaces it.
  const std::string later_json = R"({"transaction_id":"http-only-1","source":"kafka"})";
  const vigil::sinks::EncodedScore later{"http-only-1", later_json};
  ASSERT_EQ(sink->publish(&later, 1), 1u);
  ASSERT_TRUE(sink->flush(10s));
  value = redis.get(c.key_prefix + "http-only-1");
  ASSERT_TRUE(value.ok() && value->has_value());
  EXPECT_EQ(**value, later_json);
}

TEST_F(RedisSinkTest, WritesEachScoreAsJsonUnderItsKeyWithTheTtl) {
  auto c = config();
  auto sink = make_sink(c);
  sink->start();
  ASSERT_TRUE(wait_until([&] { return sink->connected(); }, 5s));
  EXPECT_EQ(metric(registry_, "vigil_redis_connected"), 1.0);

  std::vector<TestRecord> records;
  for (int i = 0; i < 200; ++i) records.push_back(make_record("tx-" + std::to_string(i), i));
  // Keys and values are binary-safe: spaces, quotes, NUL bytes, UTF-8.
  records.push_back(make_record("with space", 1));
  records.push_back(make_record("quote\"and\\slash", 2));
  records.push_back(make_record(std::string("nul\0byte", 8), 3));
  records.push_back(make_record("\xc3\xbcnicode", 4));
  for (const auto& r : records) EXPECT_TRUE(publish(*sink, r));
  ASSERT_TRUE(sink->flush(10s));

  EXPECT_EQ(sink->stats().written(), records.size());
  EXPECT_EQ(sink->stats().failed(), 0u);
  EXPECT_EQ(sink->stats().skipped_queue_full() + sink->stats().skipped_unavailable(), 0u);
  EXPECT_EQ(metric(registry_, "vigil_redis_writes_total"), static_cast<double>(records.size()));
  EXPECT_EQ(metric(registry_, "vigil_redis_queue_depth"), 0.0);

  auto redis = client();
  EXPECT_EQ(*redis.dbsize(), static_cast<long long>(records.size()));
  for (const auto& r : records) {
    const std::string key = c.key_prefix + r.transaction_id;
    auto value = redis.get(key);
    ASSERT_TRUE(value.ok()) << value.error();
    ASSERT_TRUE(value->has_value()) << "missing " << key;
    EXPECT_EQ(**value, r.json);
    auto ttl = redis.ttl(key);
    ASSERT_TRUE(ttl.ok()) << ttl.error();
    EXPECT_GT(*ttl, 0);
    EXPECT_LE(*ttl, c.ttl_s);
  }
}

TEST_F(RedisSinkTest, PipelinesTwentyThousandWritesInRoundsOfPipelineMax) {
  auto c = config();
  c.queue_capacity = 32768;
  c.pipeline_max = 512;
  auto sink = make_sink(c);
  constexpr int kRecords = 20000;
  // Queued before start(), so the writer finds full rounds: ceil(20000 / 512) = 40.
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_TRUE(publish(*sink, make_record("p-" + std::to_string(i), i)));
  }
  EXPECT_EQ(sink->queue_depth(), static_cast<size_t>(kRecords));
  sink->start();
  ASSERT_TRUE(sink->flush(30s));
  EXPECT_EQ(sink->stats().written(), static_cast<uint64_t>(kRecords));
  EXPECT_EQ(sink->stats().rounds(), 40u);
  EXPECT_EQ(dbsize(), kRecords);

  // And while publishing concurrently with the writer.
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_TRUE(publish(*sink, make_record("q-" + std::to_string(i), i)));
  }
  ASSERT_TRUE(sink->flush(30s));
  EXPECT_EQ(sink->stats().written(), 2u * kRecords);
  EXPECT_EQ(sink->stats().failed(), 0u);
  EXPECT_EQ(dbsize(), 2 * kRecords);
  auto value = client().get(c.key_prefix + "q-19999");
  ASSERT_TRUE(value.ok() && value->has_value());
  EXPECT_EQ(**value, make_record("q-19999", 19999).json);
}

TEST_F(RedisSinkTest, PublishBeforeStartQueuesUpToCapacityAndCountsTheRest) {
  auto c = config();
  c.queue_capacity = 4;
  auto sink = make_sink(c);
  int accepted = 0;
  for (int i = 0; i < 10; ++i) accepted += publish(*sink, make_record("b-" + std::to_string(i)));
  EXPECT_EQ(accepted, 4);
  EXPECT_EQ(sink->stats().skipped_queue_full(), 6u);
  EXPECT_EQ(metric(registry_, "vigil_redis_skipped_total", {{"reason", "queue_full"}}), 6.0);
  sink->start();
  ASSERT_TRUE(sink->flush(10s));
  EXPECT_EQ(sink->stats().written(), 4u);
  EXPECT_EQ(dbsize(), 4);
}

TEST_F(RedisSinkTest, QueueFullCountsSkipsInsteadOfBlockingWhileRedisHangs) {
  auto c = config();
  c.queue_capacity = 8;
  c.pipeline_max = 4;
  c.command_timeout = 10000ms;  // the hung round stays in flight for the whole test
  auto sink = make_sink(c);
  sink->start();
  ASSERT_TRUE(wait_until([&] { return sink->connected(); }, 5s));

  server_->pause();  // SIGSTOP: the kernel still accepts bytes, nobody answers
  ASSERT_TRUE(publish(*sink, make_record("hung-0")));
  // The writer took it into a round and now waits for the reply.
  ASSERT_TRUE(wait_until([&] { return sink->queue_depth() == 0; }, 5s));

  int accepted = 0;
  auto slowest = std::chrono::steady_clock::duration::zero();
  for (int i = 1; i <= 1000; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    accepted += publish(*sink, make_record("hung-" + std::to_string(i)));
    slowest = std::max(slowest, std::chrono::steady_clock::now() - t0);
  }
  // The writer keeps sending while replies are outstanding, up to 8 rounds in flight (the
  // first holds hung-0, each other at most pipeline_max = 4), as fast as it gets to run; then
  // the queue's capacity (8) fills and the rest is turned away.
  EXPECT_GE(accepted, 8);
  EXPECT_LE(accepted, 7 * 4 + 8);
  EXPECT_EQ(sink->stats().skipped_queue_full(), 1000u - static_cast<uint64_t>(accepted));
  EXPECT_LE(sink->queue_depth(), 8u);  // the writer may still move a chunk into a round
  EXPECT_LT(slowest, 100ms) << "publish() waited for Redis";

  server_->resume();
  ASSERT_TRUE(sink->flush(15s));
  EXPECT_EQ(sink->stats().written(), 1u + static_cast<uint64_t>(accepted));
  EXPECT_EQ(sink->stats().settled(), 1001u);
  EXPECT_EQ(dbsize(), 1 + accepted);
}

TEST_F(RedisSinkTest, ReconnectsAfterRedisIsKilledAndRestartedOnTheSamePort) {
  auto c = config();
  c.queue_capacity = 4096;
  c.pipeline_max = 64;
  c.command_timeout = 1000ms;
  auto sink = make_sink(c);
  sink->start();
  ASSERT_TRUE(wait_until([&] { return sink->connected(); }, 5s));

  // A steady publisher, as the scoring workers would be.
  std::atomic<bool> publishing{true};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> rejected{0};
  std::atomic<int64_t> slowest_ns{0};
  std::thread publisher([&] {
    for (int i = 0; publishing.load(); ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      const bool ok = publish(*sink, make_record("live-" + std::to_string(i), i));
      const int64_t ns = (std::chrono::steady_clock::now() - t0).count();
      (ok ? accepted : rejected).fetch_add(1);
      if (ns > slowest_ns.load()) slowest_ns.store(ns);
      if (i % 50 == 0) std::this_thread::sleep_for(200us);  // pace it: ~100k records/s at most
    }
  });

  EXPECT_TRUE(wait_until([&] { return sink->stats().written() >= 500; }, 10s));
  const int port = server_->port();
  server_->kill();
  EXPECT_TRUE(wait_until([&] { return !sink->connected(); }, 5s));
  EXPECT_TRUE(wait_until([&] { return sink->stats().skipped_unavailable() > 0; }, 5s));
  EXPECT_EQ(metric(registry_, "vigil_redis_connected"), 0.0);

  auto restarted = server_->restart();
  ASSERT_TRUE(restarted.ok()) << restarted.message();
  ASSERT_EQ(server_->port(), port);
  EXPECT_TRUE(wait_until([&] { return sink->connected(); }, 10s));
  const uint64_t written_at_reconnect = sink->stats().written();
  EXPECT_TRUE(
      wait_until([&] { return sink->stats().written() >= written_at_reconnect + 500; }, 10s));
  publishing.store(false);
  publisher.join();

  // Records published after Redis came back are written.
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(publish(*sink, make_record("after-" + std::to_string(i))));
  ASSERT_TRUE(sink->flush(10s));
  auto redis = client();
  for (int i = 0; i < 100; ++i) {
    auto v = redis.get(c.key_prefix + "after-" + std::to_string(i));
    ASSERT_TRUE(v.ok()) << v.error();
    EXPECT_TRUE(v->has_value()) << "after-" << i;
  }

  // Every record is accounted for, exactly once.
  const auto& s = sink->stats();
  EXPECT_GE(s.failed(), 1u);  // the round in flight when Redis died
  EXPECT_GT(s.skipped_unavailable(), 0u);
  EXPECT_EQ(s.skipped_queue_full(), rejected.load());
  EXPECT_EQ(s.written() + s.failed() + s.skipped_unavailable(), accepted.load() + 100);
  EXPECT_LT(std::chrono::nanoseconds(slowest_ns.load()), 100ms) << "publish() waited for Redis";
}

TEST_F(RedisSinkTest, HungRedisAfterAReconnectStillTimesOut) {
  // hiredis 0.14 sets no read timeout on a new context: the sink must set it on each one.
  auto c = config();
  c.command_timeout = 300ms;
  auto sink = make_sink(c);
  sink->start();
  ASSERT_TRUE(wait_until([&] { return sink->connected(); }, 5s));
  server_->kill();
  ASSERT_TRUE(server_->restart().ok());
  ASSERT_TRUE(publish(*sink, make_record("probe")));  // finds the dead connection
  ASSERT_TRUE(sink->flush(5s));
  ASSERT_TRUE(wait_until([&] { return sink->connected(); }, 10s));  // a new context
  const uint64_t failed_before = sink->stats().failed();

  server_->pause();
  ASSERT_TRUE(publish(*sink, make_record("into-the-void")));
  EXPECT_TRUE(wait_until([&] { return !sink->connected(); }, 5s));
  EXPECT_TRUE(wait_until([&] { return sink->stats().failed() == failed_before + 1; }, 5s));
  server_->resume();
  EXPECT_TRUE(wait_until([&] { return sink->connected(); }, 10s));
}

TEST_F(RedisSinkTest, WrongPortMeansNotConnectedAndEveryRecordCountedAsUnavailable) {
  auto port = vigil::testing::free_loopback_port();
  ASSERT_TRUE(port.ok()) << port.error();
  auto c = config();
  c.url = "redis://127.0.0.1:" + std::to_string(*port);
  auto sink = make_sink(c);
  sink->start();
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(publish(*sink, make_record("w-" + std::to_string(i))));
  ASSERT_TRUE(sink->flush(5s));  // dropped, not stuck
  EXPECT_FALSE(sink->connected());
  EXPECT_EQ(sink->stats().skipped_unavailable(), 100u);
  EXPECT_EQ(sink->stats().written() + sink->stats().failed(), 0u);
  EXPECT_EQ(metric(registry_, "vigil_redis_skipped_total", {{"reason", "unavailable"}}), 100.0);
  EXPECT_EQ(metric(registry_, "vigil_redis_connected"), 0.0);
  sink->stop();
  sink->stop();  // idempotent
}

TEST_F(RedisSinkTest, AuthenticatesAndSelectsTheDatabaseFromTheUrl) {
  RedisServerOptions options;
  options.extra_args = {"--requirepass", "s3cr@t"};
  start_server(options);
  auto c = config();
  c.url = "redis://:s3cr%40t@127.0.0.1:" + std::to_string(server_->port()) + "/3";
  auto sink = make_sink(c);
  sink->start();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(publish(*sink, make_record("a-" + std::to_string(i))));
  ASSERT_TRUE(sink->flush(10s));
  EXPECT_EQ(sink->stats().written(), 10u);

  auto redis = client();
  ASSERT_TRUE(redis.auth("s3cr@t").ok());
  EXPECT_EQ(*redis.dbsize(), 0);
  ASSERT_TRUE(redis.select(3).ok());
  auto keys = redis.keys(c.key_prefix + "*");
  ASSERT_TRUE(keys.ok()) << keys.error();
  EXPECT_EQ(keys->size(), 10u);

  // A wrong password: never connected, counted, no crash.
  Registry other;
  c.url = "redis://:wrong@127.0.0.1:" + std::to_string(server_->port());
  auto denied = RedisSink::Create(c, other);
  ASSERT_TRUE(denied.ok());
  (*denied)->start();
  ASSERT_TRUE(publish(**denied, make_record("denied")));
  ASSERT_TRUE((*denied)->flush(5s));
  EXPECT_FALSE((*denied)->connected());
  EXPECT_EQ((*denied)->stats().skipped_unavailable(), 1u);
}

TEST_F(RedisSinkTest, StopFlushesWhatIsQueuedThenRefusesNewRecords) {
  auto sink = make_sink(config());
  sink->start();
  for (int i = 0; i < 5000; ++i) ASSERT_TRUE(publish(*sink, make_record("s-" + std::to_string(i))));
  sink->stop(10s);
  EXPECT_EQ(sink->stats().written(), 5000u);
  EXPECT_EQ(dbsize(), 5000);

  EXPECT_FALSE(publish(*sink, make_record("late")));
  EXPECT_EQ(sink->stats().skipped_unavailable(), 1u);
  EXPECT_TRUE(sink->flush(0ms));
}

TEST_F(RedisSinkTest, StopCountsWhatIsLeftWhenTheGraceRunsOut) {
  auto c = config();
  c.command_timeout = 1000ms;
  c.pipeline_max = 2;
  auto sink = make_sink(c);
  sink->start();
  ASSERT_TRUE(wait_until([&] { return sink->connected(); }, 5s));
  server_->pause();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(publish(*sink, make_record("g-" + std::to_string(i))));
  const auto t0 = std::chrono::steady_clock::now();
  sink->stop(100ms);
  // Bounded by the grace plus the round in flight (one command timeout).
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  server_->resume();
  const auto& s = sink->stats();
  EXPECT_EQ(s.written(), 0u);
  EXPECT_EQ(s.failed() + s.skipped_unavailable(), 10u);
  EXPECT_EQ(metric(registry_, "vigil_redis_queue_depth"), 0.0);
}

TEST(RedisSinkCreate, RejectsAnInvalidOrEmptyUrl) {
  Registry registry;
  RedisConfig c;
  c.url = "http://nope";
  auto bad = RedisSink::Create(c, registry);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("redis://"), std::string::npos);
  c.url = "";
  EXPECT_FALSE(RedisSink::Create(c, registry).ok());
}

}  // namespace

// RedisSnapshotStore against a real redis-server: chunks written by the store's thread under
// their keys with the TTL, read back whole or by their heads, and what happens when Redis is
// not there.
#include "sinks/redis_snapshot_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "support/redis_server.h"

namespace vigil::sinks {
namespace {

using namespace std::chrono_literals;
using vigil::testing::RedisClient;
using vigil::testing::RedisServer;

class RedisSnapshotStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.error();
    server_ = std::move(server.value());
  }

  RedisSnapshotStore::Options options() const {
    RedisSnapshotStore::Options o;
    o.address = parse_redis_url(server_->url()).value();
    o.command_timeout = 2000ms;
    o.reconnect_backoff_max = 200ms;
    o.key_prefix = "test:features:group:transactions:";
    o.ttl_s = 600;
    o.max_pending_bytes = 1 << 20;
    return o;
  }

  uint64_t chunks(const char* outcome) {
    return registry_.counter("vigil_features_snapshot_chunks_total", "", {{"outcome", outcome}})
        .value();
  }

  metrics::Registry registry_;
  std::unique_ptr<RedisServer> server_;
};

TEST_F(RedisSnapshotStoreTest, ChunksAreWrittenUnderTheirKeysWithTheTtlAndReadBack) {
  RedisSnapshotStore store(options(), registry_);
  const std::string big(300'000, 'x');
  ASSERT_TRUE(store.save(3, {0, 1}, "chunk-0-1"));
  ASSERT_TRUE(store.save(3, {2, 0}, big));
  store.flush();
  EXPECT_EQ(chunks("written"), 2u);
  EXPECT_EQ(registry_.counter("vigil_features_snapshot_bytes_total", "").value(), 9u + big.size());

  auto client = RedisClient::Connect(*server_);
  ASSERT_TRUE(client.ok()) << client.error();
  auto ttl = client->ttl("test:features:group:transactions:3:0:1");
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(*ttl, 590);

  auto heads = store.read_heads(3, 3, 5);
  ASSERT_TRUE(heads.ok()) << heads.error();
  EXPECT_EQ(heads.value(), (std::vector<std::string>{"", "chunk", "", "", "xxxxx", ""}));
  auto whole = store.read(3, {{2, 0}, {0, 1}, {1, 1}});
  ASSERT_TRUE(whole.ok()) << whole.error();
  ASSERT_EQ(whole->size(), 3u);
  EXPECT_EQ(whole.value()[0], big);
  EXPECT_EQ(whole.value()[1], "chunk-0-1");
  EXPECT_EQ(whole.value()[2], "") << "a missing chunk reads empty";
  EXPECT_TRUE(store.read_heads(4, 2, 5).ok()) << "another partition: nothing, no error";
}

TEST_F(RedisSnapshotStoreTest, AFullQueueRefusesAndAnUnreachableRedisFailsWithTheReason) {
  auto o = options();
  RedisSnapshotStore store(o, registry_);
  server_->pause();  // writes wait for Redis: the queue fills
  ASSERT_TRUE(store.save(0, {0, 0}, std::string(700'000, 'a')));
  ASSERT_TRUE(store.save(0, {1, 0}, std::string(700'000, 'b'))) << "under the limit before it";
  EXPECT_FALSE(store.has_room());
  EXPECT_FALSE(store.save(0, {2, 0}, "c")) << "max_pending_bytes reached";
  server_->resume();
  store.flush();
  EXPECT_TRUE(store.has_room());

  server_->kill();
  auto heads = store.read_heads(0, 1, 8);
  ASSERT_FALSE(heads.ok());
  EXPECT_NE(heads.error().find("Redis: "), std::string::npos) << heads.error();
  ASSERT_TRUE(store.save(0, {0, 1}, "lost"));
  store.flush();
  EXPECT_EQ(chunks("failed"), 1u) << "counted; the slot keeps its older chunk";
}

}  // namespace
}  // namespace vigil::sinks

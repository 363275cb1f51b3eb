#include "sinks/redis_config.h"

#include <gtest/gtest.h>

namespace vigil::sinks {
namespace {

RedisAddress parse_ok(const std::string& url) {
  Result<RedisAddress> a = parse_redis_url(url);
  EXPECT_TRUE(a) << url << ": " << (a ? "" : a.error());
  return a ? a.value() : RedisAddress{};
}

std::string parse_error(const std::string& url) {
  Result<RedisAddress> a = parse_redis_url(url);
  EXPECT_FALSE(a) << url << " parsed";
  if (a) return "";
  EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument) << url;
  return a.error();
}

TEST(ParseRedisUrl, ReadsHostPortAndDb) {
  const auto a = parse_ok("redis://cache.internal:6380/2");
  EXPECT_EQ(a.host, "cache.internal");
  EXPECT_EQ(a.port, 6380);
  EXPECT_EQ(a.db, 2);
  EXPECT_TRUE(a.username.empty());
  EXPECT_TRUE(a.password.empty());
}

TEST(ParseRedisUrl, DefaultsToPort6379AndDb0) {
  const auto a = parse_ok("redis://127.0.0.1");
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 6379);
  EXPECT_EQ(a.db, 0);
  EXPECT_EQ(parse_ok("redis://h:1/").db, 0);  // a trailing slash names no database
}

TEST(ParseRedisUrl, UserinfoWithoutColonIsThePasswordLikeRedisCli) {
  for (const char* url : {"redis://:s3cret@h:1", "redis://s3cret@h:1"}) {
    const auto a = parse_ok(url);
    EXPECT_EQ(a.password, "s3cret") << url;
    EXPECT_TRUE(a.username.empty()) << url;
    EXPECT_EQ(a.host, "h");
  }
}

TEST(ParseRedisUrl, ReadsAclUserAndPassword) {
  const auto a = parse_ok("redis://alice:pw@h:1/4");
  EXPECT_EQ(a.username, "alice");
  EXPECT_EQ(a.password, "pw");
  EXPECT_EQ(a.db, 4);
}

TEST(ParseRedisUrl, PasswordMayContainAtSignsAndPercentEscapes) {
  EXPECT_EQ(parse_ok("redis://:p@ss@h").password, "p@ss");
  EXPECT_EQ(parse_ok("redis://:p%40ss%3Aw%2Fd@h").password, "p@ss:w/d");
  EXPECT_EQ(parse_ok("redis://al%69ce:x@h").username, "alice");
}

TEST(ParseRedisUrl, ReadsBracketedIpv6Hosts) {
  auto a = parse_ok("redis://[::1]:6380/3");
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 6380);
  EXPECT_EQ(a.db, 3);
  a = parse_ok("redis://[fe80::1]");
  EXPECT_EQ(a.host, "fe80::1");
  EXPECT_EQ(a.port, 6379);
}

TEST(ParseRedisUrl, RejectsOtherSchemes) {
  for (const char* url : {"http://h:6379", "rediss://h:6379", "h:6379", ""}) {
    EXPECT_EQ(parse_error(url), "redis.url must start with redis://") << url;
  }
}

TEST(ParseRedisUrl, RejectsPortsThatAreNotPlainNumbersInRange) {
  for (const char* url : {"redis://h:abc", "redis://h:63x", "redis://h:", "redis://h: 80",
                          "redis://h:-1", "redis://h:+80", "redis://h:99999999999"}) {
    EXPECT_EQ(parse_error(url), "redis.url port must be a number") << url;
  }
  for (const char* url : {"redis://h:0", "redis://h:65536"}) {
    EXPECT_NE(parse_error(url).find("port"), std::string::npos) << url;
  }
}

TEST(ParseRedisUrl, RejectsDatabasesThatAreNotNonNegativeNumbers) {
  for (const char* url : {"redis://h/x", "redis://h/-1", "redis://h/1x", "redis://h:1/ 2"}) {
    EXPECT_EQ(parse_error(url), "redis.url database must be a non-negative number") << url;
  }
}

TEST(ParseRedisUrl, RejectsAMissingHost) {
  for (const char* url : {"redis://", "redis://:6379", "redis://:pw@:6379", "redis:///0"}) {
    EXPECT_EQ(parse_error(url), "redis.url has no host") << url;
  }
}

TEST(ParseRedisUrl, RejectsBadIpv6AndPercentSyntax) {
  EXPECT_NE(parse_error("redis://[::1:6379").find("'['"), std::string::npos);
  EXPECT_NE(parse_error("redis://[::1]x").find("bracketed"), std::string::npos);
  for (const char* url : {"redis://:%zz@h", "redis://:%4@h", "redis://:abc%@h"}) {
    EXPECT_NE(parse_error(url).find("%-escape"), std::string::npos) << url;
  }
}

TEST(RedisConfig, ValidatesEveryFieldAndReportsAllErrors) {
  RedisConfig c;
  c.url = "redis://h:bad";
  c.ttl_s = 0;
  c.queue_capacity = 0;
  c.pipeline_max = 0;
  c.command_timeout = std::chrono::milliseconds(0);
  c.reconnect_backoff_max = std::chrono::milliseconds(0);
  const auto errors = c.validate();
  EXPECT_EQ(errors.size(), 6u);
  EXPECT_TRUE(RedisConfig().validate().empty());
}

TEST(RedisConfig, EmptyUrlDisablesTheSinkWithoutErrors) {
  RedisConfig c;
  c.url = "";
  c.ttl_s = 0;
  EXPECT_FALSE(c.enabled());
  EXPECT_TRUE(c.validate().empty());
}

}  // namespace
}  // namespace vigil::sinks

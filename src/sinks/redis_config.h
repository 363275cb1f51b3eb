// Configuration of the Redis score cache (keys redis.*).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/config_fields.h"
#include "common/status.h"

namespace vigil::sinks {

struct RedisConfig {
  std::string url = "redis://127.0.0.1:6379";  // empty disables the Redis sink
  int ttl_s = 86400;                           // TTL of each score key
  std::string key_prefix = "vigil:score:";
  size_t queue_capacity = 65536;                   // writes waiting for Redis at most
  size_t pipeline_max = 512;                       // commands per pipelined round trip
  std::chrono::milliseconds command_timeout{500};  // connect, and each reply
  std::chrono::milliseconds reconnect_backoff_max{5000};

  bool enabled() const { return !url.empty(); }
  std::vector<std::string> validate() const;

  template <typename V>
  void fields(V& v) {
    v("url", url, "", "redis://[[user]:password@]host[:port][/db]; empty disables Redis");
    v("ttl_s", ttl_s, "s", "TTL of each cached score");
    v("key_prefix", key_prefix, "", "key prefix of cached scores");
    v("queue_capacity", queue_capacity, "writes",
      "score writes waiting for Redis at most (beyond: skipped and counted)");
    v("pipeline_max", pipeline_max, "commands", "commands per pipelined round trip");
    v("command_timeout_ms", command_timeout, "ms", "Redis connect and reply timeout");
    v("reconnect_backoff_max_ms", reconnect_backoff_max, "ms",
      "longest wait between reconnect attempts");
  }
};

struct RedisAddress {
  std::string host;  // a name or an IP literal; IPv6 without the brackets
  int port = 6379;
  int db = 0;
  std::string username;  // Redis 6 ACL user; empty = AUTH with the password only
  std::string password;  // secret: never logged
};

// Parses redis://[[username]:password@]host[:port][/db] the way redis-cli -u does: userinfo
// without a colon is a password, user and password are percent-decoded, an IPv6 host is
// written in brackets (redis://[::1]:6380). Ports and db numbers must be plain digits.
// An error (kInvalidArgument) names what is wrong.
Result<RedisAddress> parse_redis_url(const std::string& url);

}  // namespace vigil::sinks

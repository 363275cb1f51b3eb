// Configuration of the Redis score cache (keys redis.*).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace vigil::sinks {

struct RedisConfig {
  std::string url = "redis://127.0.0.1:6379";  // empty disables the Redis sink
  int ttl_s = 86400;                            // TTL of each score key
  std::string key_prefix = "vigil:score:";
  size_t queue_capacity = 65536;                // writes waiting for Redis at most
  size_t pipeline_max = 512;                    // commands per pipelined round trip
  std::chrono::milliseconds command_timeout{500};
  std::chrono::milliseconds reconnect_backoff_max{5000};

  bool enabled() const { return !url.empty(); }
  std::vector<std::string> validate() const;
};

struct RedisAddress {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string password;  // secret: never logged
};

// Parses redis://[:password@]host[:port][/db].
bool parse_redis_url(const std::string& url, RedisAddress& out, std::string& error);

}  // namespace vigil::sinks

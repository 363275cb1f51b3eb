#include "sinks/redis_config.h"

namespace vigil::sinks {

bool parse_redis_url(const std::string& url, RedisAddress& out, std::string& error) {
  const std::string scheme = "redis://";
  if (url.rfind(scheme, 0) != 0) {
    error = "redis.url must start with redis://";
    return false;
  }
  std::string rest = url.substr(scheme.size());
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    std::string cred = rest.substr(0, at);
    out.password = cred.substr(cred.find(':') == std::string::npos ? 0 : cred.find(':') + 1);
    rest = rest.substr(at + 1);
  }
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      try {
        out.db = std::stoi(db);
      } catch (...) {
        error = "redis.url database must be a number";
        return false;
      }
    }
  }
  if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    try {
      out.port = std::stoi(rest.substr(colon + 1));
    } catch (...) {
      error = "redis.url port must be a number";
      return false;
    }
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) {
    error = "redis.url has no host";
    return false;
  }
  if (out.port < 1 || out.port > 65535) {
    error = "redis.url port must be within [1, 65535]";
    return false;
  }
  out.host = rest;
  return true;
}

std::vector<std::string> RedisConfig::validate() const {
  std::vector<std::string> e;
  if (!enabled()) return e;
  RedisAddress a;
  std::string err;
  if (!parse_redis_url(url, a, err)) e.push_back(err);
  if (ttl_s < 1) e.push_back("redis.ttl_s must be >= 1");
  if (queue_capacity < 1) e.push_back("redis.queue_capacity must be >= 1");
  if (pipeline_max < 1) e.push_back("redis.pipeline_max must be >= 1");
  if (command_timeout.count() < 1) e.push_back("redis.command_timeout_ms must be >= 1");
  return e;
}

}  // namespace vigil::sinks

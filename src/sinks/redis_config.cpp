#include "sinks/redis_config.h"

#include <cctype>
#include <utility>

#include "common/percent.h"

namespace vigil::sinks {

namespace {

// Digits only (no sign, no spaces, no trailing text), at most `max`.
bool parse_number(const std::string& s, long max, int& out) {
  if (s.empty() || s.size() > 9) return false;
  long v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    v = v * 10 + (c - '0');
  }
  if (v > max) return false;
  out = static_cast<int>(v);
  return true;
}

}  // namespace

// One pass over the URL's parts in their order (scheme, userinfo, host, port, db), each with its
// own error; splitting it would scatter the grammar (about 65 lines).
Result<RedisAddress> parse_redis_url(const std::string& url) {
  using R = Result<RedisAddress>;
  auto invalid = [](const char* why) { return R::Error(StatusCode::kInvalidArgument, why); };
  const std::string scheme = "redis://";
  if (url.rfind(scheme, 0) != 0) {
    return invalid("redis.url must start with redis://");
  }
  RedisAddress a;
  std::string rest = url.substr(scheme.size());
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    const std::string cred = rest.substr(0, at);
    const auto colon = cred.find(':');
    std::string user = colon == std::string::npos ? "" : cred.substr(0, colon);
    std::string pass = colon == std::string::npos ? cred : cred.substr(colon + 1);
    auto username = percent_decode(user), password = percent_decode(pass);
    if (!username || !password) {
      return invalid("redis.url has a bad %-escape in its user or password");
    }
    a.username = std::move(*username);
    a.password = std::move(*password);
    rest = rest.substr(at + 1);
  }
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty() && !parse_number(db, 1 << 20, a.db)) {
      return invalid("redis.url database must be a non-negative number");
    }
  }
  std::string port;
  bool has_port = false;
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]:port
    const auto close = rest.find(']');
    if (close == std::string::npos) {
      return invalid("redis.url has an unclosed '[' in its host");
    }
    const std::string after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return invalid("redis.url has text after its bracketed host");
      }
      has_port = true;
      port = after.substr(1);
    }
    rest = rest.substr(1, close - 1);
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    has_port = true;
    port = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  if (has_port && !parse_number(port, 65535, a.port)) {
    return invalid("redis.url port must be a number");
  }
  if (rest.empty()) {
    return invalid("redis.url has no host");
  }
  if (a.port < 1 || a.port > 65535) {
    return invalid("redis.url port must be within [1, 65535]");
  }
  a.host = rest;
  return R(std::move(a));
}

std::vector<std::string> RedisConfig::validate() const {
  std::vector<std::string> e;
  if (!enabled()) return e;
  if (auto a = parse_redis_url(url); !a) e.push_back(a.error());
  if (ttl_s < 1) e.push_back("redis.ttl_s must be >= 1");
  if (queue_capacity < 1) e.push_back("redis.queue_capacity must be >= 1");
  if (pipeline_max < 1) e.push_back("redis.pipeline_max must be >= 1");
  if (command_timeout.count() < 1) e.push_back("redis.command_timeout_ms must be >= 1");
  if (reconnect_backoff_max.count() < 1) {
    e.push_back("redis.reconnect_backoff_max_ms must be >= 1");
  }
  return e;
}

}  // namespace vigil::sinks

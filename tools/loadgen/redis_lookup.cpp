#include "redis_lookup.h"

#include <hiredis/hiredis.h>

#include <memory>
#include <thread>

#include "sinks/redis_config.h"

namespace vigil::loadgen {

namespace {

constexpr timeval kTimeout{1, 0};
constexpr auto kRetryInterval = std::chrono::milliseconds(100);

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// Runs one command given as separate arguments (binary-safe); on failure `error` says why.
Reply command(redisContext* c, const std::vector<std::string>& args, std::string& error) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  Reply r(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data())));
  if (!r) {
    error = c->err != 0 ? c->errstr : "no reply";
  } else if (r->type == REDIS_REPLY_ERROR) {
    error = std::string(r->str, r->len);
    r.reset();
  }
  return r;
}

Result<Context> connect(const std::string& url) {
  using R = Result<Context>;
  Result<sinks::RedisAddress> parsed = sinks::parse_redis_url(url);
  if (!parsed) return R::Error("--redis-url: " + parsed.error());
  const sinks::RedisAddress& address = parsed.value();
  std::string error;
  const std::string where = address.host + ":" + std::to_string(address.port);
  Context c(redisConnectWithTimeout(address.host.c_str(), address.port, kTimeout));
  if (!c) return R::Error("redis " + where + ": out of memory");
  if (c->err != 0) return R::Error("redis " + where + ": " + c->errstr);
  redisSetTimeout(c.get(), kTimeout);
  if (!address.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!address.username.empty()) auth.push_back(address.username);
    auth.push_back(address.password);
    if (!command(c.get(), auth, error)) return R::Error("redis " + where + ": AUTH: " + error);
  }
  if (address.db != 0 && !command(c.get(), {"SELECT", std::to_string(address.db)}, error)) {
    return R::Error("redis " + where + ": SELECT: " + error);
  }
  return c;
}

}  // namespace

Result<std::vector<RedisReading>> read_scores_from_redis(const std::string& url,
                                                         const std::string& key_prefix,
                                                         const std::vector<std::string>& ids,
                                                         std::chrono::milliseconds settle) {
  using R = Result<std::vector<RedisReading>>;
  auto c = connect(url);
  if (!c) return R::Error(c.error());
  const auto deadline = std::chrono::steady_clock::now() + settle;
  std::vector<RedisReading> readings;
  for (const auto& id : ids) {
    RedisReading reading{id, std::nullopt};
    while (true) {
      std::string error;
      Reply r = command(c->get(), {"GET", key_prefix + id}, error);
      if (!r) return R::Error("redis GET " + key_prefix + id + ": " + error);
      if (r->type == REDIS_REPLY_STRING) reading.value = std::string(r->str, r->len);
      if (reading.value || std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(kRetryInterval);
    }
    readings.push_back(std::move(reading));
  }
  return readings;
}

}  // namespace vigil::loadgen

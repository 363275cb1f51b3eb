#include "sinks/redis_connection.h"

#include <cstdarg>

namespace vigil::sinks {

timeval to_timeval(std::chrono::milliseconds d) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

std::string endpoint(const RedisAddress& a) {
  return a.host + ":" + std::to_string(a.port) + "/" + std::to_string(a.db);
}

std::string run_command(redisContext* c, const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  void* raw = redisvCommand(c, format, ap);
  va_end(ap);
  if (raw == nullptr) return c->errstr[0] != '\0' ? c->errstr : "no reply";
  auto* reply = static_cast<redisReply*>(raw);
  std::string error;
  if (reply->type == REDIS_REPLY_ERROR) error.assign(reply->str, reply->len);
  freeReplyObject(reply);
  return error;
}

ReplyPtr next_reply(redisContext* c, std::string& why) {
  void* raw = nullptr;
  if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) {
    why = c->errstr[0] != '\0' ? c->errstr : "no reply";
    return {nullptr, freeReplyObject};
  }
  ReplyPtr reply(static_cast<redisReply*>(raw), freeReplyObject);
  if (reply->type == REDIS_REPLY_ERROR) why.assign(reply->str, reply->len);
  return reply;
}

redisContext* open_connection(const RedisAddress& a, std::chrono::milliseconds timeout,
                              std::string& why) {
  const timeval tv = to_timeval(timeout);
  redisContext* c = redisConnectWithTimeout(a.host.c_str(), a.port, tv);
  if (c == nullptr) {
    why = "cannot allocate a hiredis context";
    return nullptr;
  }
  auto fail = [&](const std::string& step, const std::string& error) {
    why = step + ": " + error;
    redisFree(c);
    return nullptr;
  };
  if (c->err) return fail("connect", c->errstr);
  // hiredis 0.14 uses `tv` for connect() only: reads and writes need their own timeout, and
  // a new context (every reconnect) starts without one.
  if (redisSetTimeout(c, tv) != REDIS_OK) return fail("set timeout", c->errstr);
  redisEnableKeepAlive(c);  // best effort
  if (!a.password.empty()) {
    const std::string e = a.username.empty()
                              ? run_command(c, "AUTH %b", a.password.data(), a.password.size())
                              : run_command(c, "AUTH %b %b", a.username.data(), a.username.size(),
                                            a.password.data(), a.password.size());
    if (!e.empty()) return fail("AUTH", e);
  }
  if (a.db != 0) {
    if (const std::string e = run_command(c, "SELECT %d", a.db); !e.empty()) {
      return fail("SELECT", e);
    }
  }
  if (const std::string e = run_command(c, "PING"); !e.empty()) return fail("PING", e);
  return c;
}

}  // namespace vigil::sinks

// Opening a Redis connection the way every part of vigil that talks to Redis does (the score
// cache's writer, the score lookups): connect with a timeout, the same timeout on every read
// and write, AUTH, SELECT, PING. Blocking (hiredis' synchronous API): for threads of their own.
#pragma once

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <chrono>
#include <memory>
#include <string>

#include "sinks/redis_config.h"

namespace vigil::sinks {

timeval to_timeval(std::chrono::milliseconds d);

// For logs: never includes the password.
std::string endpoint(const RedisAddress& a);

// Runs one command and returns why it failed (empty when Redis answered without an error).
std::string run_command(redisContext* c, const char* format, ...);

// A reply owned by the caller.
using ReplyPtr = std::unique_ptr<redisReply, void (*)(void*)>;
// The next reply of a pipeline: null with `why` set when the connection gave none, and `why`
// set to Redis's message when the reply is an error.
ReplyPtr next_reply(redisContext* c, std::string& why);

// Connects, sets the command timeouts, authenticates, selects the database and checks that
// Redis answers. Returns nullptr with `why` set when any step fails.
redisContext* open_connection(const RedisAddress& a, std::chrono::milliseconds timeout,
                              std::string& why);

}  // namespace vigil::sinks

// A real redis-server on loopback for integration tests, and a small synchronous client to
// look at what it holds.
//
// RedisServer starts `redis-server` as a child process on a free port (found by binding port
// 0), without persistence, in its own temporary directory, and returns once it answers PING.
// It can be stopped (SIGTERM), killed (SIGKILL), paused (SIGSTOP: connections are still
// accepted by the kernel but never answered, like a hung server) and restarted on the same
// port. It runs as a testing::Process (PR_SET_PDEATHSIG=SIGKILL: a crashed test leaves no
// server behind); Linux ties that to the thread that forks, so call Start() and restart() from
// a thread that outlives the server (the test's own thread). Not thread-safe: one owner drives
// it.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "support/process.h"

struct redisContext;

namespace vigil::testing {

// A loopback TCP port that was free a moment ago (bind port 0, read it back, close).
Result<int> free_loopback_port();

struct RedisServerOptions {
  std::string binary;  // empty: $VIGIL_REDIS_SERVER if set, else redis-server from PATH
  std::chrono::milliseconds start_timeout{10000};  // until PING must answer
  std::vector<std::string> extra_args;             // e.g. {"--requirepass", "secret"}
};

class RedisServer {
 public:
  static Result<std::unique_ptr<RedisServer>> Start(RedisServerOptions options = {});
  ~RedisServer();  // kills the server if it runs and removes its directory
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  const std::string& host() const { return host_; }
  int port() const { return port_; }
  std::string url() const;  // redis://127.0.0.1:<port>
  const std::string& dir() const { return dir_; }
  bool running() { return proc_ && proc_->running(); }

  // SIGTERM and wait for the process (SIGKILL if it has not exited after 5 s).
  Status stop();
  // SIGKILL and wait for the process: a crash, no goodbye to the clients.
  void kill();
  // SIGSTOP / SIGCONT: the server hangs (no answers, no errors) until resumed.
  void pause();
  void resume();
  // Stops the server if it runs, then starts it again on the same port (empty: nothing is
  // persisted) and waits for PING.
  Status restart();

  // The last lines the server wrote (for failure messages).
  std::string log_tail(size_t max_bytes = 2000) const;

 private:
  RedisServer(RedisServerOptions options, std::string dir);
  Status spawn();
  Status wait_ready();

  const RedisServerOptions options_;
  const std::string host_ = "127.0.0.1";
  const std::string dir_;
  std::string log_path_;
  int port_ = 0;
  std::unique_ptr<Process> proc_;  // null before the first start
  bool paused_ = false;
};

// A synchronous hiredis client for assertions. Movable, not thread-safe.
class RedisClient {
 public:
  static Result<RedisClient> Connect(const std::string& host, int port,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(2));
  static Result<RedisClient> Connect(const RedisServer& server) {
    return Connect(server.host(), server.port());
  }
  RedisClient(RedisClient&& other) noexcept;
  RedisClient& operator=(RedisClient&& other) noexcept;
  ~RedisClient();

  // nullopt when the key does not exist.
  Result<std::optional<std::string>> get(const std::string& key);
  // Seconds left; -2 when the key does not exist, -1 when it has no TTL.
  Result<long long> ttl(const std::string& key);
  Result<long long> dbsize();
  Result<std::vector<std::string>> keys(const std::string& pattern);
  // Field, value, field, value, ... of a hash (empty when the key does not exist).
  Result<std::vector<std::string>> hgetall(const std::string& key);
  Status set(const std::string& key, const std::string& value);
  Status flushall();
  Status auth(const std::string& password);
  Status select(int db);

 private:
  explicit RedisClient(redisContext* ctx) : ctx_(ctx) {}
  redisContext* ctx_ = nullptr;
};

}  // namespace vigil::testing

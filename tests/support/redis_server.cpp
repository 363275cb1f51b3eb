#include "support/redis_server.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <utility>

namespace vigil::testing {

namespace {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

Result<std::string> make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/vigil-redis-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return Result<std::string>::Error("mkdtemp " + tmpl + ": " + std::strerror(errno));
  }
  return tmpl;
}

std::string resolve_binary(const RedisServerOptions& o) {
  if (!o.binary.empty()) return o.binary;
  if (const char* env = std::getenv("VIGIL_REDIS_SERVER"); env && *env) return env;
  return "redis-server";
}

// PING with a short timeout; true once the server answers it.
bool answers_ping(const std::string& host, int port) {
  const timeval tv{0, 200 * 1000};
  redisContext* c = redisConnectWithTimeout(host.c_str(), port, tv);
  if (c == nullptr) return false;
  bool ok = false;
  if (!c->err && redisSetTimeout(c, tv) == REDIS_OK) {
    if (auto* r = static_cast<redisReply*>(redisCommand(c, "PING"))) {
      const std::string text(r->str != nullptr ? r->str : "", r->str != nullptr ? r->len : 0);
      // NOAUTH: up, but with --requirepass; LOADING and the like: not ready yet.
      ok = (r->type == REDIS_REPLY_STATUS && text == "PONG") ||
           (r->type == REDIS_REPLY_ERROR && text.rfind("NOAUTH", 0) == 0);
      freeReplyObject(r);
    }
  }
  redisFree(c);
  return ok;
}

}  // namespace

// A port that was free a moment ago: bind port 0 on loopback and read back what the kernel
// chose. Another process may take it before redis-server binds it; Start() then retries.
Result<int> free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Result<int>::Error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string e = std::strerror(errno);
    ::close(fd);
    return Result<int>::Error("bind port 0: " + e);
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

// ---------------------------------------------------------------------------------------------
// RedisServer

RedisServer::RedisServer(RedisServerOptions options, std::string dir)
    : options_(std::move(options)), dir_(std::move(dir)), log_path_(dir_ + "/redis.log") {}

Result<std::unique_ptr<RedisServer>> RedisServer::Start(RedisServerOptions options) {
  using R = Result<std::unique_ptr<RedisServer>>;
  auto dir = make_temp_dir();
  if (!dir) return R::Error(dir.error());
  std::unique_ptr<RedisServer> server(new RedisServer(std::move(options), *dir));
  std::string errors;
  // The free port can be taken between our probe and redis-server's bind: try a few.
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto port = free_loopback_port();
    if (!port) return R::Error(port.error());
    server->port_ = *port;
    Status s = server->spawn();
    if (s.ok()) s = server->wait_ready();
    if (s.ok()) return server;
    errors += (errors.empty() ? "" : "; ") + s.message();
    server->kill();
  }
  return R::Error("redis-server did not start: " + errors);
}

RedisServer::~RedisServer() {
  kill();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string RedisServer::url() const {
  return "redis://" + host_ + ":" + std::to_string(port_);
}

Status RedisServer::spawn() {
  std::vector<std::string> args = {"--port",       std::to_string(port_),
                                   "--bind",       host_,
                                   "--save",       "",
                                   "--appendonly", "no",
                                   "--dir",        dir_,
                                   "--daemonize",  "no",
                                   "--logfile",    "",
                                   "--loglevel",   "notice"};
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  ProcessOptions po;
  po.log_path = log_path_;
  auto proc = Process::Spawn(resolve_binary(options_), args, po);
  if (!proc) return Status::Error(proc.error());
  proc_ = std::move(*proc);
  paused_ = false;
  return Status::Ok();
}

Status RedisServer::wait_ready() {
  const auto deadline = steady::now() + options_.start_timeout;
  milliseconds poll{2};
  while (steady::now() < deadline) {
    if (!proc_->running()) {
      return Status::Error("redis-server on port " + std::to_string(port_) + " exited (" +
                           proc_->exit_status()->to_string() + "); log: " + log_tail(600));
    }
    if (answers_ping(host_, port_)) return Status::Ok();
    std::this_thread::sleep_for(poll);
    poll = std::min(poll * 2, milliseconds(50));
  }
  return Status::Error("redis-server on port " + std::to_string(port_) + " did not answer PING " +
                       "within " + std::to_string(options_.start_timeout.count()) +
                       " ms; log: " + log_tail(600));
}

Status RedisServer::stop() {
  if (!running()) return Status::Ok();
  if (paused_) resume();
  (void)proc_->sigterm();
  if (!proc_->wait(std::chrono::seconds(5))) {
    kill();
    return Status::Error("redis-server ignored SIGTERM for 5 s and was killed");
  }
  return Status::Ok();
}

void RedisServer::kill() {
  if (proc_) proc_->kill();  // SIGKILL also ends a stopped (paused) process
  paused_ = false;
}

void RedisServer::pause() {
  if (running() && proc_->signal(SIGSTOP).ok()) paused_ = true;
}

void RedisServer::resume() {
  if (running() && proc_->signal(SIGCONT).ok()) paused_ = false;
}

Status RedisServer::restart() {
  if (Status s = stop(); !s.ok()) return s;
  if (Status s = spawn(); !s.ok()) return s;
  return wait_ready();
}

std::string RedisServer::log_tail(size_t max_bytes) const {
  std::ifstream in(log_path_, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

// ---------------------------------------------------------------------------------------------
// RedisClient

namespace {

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

Result<Reply> call(redisContext* c, const std::vector<std::string>& args) {
  if (c == nullptr) return Result<Reply>::Error("not connected");
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* raw = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (raw == nullptr) return Result<Reply>::Error(args[0] + ": " + c->errstr);
  Reply reply(raw);
  if (reply->type == REDIS_REPLY_ERROR) {
    return Result<Reply>::Error(args[0] + ": " + std::string(reply->str, reply->len));
  }
  return reply;
}

Result<long long> integer(redisContext* c, const std::vector<std::string>& args) {
  auto r = call(c, args);
  if (!r) return Result<long long>::Error(r.error());
  if ((*r)->type != REDIS_REPLY_INTEGER) {
    return Result<long long>::Error(args[0] + ": not an integer reply");
  }
  return (*r)->integer;
}

}  // namespace

Result<RedisClient> RedisClient::Connect(const std::string& host, int port,
                                         std::chrono::milliseconds timeout) {
  const timeval tv{static_cast<time_t>(timeout.count() / 1000),
                   static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  redisContext* c = redisConnectWithTimeout(host.c_str(), port, tv);
  if (c == nullptr) return Result<RedisClient>::Error("cannot allocate a hiredis context");
  if (c->err || redisSetTimeout(c, tv) != REDIS_OK) {
    std::string e = c->errstr;
    redisFree(c);
    return Result<RedisClient>::Error("connect " + host + ":" + std::to_string(port) + ": " + e);
  }
  return RedisClient(c);
}

RedisClient::RedisClient(RedisClient&& other) noexcept : ctx_(std::exchange(other.ctx_, nullptr)) {}

RedisClient& RedisClient::operator=(RedisClient&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr) redisFree(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
  }
  return *this;
}

RedisClient::~RedisClient() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

Result<std::optional<std::string>> RedisClient::get(const std::string& key) {
  using R = Result<std::optional<std::string>>;
  auto r = call(ctx_, {"GET", key});
  if (!r) return R::Error(r.error());
  if ((*r)->type == REDIS_REPLY_NIL) return std::optional<std::string>();
  if ((*r)->type != REDIS_REPLY_STRING) return R::Error("GET: not a string reply");
  return std::optional<std::string>(std::string((*r)->str, (*r)->len));
}

Result<long long> RedisClient::ttl(const std::string& key) {
  return integer(ctx_, {"TTL", key});
}

Result<long long> RedisClient::dbsize() {
  return integer(ctx_, {"DBSIZE"});
}

Result<std::vector<std::string>> RedisClient::keys(const std::string& pattern) {
  using R = Result<std::vector<std::string>>;
  auto r = call(ctx_, {"KEYS", pattern});
  if (!r) return R::Error(r.error());
  if ((*r)->type != REDIS_REPLY_ARRAY) return R::Error("KEYS: not an array reply");
  std::vector<std::string> out;
  for (size_t i = 0; i < (*r)->elements; ++i) {
    const redisReply* e = (*r)->element[i];
    out.emplace_back(e->str, e->len);
  }
  return out;
}

Result<std::vector<std::string>> RedisClient::hgetall(const std::string& key) {
  using R = Result<std::vector<std::string>>;
  auto r = call(ctx_, {"HGETALL", key});
  if (!r) return R::Error(r.error());
  if ((*r)->type != REDIS_REPLY_ARRAY) return R::Error("HGETALL: not an array reply");
  std::vector<std::string> out;
  for (size_t i = 0; i < (*r)->elements; ++i) {
    const redisReply* e = (*r)->element[i];
    out.emplace_back(e->str, e->len);
  }
  return out;
}

Status RedisClient::set(const std::string& key, const std::string& value) {
  auto r = call(ctx_, {"SET", key, value});
  return r ? Status::Ok() : Status::Error(r.error());
}

Status RedisClient::flushall() {
  auto r = call(ctx_, {"FLUSHALL"});
  return r ? Status::Ok() : Status::Error(r.error());
}

Status RedisClient::auth(const std::string& password) {
  auto r = call(ctx_, {"AUTH", password});
  return r ? Status::Ok() : Status::Error(r.error());
}

Status RedisClient::select(int db) {
  auto r = call(ctx_, {"SELECT", std::to_string(db)});
  return r ? Status::Ok() : Status::Error(r.error());
}

}  // namespace vigil::testing

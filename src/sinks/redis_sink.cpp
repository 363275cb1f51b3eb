#include "sinks/redis_sink.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdarg>
#include <cstring>
#include <string>
#include <utility>

#include "common/log.h"
#include "common/thread_name.h"
#include "sinks/redis_connection.h"

namespace vigil::sinks {

namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kInitialBackoff{50};
// While disconnected, how often the writer drops what has been queued.
constexpr milliseconds kDropInterval{10};
// A connection without a reply for this long is checked with a PING, so that connected()
// (readiness) notices a dead Redis even when no scores flow.
constexpr milliseconds kIdlePing{1000};
// Rounds sent before the writer stops to read replies (a burst goes out back to back).
constexpr size_t kMaxRoundsInFlight = 8;
// At most one warning per kind per interval on the hot paths.
constexpr milliseconds kWarnInterval{5000};

// strerror is not thread-safe; the GNU strerror_r returns the text (maybe not in `buf`).
std::string errno_text(int e) {
  char buf[128];
  return strerror_r(e, buf, sizeof buf);
}

int64_t steady_ns() {
  return steady::now().time_since_epoch().count();
}

// Errors after which this connection will not accept writes again (a replica after a
// failover, a server still loading, lost credentials): reconnecting may reach the new primary.
bool needs_reconnect(const std::string& error) {
  for (const char* prefix : {"READONLY", "LOADING", "NOAUTH", "WRONGPASS", "MASTERDOWN"}) {
    if (error.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

// At most one true per interval. Writer thread only.
class LogLimiter {
 public:
  explicit LogLimiter(milliseconds every) : every_(every) {}
  // `suppressed` receives how many calls returned false since the last true.
  bool allow(uint64_t& suppressed) {
    const auto now = steady::now();
    if (now < next_) {
      ++suppressed_;
      return false;
    }
    next_ = now + every_;
    suppressed = std::exchange(suppressed_, 0);
    return true;
  }

 private:
  const milliseconds every_;
  steady::time_point next_{};
  uint64_t suppressed_ = 0;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// RedisSinkStats

RedisSinkStats::RedisSinkStats(metrics::Registry& r)
    : written_(r.counter("vigil_redis_writes_total", "Scores written to Redis (SET answered OK)")),
      failed_(r.counter("vigil_redis_write_failures_total",
                        "Scores sent to Redis but not confirmed (error reply, broken or timed-out "
                        "connection); not retried")),
      skipped_queue_full_(r.counter("vigil_redis_skipped_total",
                                    "Scores not sent to Redis, by reason",
                                    {{"reason", "queue_full"}})),
      skipped_unavailable_(r.counter("vigil_redis_skipped_total",
                                     "Scores not sent to Redis, by reason",
                                     {{"reason", "unavailable"}})),
      pipeline_seconds_(r.histogram("vigil_redis_pipeline_seconds",
                                    "Time of one pipelined round (append all, read all replies)",
                                    metrics::latency_buckets_seconds())),
      queue_depth_(r.gauge("vigil_redis_queue_depth", "Scores waiting to be written to Redis")),
      connected_(r.gauge("vigil_redis_connected", "1 while the Redis sink has a connection")) {}

void RedisSinkStats::records_written(uint64_t n) {
  if (n) written_.inc(n);
}
void RedisSinkStats::records_failed(uint64_t n) {
  if (n) failed_.inc(n);
}
void RedisSinkStats::record_rejected_queue_full() {
  skipped_queue_full_.inc();
}
void RedisSinkStats::records_skipped_unavailable(uint64_t n) {
  if (n) skipped_unavailable_.inc(n);
}
void RedisSinkStats::round_completed(steady::duration elapsed) {
  pipeline_seconds_.observe(std::chrono::duration<double>(elapsed).count());
}
void RedisSinkStats::queue_depth_changed(size_t depth) {
  queue_depth_.set(static_cast<double>(depth));
}
void RedisSinkStats::connection_changed(bool up) {
  connected_.set(up ? 1.0 : 0.0);
}

// ---------------------------------------------------------------------------------------------
// RedisSink

struct RedisSink::Writer {
  redisContext* ctx = nullptr;
  milliseconds backoff = kInitialBackoff;  // wait before the next attempt after a failure
  steady::time_point next_attempt{};
  steady::time_point last_reply{};
  steady::time_point down_since{};
  uint64_t skipped_at_down = 0;  // skipped{unavailable} when the connection went
  bool ever_connected = false;
  // Rounds sent and not yet answered (at most two: overlap), oldest first.
  struct Sent {
    size_t records = 0;
    steady::time_point at{};
    size_t ok = 0, rejected = 0;  // replies read so far
    std::string rejection;        // the first error reply
  };
  std::deque<Sent> in_flight;
  std::string in;     // bytes read from Redis not yet parsed
  size_t in_pos = 0;  // parse position in `in`
  Chunk round;        // the chunk being sent (its buffer is reused)
  LogLimiter connect_warnings{kWarnInterval};
  LogLimiter loss_warnings{kWarnInterval};
  LogLimiter reply_warnings{kWarnInterval};
  LogLimiter reconnect_infos{kWarnInterval};

  ~Writer() {
    if (ctx != nullptr) redisFree(ctx);
  }
};

Result<std::unique_ptr<RedisSink>> RedisSink::Create(const RedisConfig& config,
                                                     metrics::Registry& registry) {
  std::vector<std::string> errors = config.validate();
  if (!config.enabled()) errors.push_back("redis.url is empty (the Redis sink is disabled)");
  Result<RedisAddress> address = parse_redis_url(config.url);
  if (errors.empty() && !address) errors.push_back(address.error());
  if (!errors.empty()) {
    std::string all;
    for (const auto& e : errors) all += (all.empty() ? "" : "; ") + e;
    return Result<std::unique_ptr<RedisSink>>::Error(all);
  }
  return std::unique_ptr<RedisSink>(new RedisSink(config, std::move(address.value()), registry));
}

RedisSink::RedisSink(const RedisConfig& config, RedisAddress address, metrics::Registry& registry)
    : config_(config),
      address_(std::move(address)),
      log_(logger("redis")),
      stats_(registry),
      writer_state_(std::make_unique<Writer>()),
      wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  VIGIL_CHECK(wake_fd_ >= 0);
  const std::string ttl = std::to_string(config_.ttl_s);
  ttl_tail_ = "$2\r\nEX\r\n$" + std::to_string(ttl.size()) + "\r\n" + ttl + "\r\n";
  stats_.connection_changed(false);
  stats_.queue_depth_changed(0);
}

RedisSink::~RedisSink() {
  stop();
  ::close(wake_fd_);
}

void RedisSink::start() {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mutex_);
  if (started_ || stopped_) return;
  started_ = true;
  log_->info("redis sink starting: {} (key prefix '{}', ttl {} s, queue {}, pipeline {})",
             endpoint(address_), config_.key_prefix, config_.ttl_s, config_.queue_capacity,
             config_.pipeline_max);
  writer_ = std::thread([this] {
    name_this_thread("vigil-redis");
    writer_main();
  });
}

void RedisSink::stop(milliseconds grace) {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mutex_);
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    accepting_ = false;
  }
  bool flushed = true;
  if (writer_.joinable()) {
    // Phase 1: let the writer drain what is queued, bounded by `grace`.
    flushed = flush(grace);
    // Phase 2: stop it; it finishes its round in flight (bounded by command_timeout).
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_writer_ = true;
    }
    work_cv_.notify_all();
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n_written = ::write(wake_fd_, &one, sizeof one);
    writer_.join();
  }
  size_t left = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    left = std::exchange(queued_records_, 0);
    queue_.clear();
    stats_.records_skipped_unavailable(left);
    settled_ += left;
    stats_.queue_depth_changed(0);
  }
  settled_cv_.notify_all();
  if (left > 0) {
    log_->warn("redis sink stopped with {} scores still queued{}; counted as skipped", left,
               flushed ? "" : " after the shutdown grace ran out");
  }
  log_->info(
      "redis sink stopped: {} written, {} failed, {} skipped (queue full), {} skipped "
      "(unavailable)",
      stats_.written(), stats_.failed(), stats_.skipped_queue_full(), stats_.skipped_unavailable());
}

namespace {
void append_bulk(std::string& out, std::string_view a, std::string_view b = {}) {
  char len[24];
  const auto r = std::to_chars(len, len + sizeof len, a.size() + b.size());
  out += '$';
  out.append(len, r.ptr);
  out += "\r\n";
  out.append(a.data(), a.size());
  out.append(b.data(), b.size());
  out += "\r\n";
}
}  // namespace

size_t RedisSink::publish(const EncodedScore* scores, size_t n) {
  size_t accepted = 0;
  bool wake = false;
  bool poll_wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!accepting_) {
      stats_.records_skipped_unavailable(n);
      return 0;
    }
    accepted = std::min(n, config_.queue_capacity - queued_records_);
    for (size_t i = 0; i < accepted; ++i) {
      if (queue_.empty() || queue_.back().records >= config_.pipeline_max) {
        if (spare_.empty()) {
          queue_.emplace_back();
        } else {
          queue_.push_back(std::move(spare_.back()));
          spare_.pop_back();
        }
      }
      Chunk& c = queue_.back();
      c.resp += scores[i].if_absent ? "*6\r\n$3\r\nSET\r\n" : "*5\r\n$3\r\nSET\r\n";
      append_bulk(c.resp, config_.key_prefix, scores[i].transaction_id);
      append_bulk(c.resp, scores[i].json);
      c.resp += ttl_tail_;
      if (scores[i].if_absent) c.resp += "$2\r\nNX\r\n";
      ++c.records;
    }
    if (accepted > 0) {
      queued_records_ += accepted;
      accepted_ += accepted;
      stats_.queue_depth_changed(queued_records_);
      wake = std::exchange(writer_waiting_, false);
      poll_wake = std::exchange(writer_polling_, false);
    }
  }
  if (wake) work_cv_.notify_one();
  if (poll_wake) {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n_written = ::write(wake_fd_, &one, sizeof one);
  }
  if (accepted < n) note_queue_full(n - accepted);
  return accepted;
}

void RedisSink::note_queue_full(size_t n) {
  for (size_t i = 0; i < n; ++i) stats_.record_rejected_queue_full();
  queue_full_since_log_.fetch_add(n, std::memory_order_relaxed);
  const int64_t now = steady_ns();
  int64_t next = next_queue_full_log_ns_.load(std::memory_order_relaxed);
  if (now < next) return;
  const int64_t after = now + std::chrono::nanoseconds(kWarnInterval).count();
  if (!next_queue_full_log_ns_.compare_exchange_strong(next, after)) return;  // another logs
  log_->warn(
      "redis write queue full ({} scores waiting): {} scores not cached since the last "
      "warning",
      config_.queue_capacity, queue_full_since_log_.exchange(0));
}

bool RedisSink::flush(milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  const uint64_t target = accepted_;
  return settled_cv_.wait_for(lock, timeout, [&] { return settled_ >= target; });
}

size_t RedisSink::queue_depth() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queued_records_;
}

bool RedisSink::take_round(Chunk& round) {
  if (queue_.empty()) return false;
  // The emptied buffer of the previous round goes back to the spares (capacity kept).
  round.resp.clear();
  round.records = 0;
  if (spare_.size() < 16) spare_.push_back(std::move(round));
  round = std::move(queue_.front());
  queue_.pop_front();
  queued_records_ -= round.records;
  stats_.queue_depth_changed(queued_records_);
  return true;
}

void RedisSink::mark_settled(size_t n) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    settled_ += n;
  }
  settled_cv_.notify_all();
}

void RedisSink::drop_queued() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (queue_.empty()) return;
    const size_t dropped = std::exchange(queued_records_, 0);
    while (!queue_.empty()) {
      queue_.front().resp.clear();
      queue_.front().records = 0;
      if (spare_.size() < 16) spare_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    // Counted before settled_ moves: a flush() that returns sees the counts.
    stats_.records_skipped_unavailable(dropped);
    settled_ += dropped;
    stats_.queue_depth_changed(0);
  }
  settled_cv_.notify_all();
}

// One loop owns the connection: connect with backoff, send rounds while replies are read,
// reconnect on failure. Kept whole (about 70 lines) so the connection's states read in order.
void RedisSink::writer_main() {
  // hiredis 0.14 writes with write(), not send(MSG_NOSIGNAL): a write to a connection Redis
  // has closed raises SIGPIPE, which would kill the process. Blocked in this thread, the
  // signal stays pending here and the write fails with EPIPE instead.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);

  Writer& w = *writer_state_;
  w.next_attempt = steady::now();
  w.down_since = steady::now();
  for (;;) {
    if (w.ctx == nullptr) {
      if (steady::now() >= w.next_attempt) {
        if (connect(w)) continue;
        w.next_attempt = steady::now() + w.backoff;
        w.backoff = std::min(w.backoff * 2, config_.reconnect_backoff_max);
      }
      drop_queued();
      std::unique_lock<std::mutex> lock(mutex_);
      const auto wake = std::min(w.next_attempt, steady::now() + kDropInterval);
      work_cv_.wait_until(lock, wake, [this] { return stop_writer_; });
      if (stop_writer_) break;
      continue;
    }
    bool have = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (queue_.empty() && !stop_writer_ && w.in_flight.empty()) {
        writer_waiting_ = true;
        work_cv_.wait_until(lock, w.last_reply + kIdlePing,
                            [this] { return stop_writer_ || !queue_.empty(); });
        writer_waiting_ = false;
      }
      if (stop_writer_) break;
      have = take_round(w.round);
    }
    if (have) {
      // Send every round that is waiting (up to kMaxRoundsInFlight) at once: Redis works on
      // them while the replies of earlier ones are read as they arrive.
      bool connected = send_round(w, w.round);
      while (connected && w.in_flight.size() < kMaxRoundsInFlight) {
        {
          std::lock_guard<std::mutex> lock(mutex_);
          if (!take_round(w.round)) break;
        }
        connected = send_round(w, w.round);
      }
      if (!connected) continue;
    }
    if (!w.in_flight.empty()) {
      while (w.ctx != nullptr && !w.in_flight.empty() && finish_round(w, /*block=*/false)) {
      }
      if (w.ctx == nullptr || w.in_flight.empty()) continue;
      // Replies still to come: wait for them, or for more to send, whichever is first.
      if (w.in_flight.size() >= kMaxRoundsInFlight) {
        finish_round(w, /*block=*/true);
      } else {
        await_replies(w);
      }
    } else if (!have && steady::now() >= w.last_reply + kIdlePing) {
      ping(w);
    }
  }
  while (w.ctx != nullptr && !w.in_flight.empty()) finish_round(w, /*block=*/true);  // bounded
  if (w.ctx != nullptr) {
    redisFree(w.ctx);
    w.ctx = nullptr;
  }
  connected_.store(false, std::memory_order_release);
  stats_.connection_changed(false);
}

bool RedisSink::connect(Writer& w) {
  std::string why;
  redisContext* c = open_connection(address_, config_.command_timeout, why);
  if (c == nullptr) {
    uint64_t suppressed = 0;
    if (w.connect_warnings.allow(suppressed)) {
      log_->warn(
          "cannot connect to redis {}: {}; scores are not cached meanwhile (retry in {} "
          "ms; {} similar warnings suppressed)",
          endpoint(address_), why, w.backoff.count(), suppressed);
    }
    return false;
  }
  w.ctx = c;
  w.last_reply = steady::now();
  connected_.store(true, std::memory_order_release);
  stats_.connection_changed(true);
  if (!w.ever_connected) {
    log_->info("connected to redis {}", endpoint(address_));
  } else if (uint64_t suppressed = 0; w.reconnect_infos.allow(suppressed)) {
    const auto down = std::chrono::duration_cast<milliseconds>(steady::now() - w.down_since);
    log_->info("reconnected to redis {} after {} ms; {} scores skipped while it was unavailable",
               endpoint(address_), down.count(), stats_.skipped_unavailable() - w.skipped_at_down);
  }
  w.ever_connected = true;
  return true;
}

void RedisSink::lose_connection(Writer& w, const std::string& why, size_t unconfirmed) {
  // Every round still waiting for replies is unconfirmed too, except the replies of a round
  // already read: those keep their outcome.
  size_t settled = unconfirmed;
  for (const auto& r : w.in_flight) {
    stats_.records_written(r.ok);
    unconfirmed += r.records - r.ok;  // error replies count as failed too
    settled += r.records;
  }
  stats_.records_failed(unconfirmed);
  w.in_flight.clear();
  w.in.clear();
  w.in_pos = 0;
  redisFree(w.ctx);
  w.ctx = nullptr;
  connected_.store(false, std::memory_order_release);
  stats_.connection_changed(false);
  w.down_since = steady::now();
  w.skipped_at_down = stats_.skipped_unavailable();
  w.next_attempt = w.down_since + w.backoff;
  w.backoff = std::min(w.backoff * 2, config_.reconnect_backoff_max);
  uint64_t suppressed = 0;
  if (w.loss_warnings.allow(suppressed)) {
    log_->warn(
        "lost the connection to redis {}: {}; {} writes of the round unconfirmed (counted "
        "as failed); scores are not cached until it is back ({} similar warnings "
        "suppressed)",
        endpoint(address_), why, unconfirmed, suppressed);
  }
  mark_settled(settled);
}

namespace {

// Writes all of `data` to `fd`; empty on success, else why not. SO_SNDTIMEO bounds each write.
std::string send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? "write timed out"
                                                                : errno_text(errno);
    }
  }
  return {};
}

}  // namespace

// Reads `n` replies (simple strings, errors, or the nil of a SET NX that found its key: SET and
// PING answer with nothing else) from the
// connection. Returns why the connection broke (empty if it did not); `ok` and `rejected`
// count the replies read, `rejection` keeps the first error reply.
// Without `block`, stops (returning no error) when nothing more has arrived yet.
static std::string read_replies(int fd, std::string& in, size_t& pos, size_t n, size_t& ok,
                                size_t& rejected, std::string& rejection, bool block = true) {
  while (ok + rejected < n) {
    const size_t eol = in.find("\r\n", pos);
    if (eol == std::string::npos) {
      if (pos > 0) {
        in.erase(0, pos);
        pos = 0;
      }
      const size_t old = in.size();
      in.resize(old + 65536);
      const ssize_t got = ::recv(fd, in.data() + old, 65536, block ? 0 : MSG_DONTWAIT);
      in.resize(old + static_cast<size_t>(std::max<ssize_t>(got, 0)));
      if (got > 0) continue;
      if (got < 0 && errno == EINTR) continue;
      if (got < 0 && !block && (errno == EAGAIN || errno == EWOULDBLOCK)) return {};
      if (got == 0) return "connection closed by Redis";
      return errno == EAGAIN || errno == EWOULDBLOCK ? "reply timed out" : errno_text(errno);
    }
    const char type = in[pos];
    if (type == '+') {
      ++ok;
    } else if (type == '$' && in.compare(pos, eol - pos, "$-1") == 0) {
      ++ok;  // SET ... NX on a key that exists: answered, the record there stays
    } else if (type == '-') {
      if (rejection.empty()) rejection.assign(in, pos + 1, eol - pos - 1);
      ++rejected;
    } else {
      return "unexpected reply type '" + std::string(1, type) + "'";
    }
    pos = eol + 2;
  }
  if (pos == in.size()) {
    in.clear();
    pos = 0;
  }
  return {};
}

void RedisSink::ping(Writer& w) {
  size_t ok = 0, rejected = 0;
  std::string rejection;
  std::string broken = send_all(w.ctx->fd, "*1\r\n$4\r\nPING\r\n");
  if (broken.empty()) broken = read_replies(w.ctx->fd, w.in, w.in_pos, 1, ok, rejected, rejection);
  if (broken.empty() && rejected > 0) broken = rejection;
  if (!broken.empty()) {
    lose_connection(w, "PING: " + broken, 0);
    return;
  }
  w.last_reply = steady::now();
  w.backoff = kInitialBackoff;
}

bool RedisSink::send_round(Writer& w, const Chunk& round) {
  Writer::Sent sent;
  sent.records = round.records;
  sent.at = steady::now();
  w.in_flight.push_back(std::move(sent));
  const std::string broken = send_all(w.ctx->fd, round.resp);
  if (broken.empty()) return true;
  lose_connection(w, broken, 0);  // counts this round with the others in flight
  return false;
}

// Replies before a broken read are final; the records from the broken read on are
// unconfirmed and counted as failed (not retried: Redis may hold them already, and it is a
// cache).
bool RedisSink::finish_round(Writer& w, bool block) {
  Writer::Sent& sent = w.in_flight.front();
  const size_t before = sent.ok + sent.rejected;
  const std::string broken = read_replies(w.ctx->fd, w.in, w.in_pos, sent.records, sent.ok,
                                          sent.rejected, sent.rejection, block);
  const size_t read = sent.ok + sent.rejected - before;
  if (read > 0) {
    w.last_reply = steady::now();
    w.backoff = kInitialBackoff;  // the connection works: the next loss retries quickly
  }
  if (!broken.empty()) {
    stats_.records_written(sent.ok);
    stats_.records_failed(sent.rejected);
    mark_settled(sent.ok + sent.rejected);
    sent.records -= sent.ok + sent.rejected;  // the rest is unconfirmed
    sent.ok = sent.rejected = 0;
    lose_connection(w, broken, 0);
    return false;
  }
  if (sent.ok + sent.rejected < sent.records) return false;  // more replies to come
  const Writer::Sent done = std::move(sent);
  w.in_flight.pop_front();
  stats_.records_written(done.ok);
  stats_.records_failed(done.rejected);
  stats_.round_completed(steady::now() - done.at);
  if (done.rejected > 0) {
    uint64_t suppressed = 0;
    if (w.reply_warnings.allow(suppressed)) {
      log_->warn("redis rejected {} of {} writes: {} ({} similar warnings suppressed)",
                 done.rejected, done.records, done.rejection, suppressed);
    }
  }
  if (done.ok == 0 && needs_reconnect(done.rejection)) lose_connection(w, done.rejection, 0);
  // Last, so that a flush() returning after this round sees connected() as the round left it.
  mark_settled(done.records);
  return true;
}

void RedisSink::await_replies(Writer& w) {
  // Sleeps until replies arrive or publish() queues more to send (wake_fd_), bounded by the
  // oldest round's reply deadline.
  const auto deadline = w.in_flight.front().at + config_.command_timeout;
  const auto now = steady::now();
  if (now >= deadline) {
    if (!finish_round(w, /*block=*/false) && w.ctx != nullptr &&
        steady::now() >= w.in_flight.front().at + config_.command_timeout) {
      lose_connection(w, "reply timed out", 0);
    }
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!queue_.empty() || stop_writer_) return;
    writer_polling_ = true;
  }
  pollfd fds[2] = {{w.ctx->fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  const int ms =
      static_cast<int>(std::chrono::duration_cast<milliseconds>(deadline - now).count() + 1);
  ::poll(fds, 2, ms);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    writer_polling_ = false;
  }
  uint64_t drained;
  while (::read(wake_fd_, &drained, sizeof drained) > 0) {
  }
}

}  // namespace vigil::sinks

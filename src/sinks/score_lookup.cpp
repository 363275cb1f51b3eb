#include "sinks/score_lookup.h"

#include "common/log.h"
#include "common/thread_name.h"
#include "sinks/redis_connection.h"

namespace vigil::sinks {

using steady = std::chrono::steady_clock;

ScoreLookup::Stats::Stats(metrics::Registry& r)
    : hit(r.counter("vigil_score_lookups_total", "Score lookups by result", {{"result", "hit"}})),
      miss(r.counter("vigil_score_lookups_total", "Score lookups by result", {{"result", "miss"}})),
      unavailable(r.counter("vigil_score_lookups_total", "Score lookups by result",
                            {{"result", "unavailable"}})),
      busy(r.counter("vigil_score_lookups_total", "Score lookups by result",
                     {{"result", "busy"}})) {}

void ScoreLookup::Stats::count(LookupResult::Kind kind) {
  switch (kind) {
    case LookupResult::Kind::kFound:
      hit.inc();
      return;
    case LookupResult::Kind::kMissing:
      miss.inc();
      return;
    case LookupResult::Kind::kUnavailable:
      unavailable.inc();
      return;
    case LookupResult::Kind::kBusy:
      busy.inc();
      return;
  }
}

Result<std::unique_ptr<ScoreLookup>> ScoreLookup::Create(const RedisConfig& config,
                                                         metrics::Registry& registry,
                                                         size_t queue_capacity) {
  using R = Result<std::unique_ptr<ScoreLookup>>;
  Result<RedisAddress> address = parse_redis_url(config.url);
  if (!address) return R::Error("redis.url: " + address.error());
  return R(std::unique_ptr<ScoreLookup>(
      new ScoreLookup(config, std::move(address.value()), registry, queue_capacity)));
}

ScoreLookup::ScoreLookup(const RedisConfig& config, RedisAddress address,
                         metrics::Registry& registry, size_t queue_capacity)
    : config_(config),
      address_(std::move(address)),
      capacity_(std::max<size_t>(queue_capacity, 1)),
      stats_(registry) {}

ScoreLookup::~ScoreLookup() {
  stop();
}

void ScoreLookup::start() {
  thread_ = std::thread([this] {
    name_this_thread("vigil-lookup");
    main();
  });
}

void ScoreLookup::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::deque<std::pair<std::string, Done>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(queue_);
  }
  for (auto& [id, done] : left) {
    done({LookupResult::Kind::kUnavailable, "", "shutting down"});
  }
  if (redis_ != nullptr) {
    redisFree(redis_);
    redis_ = nullptr;
  }
}

void ScoreLookup::get(std::string transaction_id, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stop_ && queue_.size() < capacity_) {
      queue_.emplace_back(std::move(transaction_id), std::move(done));
      cv_.notify_one();
      return;
    }
  }
  LookupResult r{LookupResult::Kind::kBusy, "", "too many lookups waiting"};
  stats_.count(r.kind);
  done(r);
}

void ScoreLookup::main() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    auto [id, done] = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    const LookupResult r = lookup(id);
    stats_.count(r.kind);
    done(r);
    lock.lock();
  }
}

LookupResult ScoreLookup::lookup(const std::string& id) {
  if (redis_ == nullptr) {
    if (steady::now() < next_connect_) {  // recently failed: answer at once, retry later
      return {LookupResult::Kind::kUnavailable, "", "redis unreachable: " + last_error_};
    }
    redis_ = open_connection(address_, config_.command_timeout, last_error_);
    if (redis_ == nullptr) {
      next_connect_ = steady::now() + backoff_;
      backoff_ = std::min(backoff_ * 2, config_.reconnect_backoff_max);
      static RateLimitedLog log{"redis", std::chrono::milliseconds(5000)};
      log.warn("score lookups: cannot reach Redis at {}: {}", endpoint(address_), last_error_);
      return {LookupResult::Kind::kUnavailable, "", "redis unreachable: " + last_error_};
    }
    backoff_ = std::chrono::milliseconds(50);
  }
  const std::string key = config_.key_prefix + id;
  auto* reply = static_cast<redisReply*>(redisCommand(redis_, "GET %b", key.data(), key.size()));
  if (reply == nullptr) {
    last_error_ = redis_->errstr[0] != '\0' ? redis_->errstr : "no reply";
    redisFree(redis_);
    redis_ = nullptr;
    next_connect_ = steady::now() + backoff_;
    return {LookupResult::Kind::kUnavailable, "", "redis: " + last_error_};
  }
  LookupResult r;
  if (reply->type == REDIS_REPLY_STRING) {
    r = {LookupResult::Kind::kFound, std::string(reply->str, reply->len), ""};
  } else if (reply->type == REDIS_REPLY_NIL) {
    r = {LookupResult::Kind::kMissing, "", ""};
  } else {
    r = {LookupResult::Kind::kUnavailable, "",
         reply->type == REDIS_REPLY_ERROR ? std::string(reply->str, reply->len)
                                          : "unexpected reply"};
  }
  freeReplyObject(reply);
  return r;
}

}  // namespace vigil::sinks

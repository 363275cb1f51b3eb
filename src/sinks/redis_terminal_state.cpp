#include "sinks/redis_terminal_state.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <utility>

#include "common/log.h"
#include "common/thread_name.h"
#include "sinks/redis_connection.h"

namespace vigil::sinks {

namespace {

// Counts the records of a partition's range from its watermark on, and moves the watermark
// past the range, atomically.
//   KEYS[1]  the partition's watermark
//   ARGV     from, ttl, the tx hash prefix, P, then P x (day, terminal), then one entry per
//            record of [from, from + n): 0 (nothing to count) or the 1-based pair
// Returns {watermark before, end of the range, 1 when applied / 0 when already counted}.
constexpr const char* kCountScript = R"lua(
local from = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local np = tonumber(ARGV[4])
local first = 5 + 2 * np
local to = from + (#ARGV - first + 1)
local wm = tonumber(redis.call('GET', KEYS[1]) or '-1')
if wm >= to then return {wm, to, 0} end
local start = first
if wm > from then start = first + (wm - from) end
local n = {}
for i = start, #ARGV do
  local k = tonumber(ARGV[i])
  if k > 0 then n[k] = (n[k] or 0) + 1 end
end
local touched = {}
for k, c in pairs(n) do
  local h = ARGV[3] .. ARGV[3 + 2 * k]
  redis.call('HINCRBY', h, ARGV[4 + 2 * k], c)
  touched[h] = true
end
for h in pairs(touched) do redis.call('EXPIRE', h, ttl) end
redis.call('SET', KEYS[1], to, 'EX', ttl)
return {wm, to, 1}
)lua";

// Counts a reported transaction on its earliest report day.
//   KEYS[1]  rep:<transaction id>
//   ARGV     the fraud hash of the transaction's day, terminal, report day, ttl
// Returns 1 (first report), 2 (an earlier report day: moved), 0 (a repeat: nothing).
constexpr const char* kReportScript = R"lua(
local prev = redis.call('GET', KEYS[1])
local day = tonumber(ARGV[3])
if prev and tonumber(prev) <= day then return 0 end
if prev then redis.call('HINCRBY', ARGV[1], ARGV[2] .. ':' .. prev, -1) end
redis.call('HINCRBY', ARGV[1], ARGV[2] .. ':' .. ARGV[3], 1)
redis.call('EXPIRE', ARGV[1], ARGV[4])
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
if prev then return 2 end
return 1
)lua";

bool parse_int(const char* s, size_t n, int64_t& out) {
  const auto r = std::from_chars(s, s + n, out);
  return r.ec == std::errc() && r.ptr == s + n;
}

// Runs a command given as arguments; appends it to the pipeline. False with `why` set when
// hiredis refused it.
bool append(redisContext* c, const std::vector<std::string>& args, std::string& why,
            metrics::Counter& commands, metrics::Counter& bytes) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  size_t total = 0;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
    total += a.size();
  }
  if (redisAppendCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()) !=
      REDIS_OK) {
    why = c->errstr;
    return false;
  }
  commands.inc();
  bytes.inc(total);
  return true;
}

// SCRIPT LOAD: the script's SHA1 for EVALSHA on this connection, or empty with `why` set.
std::string load_script(redisContext* c, const char* script, std::string& why) {
  void* raw = redisCommand(c, "SCRIPT LOAD %s", script);
  if (raw == nullptr) {
    why = c->errstr;
    return "";
  }
  ReplyPtr reply(static_cast<redisReply*>(raw), freeReplyObject);
  if (reply->type != REDIS_REPLY_STRING) {
    why = reply->type == REDIS_REPLY_ERROR ? std::string(reply->str, reply->len)
                                           : "unexpected reply to SCRIPT LOAD";
    return "";
  }
  return std::string(reply->str, reply->len);
}

metrics::Counter& records_counter(metrics::Registry& r, const char* outcome) {
  return r.counter("vigil_features_terminal_records_total",
                   "Transaction records sent to the shared terminal state, by outcome (counted; "
                   "recounted: already counted, by an earlier write or another instance)",
                   {{"outcome", outcome}});
}

metrics::Counter& reports_counter(metrics::Registry& r, const char* outcome) {
  return r.counter("vigil_features_terminal_reports_total",
                   "Fraud reports applied to the shared terminal state, by outcome (counted: "
                   "first report; moved: an earlier report day; repeated: nothing changed)",
                   {{"outcome", outcome}});
}

}  // namespace

RedisTerminalState::RedisTerminalState(Options options, metrics::Registry& registry)
    : options_(std::move(options)),
      counted_(records_counter(registry, "counted")),
      recounted_(records_counter(registry, "recounted")),
      uncounted_(registry.counter(
          "vigil_features_terminal_uncounted_total",
          "Records of the transactions topic never counted in the shared terminal state (the "
          "log no longer held them when their partition was assigned)")),
      writes_ok_(registry.counter("vigil_features_terminal_writes_total",
                                  "Writes of counted ranges to the shared terminal state",
                                  {{"outcome", "ok"}})),
      writes_failed_(registry.counter("vigil_features_terminal_writes_total",
                                      "Writes of counted ranges to the shared terminal state",
                                      {{"outcome", "failed"}})),
      backlog_gauge_(registry.gauge("vigil_features_terminal_backlog_records",
                                    "Records waiting to be counted in the shared terminal state")),
      refreshes_ok_(registry.counter("vigil_features_terminal_refreshes_total",
                                     "Reads of the shared terminal state into the local copy",
                                     {{"outcome", "ok"}})),
      refreshes_failed_(registry.counter("vigil_features_terminal_refreshes_total",
                                         "Reads of the shared terminal state into the local copy",
                                         {{"outcome", "failed"}})),
      refresh_seconds_(registry.histogram("vigil_features_terminal_refresh_seconds",
                                          "Seconds one read of the shared terminal state took",
                                          {0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5})),
      copy_terminals_(registry.gauge("vigil_features_terminal_copy_terminals",
                                     "Terminals in the local copy of the shared terminal state")),
      reports_counted_(reports_counter(registry, "counted")),
      reports_moved_(reports_counter(registry, "moved")),
      reports_repeated_(reports_counter(registry, "repeated")),
      commands_(registry.counter("vigil_features_terminal_redis_commands_total",
                                 "Redis commands sent for the shared terminal state")),
      bytes_sent_(registry.counter("vigil_features_terminal_redis_sent_bytes_total",
                                   "Bytes of arguments sent to Redis for the shared terminal "
                                   "state")),
      bytes_read_(registry.counter("vigil_features_terminal_redis_read_bytes_total",
                                   "Bytes of hash fields and values read from Redis into the "
                                   "local copy")),
      writer_([this] { run_writer(); }),
      refresher_([this] { run_refresher(); }) {}

RedisTerminalState::~RedisTerminalState() {
  stop();
  if (report_conn_ != nullptr) redisFree(report_conn_);
}

void RedisTerminalState::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    drain_deadline_ = std::chrono::steady_clock::now() + options_.command_timeout * 4;
  }
  cv_.notify_all();
  writer_.join();
  refresher_.join();
}

std::string RedisTerminalState::tx_key(int64_t day) const {
  return options_.key_prefix + "tx:" + std::to_string(day);
}

std::string RedisTerminalState::fraud_key(int64_t day) const {
  return options_.key_prefix + "fraud:" + std::to_string(day);
}

Result<int64_t> RedisTerminalState::counted_until(int32_t partition) {
  int64_t queued = -1;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = pending_.find(partition);
    if (it != pending_.end()) queued = it->second.end();
  }
  std::string why;
  redisContext* c = open_connection(options_.address, options_.command_timeout, why);
  if (c == nullptr) return Result<int64_t>::Error("Redis: " + why);
  const std::string key = options_.key_prefix + "wm:" + std::to_string(partition);
  int64_t wm = -1;
  if (append(c, {"GET", key}, why, commands_, bytes_sent_)) {
    const ReplyPtr reply = next_reply(c, why);
    if (why.empty() && reply->type == REDIS_REPLY_STRING &&
        !parse_int(reply->str, reply->len, wm)) {
      why = "watermark " + key + " is not an integer";
    }
  }
  redisFree(c);
  if (!why.empty()) return Result<int64_t>::Error("Redis: " + why);
  return std::max(wm, queued);
}

void RedisTerminalState::count(int32_t partition, int64_t from,
                               std::vector<features::TerminalCount> records) {
  if (records.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Pending& p = pending_[partition];
    size_t skip = 0;
    if (p.from < 0 || (p.records.empty() && from > p.from)) {
      p.from = from;  // nothing queued: the range starts here (the script finds any gap)
    } else if (from < p.end()) {
      skip = static_cast<size_t>(
          std::min<int64_t>(p.end() - from, static_cast<int64_t>(records.size())));
    } else if (from > p.end()) {
      // Records between were never handed over (the log no longer held them): they count
      // nothing, and the range stays contiguous.
      uncounted_.inc(static_cast<uint64_t>(from - p.end()));
      p.records.resize(p.records.size() + static_cast<size_t>(from - p.end()), 0);
    }
    for (size_t i = skip; i < records.size(); ++i) {
      features::TerminalCount& r = records[i];
      if (r.terminal.empty()) {
        p.records.push_back(0);
        continue;
      }
      std::string key = std::to_string(r.day);
      key += ':';
      key += r.terminal;
      auto [it, added] = p.index.try_emplace(std::move(key), 0);
      if (added) {
        p.pairs.emplace_back(r.day, std::move(r.terminal));
        it->second = static_cast<uint32_t>(p.pairs.size());
      }
      p.records.push_back(it->second);
    }
    backlog_ += records.size() - skip;
    backlog_gauge_.set(static_cast<double>(backlog_));
  }
}

size_t RedisTerminalState::backlog() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return backlog_;
}

void RedisTerminalState::flush() {
  std::unique_lock<std::mutex> lock(mutex_);
  idle_cv_.wait(lock, [&] { return (backlog_ == 0 && !busy_) || stopping_; });
}

void RedisTerminalState::requeue(int32_t partition, Pending job) {
  // Caller holds mutex_. What was queued since continues the job's range.
  Pending& p = pending_[partition];
  const auto shift = static_cast<uint32_t>(job.pairs.size());
  for (uint32_t r : p.records) job.records.push_back(r == 0 ? 0 : r + shift);
  for (auto& pair : p.pairs) job.pairs.push_back(std::move(pair));
  job.index.clear();
  for (size_t i = 0; i < job.pairs.size(); ++i) {
    job.index[std::to_string(job.pairs[i].first) + ":" + job.pairs[i].second] =
        static_cast<uint32_t>(i + 1);
  }
  p = std::move(job);
}

bool RedisTerminalState::write(redisContext*& c, std::map<int32_t, Pending>& jobs,
                               std::string& why) {
  const std::string ttl = std::to_string(options_.ttl_s);
  const std::string tx_prefix = options_.key_prefix + "tx:";
  std::vector<std::string> args;
  for (const auto& [partition, job] : jobs) {
    args.clear();
    args.reserve(7 + 2 * job.pairs.size() + job.records.size());
    args.emplace_back("EVALSHA");
    args.push_back(count_sha_);
    args.emplace_back("1");
    args.push_back(options_.key_prefix + "wm:" + std::to_string(partition));
    args.push_back(std::to_string(job.from));
    args.push_back(ttl);
    args.push_back(tx_prefix);
    args.push_back(std::to_string(job.pairs.size()));
    for (const auto& [day, terminal] : job.pairs) {
      args.push_back(std::to_string(day));
      args.push_back(terminal);
    }
    for (uint32_t r : job.records) args.push_back(std::to_string(r));
    if (!append(c, args, why, commands_, bytes_sent_)) return false;
  }
  for (auto& [partition, job] : jobs) {
    const ReplyPtr reply = next_reply(c, why);
    if (!why.empty()) return false;
    int64_t before = -1;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
      why = "unexpected reply to the count script";
      return false;
    }
    before = reply->element[0]->integer;
    const int64_t end = job.end();
    const int64_t counted_from = std::max(before, job.from);
    if (before >= 0 && before < job.from) {
      logger("redis")->warn(
          "terminal counts of partition {}: offsets {}..{} were never counted (the log no "
          "longer held them)",
          partition, before, job.from - 1);
      uncounted_.inc(static_cast<uint64_t>(job.from - before));
    }
    counted_.inc(static_cast<uint64_t>(std::max<int64_t>(0, end - counted_from)));
    recounted_.inc(static_cast<uint64_t>(std::min(end, counted_from) - job.from));
    job.records.clear();  // written
  }
  return true;
}

void RedisTerminalState::run_writer() {
  name_this_thread("vigil-term-wr");
  redisContext* c = nullptr;
  auto backoff = std::chrono::milliseconds(50);
  std::map<int32_t, Pending> jobs;
  for (;;) {
    jobs.clear();
    {
      std::unique_lock<std::mutex> lock(mutex_);
      busy_ = false;
      idle_cv_.notify_all();
      cv_.wait_for(lock, options_.flush_interval, [&] { return stopping_; });
      const bool give_up = stopping_ && (c == nullptr || backlog_ == 0 ||
                                         std::chrono::steady_clock::now() >= drain_deadline_);
      if (give_up) {
        // Not written: the watermarks did not move, so the partitions' next owners count
        // these records (the log holds them).
        break;
      }
      for (auto& [partition, p] : pending_) {
        if (p.records.empty()) continue;
        Pending job;
        job.from = p.from;
        job.records = std::move(p.records);
        job.pairs = std::move(p.pairs);
        p.records.clear();
        p.pairs.clear();
        p.index.clear();
        p.from = job.end();
        jobs.emplace(partition, std::move(job));
      }
      if (jobs.empty()) continue;
      busy_ = true;
    }
    std::string why;
    if (c == nullptr) {
      c = open_connection(options_.address, options_.command_timeout, why);
      if (c != nullptr) count_sha_ = load_script(c, kCountScript, why);
      if (c != nullptr && count_sha_.empty()) {
        redisFree(c);
        c = nullptr;
      }
    }
    const bool ok = c != nullptr && write(c, jobs, why);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& [partition, job] : jobs) {
        if (job.records.empty()) continue;  // written
        requeue(partition, std::move(job));
      }
      size_t left = 0;
      for (const auto& [partition, p] : pending_) left += p.records.size();
      backlog_ = left;
      backlog_gauge_.set(static_cast<double>(backlog_));
    }
    if (ok) {
      writes_ok_.inc();
      backoff = std::chrono::milliseconds(50);
      continue;
    }
    writes_failed_.inc();
    if (c != nullptr) {  // replies may be out of step: a new connection next time
      redisFree(c);
      c = nullptr;
    }
    uint64_t suppressed = 0;
    if (failure_log_.allow(suppressed)) {
      logger("redis")->warn(
          "terminal counts not written ({}); kept and retried, {} record(s) waiting ({} more "
          "failure(s) not logged)",
          why, backlog(), suppressed);
    }
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, backoff, [&] { return stopping_; });
    backoff = std::min(backoff * 2, options_.reconnect_backoff_max);
  }
  if (c != nullptr) redisFree(c);
  std::lock_guard<std::mutex> lock(mutex_);
  busy_ = false;
  idle_cv_.notify_all();
}

Result<size_t> RedisTerminalState::report(const std::vector<features::TerminalReport>& reports) {
  std::string why;
  if (report_conn_ == nullptr) {
    report_conn_ = open_connection(options_.address, options_.command_timeout, why);
    if (report_conn_ == nullptr) return Result<size_t>::Error("Redis: " + why);
    report_sha_ = load_script(report_conn_, kReportScript, why);
    if (report_sha_.empty()) {
      redisFree(report_conn_);
      report_conn_ = nullptr;
      return Result<size_t>::Error("Redis: " + why);
    }
  }
  const std::string ttl = std::to_string(options_.ttl_s);
  for (const features::TerminalReport& r : reports) {
    if (!append(report_conn_,
                {"EVALSHA", report_sha_, "1", options_.key_prefix + "rep:" + r.transaction_id,
                 fraud_key(r.tx_day), r.terminal, std::to_string(r.report_day), ttl},
                why, commands_, bytes_sent_)) {
      break;
    }
  }
  size_t changed = 0;
  for (size_t i = 0; i < reports.size() && why.empty(); ++i) {
    const ReplyPtr reply = next_reply(report_conn_, why);
    if (!why.empty()) break;
    if (reply->type != REDIS_REPLY_INTEGER) {
      why = "unexpected reply to the report script";
      break;
    }
    if (reply->integer == 1) {
      reports_counted_.inc();
      ++changed;
    } else if (reply->integer == 2) {
      reports_moved_.inc();
      ++changed;
    } else {
      reports_repeated_.inc();
    }
  }
  if (!why.empty()) {
    redisFree(report_conn_);
    report_conn_ = nullptr;
    return Result<size_t>::Error("Redis: " + why);
  }
  return changed;
}

void RedisTerminalState::saw_day(int64_t day) {
  int64_t seen = newest_day_.load(std::memory_order_relaxed);
  while (day > seen && !newest_day_.compare_exchange_weak(seen, day)) {
  }
}

std::shared_ptr<const features::TerminalCopy> RedisTerminalState::copy() const {
  std::lock_guard<std::mutex> lock(copy_mutex_);
  return copy_;
}

bool RedisTerminalState::refresh_now() {
  std::lock_guard<std::mutex> serial(refresh_mutex_);
  const int64_t newest = newest_day_.load(std::memory_order_relaxed);
  if (newest == INT64_MIN) return true;  // nothing read yet: nothing to look up
  const auto started = std::chrono::steady_clock::now();
  const features::TerminalWindows& w = options_.windows;
  // The days the windows of transactions up to two days after the newest reach.
  const int64_t first = newest - w.reach_days() - 1;
  const int64_t last = std::max(first, newest + 2 - w.delay_days - 1);
  auto fresh = std::make_shared<features::TerminalCopy>(w);
  fresh->first_day = first;
  fresh->last_day = last;
  std::string why;
  redisContext* c = open_connection(options_.address, options_.command_timeout, why);
  if (c != nullptr) {
    for (int64_t d = first; d <= last && why.empty(); ++d) {
      if (append(c, {"HGETALL", tx_key(d)}, why, commands_, bytes_sent_)) {
        append(c, {"HGETALL", fraud_key(d)}, why, commands_, bytes_sent_);
      }
    }
    uint64_t bytes = 0;
    for (int64_t d = first; d <= last && why.empty(); ++d) {
      for (int kind = 0; kind < 2 && why.empty(); ++kind) {
        const ReplyPtr reply = next_reply(c, why);
        if (!why.empty()) break;
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0) {
          why = "unexpected reply to HGETALL";
          break;
        }
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
          const redisReply* field = reply->element[i];
          const redisReply* value = reply->element[i + 1];
          bytes += field->len + value->len;
          int64_t n = 0;
          if (!parse_int(value->str, value->len, n) || n <= 0) continue;
          const std::string_view f(field->str, field->len);
          if (kind == 0) {
            fresh->days.add_transactions(f, d, static_cast<uint32_t>(n));
            continue;
          }
          const size_t colon = f.rfind(':');
          int64_t report_day = 0;
          if (colon == std::string_view::npos ||
              !parse_int(f.data() + colon + 1, f.size() - colon - 1, report_day)) {
            continue;
          }
          fresh->days.add_frauds(f.substr(0, colon), d, report_day, static_cast<int32_t>(n));
        }
      }
    }
    bytes_read_.inc(bytes);
    redisFree(c);
  }
  const auto done = std::chrono::steady_clock::now();
  refresh_seconds_.observe(std::chrono::duration<double>(done - started).count());
  if (!why.empty()) {
    refreshes_failed_.inc();
    uint64_t suppressed = 0;
    if (failure_log_.allow(suppressed)) {
      logger("redis")->warn(
          "shared terminal state not read ({}); the local copy keeps its age ({} more "
          "failure(s) not logged)",
          why, suppressed);
    }
    return false;
  }
  fresh->read_at = started;
  copy_terminals_.set(static_cast<double>(fresh->days.terminals()));
  {
    std::lock_guard<std::mutex> lock(copy_mutex_);
    copy_ = std::move(fresh);
  }
  version_.fetch_add(1, std::memory_order_acq_rel);
  refreshes_ok_.inc();
  return true;
}

void RedisTerminalState::run_refresher() {
  name_this_thread("vigil-term-rd");
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (cv_.wait_for(lock, options_.refresh_interval, [&] { return stopping_; })) break;
    }
    refresh_now();
  }
}

}  // namespace vigil::sinks

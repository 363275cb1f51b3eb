#include "sinks/redis_terminal_state.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <functional>
#include <utility>

#include "common/log.h"
#include "common/thread_name.h"
#include "sinks/redis_connection.h"

namespace vigil::sinks {

namespace {

// Counts the records of several partitions' ranges, aggregated per (day, terminal), and moves
// each partition's watermark past its range, atomically: only when every range starts at or
// after its partition's watermark. Otherwise nothing is applied, and the caller drops each
// refused partition's records before its watermark (counted already, by an earlier write or
// another instance) and sends the rest again.
//   KEYS     the partitions' watermarks
//   ARGV     ttl, the tx hash prefix, the generations hash, (unused), then per
//            partition (from, to), then triples (day, terminal, count)
// Each day whose hash changed gets a new generation (field <day> of the generations hash):
// "<sequence>@<Redis TIME>", never the same twice, even after Redis lost or restored its
// data; a reader re-reads only the days whose generation changed.
// Returns {1, watermarks before} when applied, {0, {partition index, watermark}...} when not.
constexpr const char* kCountScript = R"lua(
local ttl = tonumber(ARGV[1])
local np = #KEYS
local before, refused = {}, {}
for i = 1, np do
  local wm = tonumber(redis.call('GET', KEYS[i]) or '-1')
  before[i] = wm
  if wm > tonumber(ARGV[3 + 2 * i]) then
    refused[#refused + 1] = i - 1
    refused[#refused + 1] = wm
  end
end
if #refused > 0 then return {0, refused} end
local touched = {}
for j = 5 + 2 * np, #ARGV, 3 do
  redis.call('HINCRBY', ARGV[2] .. ARGV[j], ARGV[j + 1], ARGV[j + 2])
  touched[ARGV[j]] = true
end
local t = redis.call('TIME')
local generation = redis.call('HINCRBY', ARGV[3], '#', 1) .. '@' .. t[1] .. '.' .. t[2]
for day in pairs(touched) do
  redis.call('EXPIRE', ARGV[2] .. day, ttl)
  redis.call('HSET', ARGV[3], day, generation)
end
redis.call('EXPIRE', ARGV[3], ttl)
for i = 1, np do redis.call('SET', KEYS[i], ARGV[4 + 2 * i], 'EX', ttl) end
return {1, before}
)lua";

// Counts a reported transaction on its earliest report day, under the transaction day and
// terminal of its first report (a later report that disagrees on them moves the count it
// made, as FraudReports does).
//   KEYS[1]  rep:<transaction id>, "<report day>|<transaction day>|<terminal>"
//   ARGV     the fraud hash prefix, terminal, transaction day, report day, ttl
// Returns 1 (first report), 2 (an earlier report day: moved), 0 (a repeat: nothing).
constexpr const char* kReportScript = R"lua(
local prev = redis.call('GET', KEYS[1])
local day = tonumber(ARGV[4])
local tx_day, terminal = ARGV[3], ARGV[2]
if prev then
  local at, d, m = string.match(prev, '^(-?%d+)|(-?%d+)|(.*)$')
  if at and tonumber(at) <= day then return 0 end
  if at then
    tx_day, terminal = d, m
    redis.call('HINCRBY', ARGV[1] .. tx_day, terminal .. ':' .. at, -1)
  end
end
redis.call('HINCRBY', ARGV[1] .. tx_day, terminal .. ':' .. ARGV[4], 1)
redis.call('EXPIRE', ARGV[1] .. tx_day, ARGV[5])
redis.call('SET', KEYS[1], ARGV[4] .. '|' .. tx_day .. '|' .. terminal, 'EX', ARGV[5])
if prev then return 2 end
return 1
)lua";

// The key of a (day, terminal) pair in a partition's index: the terminal, then the day's bytes.
std::string pair_key(int64_t day, const std::string& terminal) {
  std::string key;
  key.reserve(terminal.size() + sizeof day);
  key.append(terminal);
  key.append(reinterpret_cast<const char*>(&day), sizeof day);
  return key;
}

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

Result<std::vector<int64_t>> RedisTerminalState::counted_until(
    const std::vector<int32_t>& partitions) {
  using R = Result<std::vector<int64_t>>;
  std::vector<int64_t> until(partitions.size(), -1);
  if (partitions.empty()) return R(std::move(until));
  std::string why;
  redisContext* c = open_connection(options_.address, options_.command_timeout, why);
  if (c == nullptr) return R::Error("Redis: " + why);
  std::vector<std::string> args = {"MGET"};
  for (int32_t p : partitions) args.push_back(options_.key_prefix + "wm:" + std::to_string(p));
  if (append(c, args, why, commands_, bytes_sent_)) {
    const ReplyPtr reply = next_reply(c, why);
    if (why.empty() && (reply->type != REDIS_REPLY_ARRAY || reply->elements != partitions.size())) {
      why = "unexpected reply to MGET";
    }
    for (size_t i = 0; why.empty() && i < partitions.size(); ++i) {
      const redisReply* r = reply->element[i];
      if (r->type == REDIS_REPLY_STRING && !parse_int(r->str, r->len, until[i])) {
        why = "watermark " + args[i + 1] + " is not an integer";
      }
    }
  }
  redisFree(c);
  if (!why.empty()) return R::Error("Redis: " + why);
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < partitions.size(); ++i) {
    auto it = handed_end_.find(partitions[i]);
    if (it != handed_end_.end()) until[i] = std::max(until[i], it->second);
  }
  return R(std::move(until));
}

void RedisTerminalState::count(int32_t partition, int64_t from,
                               std::vector<features::TerminalCount> records) {
  if (records.empty()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, first] = handed_end_.try_emplace(partition, from);
  if (!first && from < it->second) {  // handed over already
    const auto skip = static_cast<size_t>(
        std::min<int64_t>(it->second - from, static_cast<int64_t>(records.size())));
    records.erase(records.begin(), records.begin() + static_cast<std::ptrdiff_t>(skip));
    from += static_cast<int64_t>(skip);
    if (records.empty()) return;
  }
  it->second = from + static_cast<int64_t>(records.size());
  backlog_ += records.size();
  backlog_gauge_.set(static_cast<double>(backlog_));
  queued_.push_back({partition, from, std::move(records)});
}

void RedisTerminalState::fold(Batch& batch) {
  auto [it, added] = ranges_.try_emplace(batch.partition);
  Range& r = it->second;
  if (added || r.records.empty()) {
    r.from = batch.from;  // the script finds any gap before it
  } else if (batch.from > r.end()) {
    // Records between were never handed over (the log no longer held them): they count
    // nothing, and the range stays contiguous.
    uncounted_.inc(static_cast<uint64_t>(batch.from - r.end()));
    r.records.resize(r.records.size() + static_cast<size_t>(batch.from - r.end()), 0);
  }
  for (features::TerminalCount& c : batch.records) {
    if (c.terminal.empty()) {
      r.records.push_back(0);
      continue;
    }
    auto [pit, fresh] = pair_index_.try_emplace(pair_key(c.day, c.terminal), 0);
    if (fresh) {
      pairs_.emplace_back(c.day, std::move(c.terminal));
      pit->second = static_cast<uint32_t>(pairs_.size());
    }
    r.records.push_back(pit->second);
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

bool RedisTerminalState::write(redisContext*& c, std::string& why) {
  const std::string ttl = std::to_string(options_.ttl_s);
  std::vector<std::string> args;
  std::vector<uint64_t> per_pair;
  // Until applied: a refused partition's records before its watermark are dropped and the
  // rest sent again (each round drops at least one record, or ends).
  // Each script applies at most increments_per_write (day, terminal) increments, taking the
  // records of each partition's range in order (partitions in order) up to the first that would
  // add one more: one script runs whole before Redis serves anyone else, and a backlog after an
  // outage (up to max_backlog records) in one script would hold Redis for seconds and outlast
  // the command timeout. A script's cost is its increments, not its records: bounding those
  // lets one script take a whole flush interval's records at the rates the terminals repeat.
  std::vector<int32_t> partitions;
  std::vector<size_t> takes;
  for (;;) {
    partitions.clear();
    takes.clear();
    per_pair.assign(pairs_.size() + 1, 0);
    size_t budget = std::max<size_t>(options_.increments_per_write, 1);
    for (const auto& [partition, r] : ranges_) {
      size_t take = 0;
      for (; take < r.records.size(); ++take) {
        const uint32_t k = r.records[take];
        if (k != 0 && per_pair[k] == 0) {
          if (budget == 0) break;
          --budget;
        }
        ++per_pair[k];
      }
      if (take == 0) continue;
      partitions.push_back(partition);
      takes.push_back(take);
    }
    if (partitions.empty()) return true;
    args.clear();
    args.emplace_back("EVALSHA");
    args.push_back(count_sha_);
    args.push_back(std::to_string(partitions.size()));
    for (int32_t p : partitions) args.push_back(options_.key_prefix + "wm:" + std::to_string(p));
    args.push_back(ttl);
    args.push_back(options_.key_prefix + "tx:");
    args.push_back(options_.key_prefix + "gen");
    args.emplace_back("-");
    for (size_t i = 0; i < partitions.size(); ++i) {
      const int64_t from = ranges_[partitions[i]].from;
      args.push_back(std::to_string(from));
      args.push_back(std::to_string(from + static_cast<int64_t>(takes[i])));
    }
    for (size_t k = 1; k < per_pair.size(); ++k) {
      if (per_pair[k] == 0) continue;
      args.push_back(std::to_string(pairs_[k - 1].first));
      args.push_back(pairs_[k - 1].second);
      args.push_back(std::to_string(per_pair[k]));
    }
    if (!append(c, args, why, commands_, bytes_sent_)) return false;
    const ReplyPtr reply = next_reply(c, why);
    if (!why.empty()) return false;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
      why = "unexpected reply to the count script";
      return false;
    }
    const redisReply* list = reply->element[1];
    if (reply->element[0]->integer == 1) {
      for (size_t i = 0; i < partitions.size() && i < list->elements; ++i) {
        Range& r = ranges_[partitions[i]];
        const int64_t before = list->element[i]->integer;
        if (before >= 0 && before < r.from) {
          uncounted_.inc(static_cast<uint64_t>(r.from - before));
          uint64_t suppressed = 0;
          if (gap_log_.allow(suppressed)) {
            logger("redis")->warn(
                "terminal counts of partition {}: offsets {}..{} were never counted (the log no "
                "longer held them; {} more gap(s) not logged)",
                partitions[i], before, r.from - 1, suppressed);
          }
        }
        counted_.inc(takes[i]);  // written
        r.records.erase(r.records.begin(),
                        r.records.begin() + static_cast<std::ptrdiff_t>(takes[i]));
        r.from += static_cast<int64_t>(takes[i]);
      }
      continue;
    }
    for (size_t i = 0; i + 1 < list->elements; i += 2) {
      const auto k = static_cast<size_t>(list->element[i]->integer);
      const int64_t wm = list->element[i + 1]->integer;
      if (k >= partitions.size()) {
        why = "unexpected reply to the count script";
        return false;
      }
      Range& r = ranges_[partitions[k]];
      const auto drop = static_cast<size_t>(
          std::min<int64_t>(wm - r.from, static_cast<int64_t>(r.records.size())));
      recounted_.inc(drop);
      r.records.erase(r.records.begin(), r.records.begin() + static_cast<std::ptrdiff_t>(drop));
      r.from += static_cast<int64_t>(drop);
    }
  }
}

void RedisTerminalState::run_writer() {
  name_this_thread("vigil-term-wr");
  redisContext* c = nullptr;
  auto backoff = std::chrono::milliseconds(50);
  std::vector<Batch> taken;
  for (;;) {
    taken.clear();
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
      if (backlog_ == 0) continue;
      taken.swap(queued_);
      busy_ = true;
    }
    for (Batch& b : taken) fold(b);
    std::string why;
    if (c == nullptr) {
      c = open_connection(options_.address, options_.command_timeout, why);
      if (c != nullptr) count_sha_ = load_script(c, kCountScript, why);
      if (c != nullptr && count_sha_.empty()) {
        redisFree(c);
        c = nullptr;
      }
    }
    const bool ok = c != nullptr && write(c, why);
    size_t left = 0;
    for (const auto& [partition, r] : ranges_) left += r.records.size();
    if (left == 0) {  // everything written: the pairs start afresh
      pairs_.clear();
      pair_index_.clear();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      size_t queued = 0;
      for (const Batch& b : queued_) queued += b.records.size();
      backlog_ = left + queued;
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
                 options_.key_prefix + "fraud:", r.terminal, std::to_string(r.tx_day),
                 std::to_string(r.report_day), ttl},
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
  auto fresh = std::make_shared<features::TerminalCopy>(w, first, last);
  // A day's transaction hash is read again only when its generation changed (every write
  // to it changes it): each refresh reads the generations, then, on the same connection, the
  // hashes of the days written since the last one (the newest, as a rule) and the frauds of
  // every day (reports come weeks late; they are few).
  std::string why;
  std::map<int64_t, std::string> generation;
  redisContext* c = open_connection(options_.address, options_.command_timeout, why);
  if (c != nullptr &&
      append(c, {"HGETALL", options_.key_prefix + "gen"}, why, commands_, bytes_sent_)) {
    const ReplyPtr reply = next_reply(c, why);
    if (why.empty() && reply->type == REDIS_REPLY_ARRAY) {
      for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply* f = reply->element[i];
        const redisReply* v = reply->element[i + 1];
        int64_t day = 0;
        if (parse_int(f->str, f->len, day)) generation[day].assign(v->str, v->len);
      }
    }
  }
  kept_tx_.erase(kept_tx_.begin(), kept_tx_.lower_bound(first));
  if (kept_names_.size() > 2 * kept_names_compacted_ + 1024) compact_kept_names();
  std::vector<int64_t> tx_days;
  for (int64_t d = first; d <= last; ++d) {
    auto it = kept_tx_.find(d);
    auto gen = generation.find(d);
    const std::string now_gen = gen == generation.end() ? std::string() : gen->second;
    if (it == kept_tx_.end() || it->second.generation != now_gen) tx_days.push_back(d);
  }
  if (c != nullptr && !why.empty()) {  // the generations were not read: nothing more
    redisFree(c);
    c = nullptr;
  }
  if (c != nullptr) {
    for (int64_t d : tx_days) {
      if (!append(c, {"HGETALL", tx_key(d)}, why, commands_, bytes_sent_)) break;
    }
    for (int64_t d = first; d <= last && why.empty(); ++d) {
      if (!append(c, {"HGETALL", fraud_key(d)}, why, commands_, bytes_sent_)) break;
    }
    uint64_t bytes = 0;
    auto read_hash = [&](const std::function<void(std::string_view, int64_t)>& each) {
      const ReplyPtr reply = next_reply(c, why);
      if (!why.empty()) return;
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0) {
        why = "unexpected reply to HGETALL";
        return;
      }
      for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply* field = reply->element[i];
        const redisReply* value = reply->element[i + 1];
        bytes += field->len + value->len;
        int64_t n = 0;
        if (parse_int(value->str, value->len, n) && n > 0) {
          each(std::string_view(field->str, field->len), n);
        }
      }
    };
    for (int64_t d : tx_days) {
      if (!why.empty()) break;
      std::vector<std::pair<uint32_t, uint32_t>> counts;
      read_hash([&](std::string_view terminal, int64_t n) {
        counts.emplace_back(kept_row(terminal), static_cast<uint32_t>(n));
      });
      if (why.empty()) {
        auto gen = generation.find(d);
        kept_tx_[d] = {gen == generation.end() ? std::string() : gen->second, std::move(counts)};
      }
    }
    fresh->name_rows(kept_names_);
    for (const auto& [d, kept] : kept_tx_) {
      if (d > last) continue;
      for (const auto& [row, n] : kept.counts) fresh->add_transactions_at(row, d, n);
    }
    for (int64_t d = first; d <= last && why.empty(); ++d) {
      read_hash([&](std::string_view f, int64_t n) {
        const size_t colon = f.rfind(':');
        int64_t report_day = 0;
        if (colon != std::string_view::npos &&
            parse_int(f.data() + colon + 1, f.size() - colon - 1, report_day)) {
          fresh->add_frauds(f.substr(0, colon), d, report_day, static_cast<int32_t>(n));
        }
      });
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
  fresh->seal();
  copy_terminals_.set(static_cast<double>(fresh->terminals()));
  {
    std::lock_guard<std::mutex> lock(copy_mutex_);
    copy_ = std::move(fresh);
  }
  version_.fetch_add(1, std::memory_order_acq_rel);
  refreshes_ok_.inc();
  return true;
}

uint32_t RedisTerminalState::kept_row(std::string_view terminal) {
  auto [it, added] =
      kept_rows_.try_emplace(std::string(terminal), static_cast<uint32_t>(kept_names_.size()));
  if (added) kept_names_.push_back(it->first);
  return it->second;
}

void RedisTerminalState::compact_kept_names() {
  constexpr uint32_t kUnused = UINT32_MAX;
  std::vector<uint32_t> to(kept_names_.size(), kUnused);
  std::vector<std::string> names;
  for (auto& [day, kept] : kept_tx_) {
    for (auto& [row, n] : kept.counts) {
      if (to[row] == kUnused) {
        to[row] = static_cast<uint32_t>(names.size());
        names.push_back(std::move(kept_names_[row]));
      }
      row = to[row];
    }
  }
  kept_names_ = std::move(names);
  kept_rows_.clear();
  kept_rows_.reserve(kept_names_.size());
  for (size_t i = 0; i < kept_names_.size(); ++i) {
    kept_rows_.emplace(kept_names_[i], static_cast<uint32_t>(i));
  }
  kept_names_compacted_ = kept_names_.size();
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

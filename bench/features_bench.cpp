// features_bench: the cost of velocity features, per event and per customer.
//
// Customers at the transaction simulator's rates (each a mean of U(0, 4) transactions a day,
// amounts ~ N(m, m/2) with m ~ U(5, 100)) fill one partition's EntityWindows with
// --warm-days of history, in event-time order; then one more day is timed. Prints:
//   - ns per event over the timed day (the issue-22 target: <= 1 us on average);
//   - resident memory per active customer (target: <= 1 KB), from /proc/self/statm;
//   - snapshot size and the time to take and to restore it;
//   - with --redis-url (a redis-server to fill, e.g. `redis-server --port 6390 --save ''
//     --appendonly no`): the snapshot written to Redis through the service's store, then the
//     time the service takes to be ready on assignment: loading it (StreamFeatures::assign)
//     and replaying the records after it (the timed day, as JSON, through the decoder).
// A figure, not a test: compare runs on the same machine.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "features/entity_windows.h"
#include "features/stream_features.h"
#include "sinks/redis_snapshot_store.h"

namespace {

using vigil::features::EntityWindows;
using vigil::features::FeatureSpec;
using vigil::features::Transaction;
using Clock = std::chrono::steady_clock;

constexpr int64_t kDayMs = 86'400'000;
constexpr int64_t kStartMs = 1'735'689'600'000;  // 2025-01-01T00:00:00Z

double resident_mib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * 4096.0 / (1024.0 * 1024.0);
}

struct Customer {
  double mean_amount;
  double mean_per_day;
};

struct Event {
  int64_t time_ms;
  uint32_t customer;
  double amount;
};

// One day of transactions of every customer, in event-time order.
std::vector<Event> one_day(std::mt19937_64& rng, const std::vector<Customer>& customers,
                           int64_t day) {
  std::vector<Event> out;
  std::uniform_int_distribution<int64_t> at(0, kDayMs - 1);
  for (uint32_t c = 0; c < customers.size(); ++c) {
    std::poisson_distribution<int> n(customers[c].mean_per_day);
    std::normal_distribution<double> amount(customers[c].mean_amount, customers[c].mean_amount / 2);
    for (int k = n(rng); k > 0; --k) {
      double a = amount(rng);
      if (a < 0) a = std::uniform_real_distribution<double>(0, customers[c].mean_amount * 2)(rng);
      out.push_back({kStartMs + day * kDayMs + at(rng), c, std::round(a * 100) / 100});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Event& a, const Event& b) { return a.time_ms < b.time_ms; });
  return out;
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// The snapshot of `windows` written to
// Redis, then loaded by a StreamFeatures as on an assignment, and `timed` replayed after it.
bool ready_after_assignment(const std::string& url, const FeatureSpec& spec,
                            const EntityWindows& windows, const std::vector<Event>& timed,
                            const std::vector<std::string>& ids) {
  auto address = vigil::sinks::parse_redis_url(url);
  if (!address) {
    std::fprintf(stderr, "features_bench: %s\n", address.error().c_str());
    return false;
  }
  vigil::metrics::Registry registry;
  vigil::sinks::RedisSnapshotStore::Options o;
  o.address = address.value();
  o.command_timeout = std::chrono::milliseconds(10000);
  o.key_prefix = "features_bench:";
  o.max_pending_bytes = 64u << 20;
  vigil::sinks::RedisSnapshotStore store(o, registry);
  // The records before offset `base` are in the snapshot; the timed day follows it (its
  // events were observed already by `windows`: replaying them again only costs the same).
  const int64_t base = 1'000'000'000;
  const auto w0 = Clock::now();
  size_t bytes = 0;
  for (uint32_t k = 0; k < EntityWindows::kShards; ++k) {
    std::string chunk = windows.snapshot_shard(k, base);
    bytes += chunk.size();
    while (!store.has_room()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!store.save(0, {k, 0}, std::move(chunk))) return false;
  }
  store.flush();
  const double write_ms = ms_since(w0);
  std::vector<std::string> json;
  json.reserve(timed.size());
  for (size_t i = 0; i < timed.size(); ++i) {
    const Event& e = timed[i];
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "{\"transaction_id\":\"T%zu\",\"customer_id\":\"%s\",\"terminal_id\":\"X1\","
                  "\"amount\":%.2f,\"event_time_ms\":%lld}",
                  i, ids[e.customer].c_str(), e.amount, static_cast<long long>(e.time_ms));
    json.emplace_back(buf);
  }
  vigil::features::StreamFeatures features(spec, 4096, registry, &store);
  const auto l0 = Clock::now();
  const int64_t from =
      features.assign(0, 0, base + static_cast<int64_t>(timed.size()), /*log_complete=*/true);
  const double load_ms = ms_since(l0);
  if (from != base) {
    std::fprintf(stderr, "features_bench: snapshot not loaded: %s\n",
                 features.restore_note(0).c_str());
    return false;
  }
  // As KafkaSource::handle replays a batch: each record's key (the customer id) hinted
  // kPrefetchAhead records ahead.
  constexpr size_t kAhead = vigil::features::StreamFeatures::kPrefetchAhead;
  const auto p0 = Clock::now();
  for (size_t i = 0; i < std::min(kAhead, json.size()); ++i) {
    features.prefetch(0, ids[timed[i].customer]);
  }
  for (size_t i = 0; i < json.size(); ++i) {
    if (i + kAhead < json.size()) features.prefetch(0, ids[timed[i + kAhead].customer]);
    features.replay(0, base + static_cast<int64_t>(i), json[i], INT64_MIN);
  }
  const double replay_ms = ms_since(p0);
  const double per_record_us = replay_ms * 1000.0 / static_cast<double>(json.size());
  std::printf(
      "  redis: snapshot (%.1f MiB) written in %.0f ms; on assignment loaded and restored in "
      "%.0f ms; replay %.2f us per record (%zu records in %.0f ms)\n",
      static_cast<double>(bytes) / (1024.0 * 1024.0), write_ms, load_ms, per_record_us, json.size(),
      replay_ms);
  // Records after the snapshot's chunks: at most one interval (30 s) behind plus the round.
  // The first rate is the one these customers transact at (the simulator's: one partition
  // holding them all); the others are as if the partition were far busier.
  const double own_rate = static_cast<double>(timed.size()) / 86'400.0;
  for (double rate : {own_rate, 10'000.0, 50'000.0}) {
    const double ready_ms = load_ms + per_record_us * rate * 30 / 1000.0;
    std::printf(
        "  ready after assignment at %.0f ev/s%s with the default 30 s interval: about %.1f s "
        "(target <= 5 s)\n",
        rate, rate == own_rate ? " (these customers' own rate)" : "", ready_ms / 1000.0);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"velocity-feature cost: ns per event, memory per customer, snapshot cost"};
  size_t n_customers = 1'000'000;
  int warm_days = 31;
  uint64_t seed = 42;
  app.add_option("--customers", n_customers, "customers in the partition")->capture_default_str();
  app.add_option("--warm-days", warm_days, "days of history before the timed day")
      ->capture_default_str();
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  bool prefetch = true;
  app.add_flag("!--no-prefetch", prefetch,
               "observe each transaction without hinting the ones ahead (see "
               "EntityWindows::prefetch)");
  std::string redis_url;
  app.add_option("--redis-url", redis_url,
                 "a Redis to write the snapshot to and load it from (its contents are replaced)");
  CLI11_PARSE(app, argc, argv);

  std::mt19937_64 rng(seed);
  std::vector<Customer> customers(n_customers);
  std::uniform_real_distribution<double> mean_amount(5, 100), per_day(0, 4);
  for (auto& c : customers) c = {mean_amount(rng), per_day(rng)};
  std::vector<std::string> ids(n_customers);
  for (size_t c = 0; c < n_customers; ++c) ids[c] = "C" + std::to_string(10'000'000 + c);

  FeatureSpec spec;  // the handbook's windows: 1, 7, 30 days; one day of lateness
  spec.max_entities_per_partition = n_customers * 2;
  const double rss_before = resident_mib();
  EntityWindows windows(spec);
  std::vector<double> out(windows.width());
  size_t warm_events = 0;
  for (int d = 0; d < warm_days; ++d) {
    const auto day = one_day(rng, customers, d);
    for (const auto& e : day) {
      windows.observe(Transaction{ids[e.customer], e.time_ms, e.amount}, out.data());
    }
    warm_events += day.size();
  }
  const double rss_warm = resident_mib();
  const auto f_warm = windows.figures();
  const auto timed = one_day(rng, customers, warm_days);

  // The ids of the timed day in log order, as the decoder hands them over (from the record
  // just read, not from a table of a million strings across memory).
  std::string timed_ids;
  std::vector<std::pair<size_t, size_t>> at;  // offset, length in timed_ids
  for (const auto& e : timed) {
    at.emplace_back(timed_ids.size(), ids[e.customer].size());
    timed_ids += ids[e.customer];
  }
  auto id_of = [&](size_t i) {
    return std::string_view(timed_ids.data() + at[i].first, at[i].second);
  };
  double checksum = 0;
  const auto t0 = Clock::now();
  // As the consumer does with each batch of records: the id kPrefetchAhead records ahead is
  // hinted before each is observed (--no-prefetch: observed alone).
  const size_t ahead = prefetch ? EntityWindows::kPrefetchAhead : 0;
  for (size_t i = 0; i < std::min(ahead, timed.size()); ++i) windows.prefetch(id_of(i));
  for (size_t i = 0; i < timed.size(); ++i) {
    if (ahead > 0 && i + ahead < timed.size()) windows.prefetch(id_of(i + ahead));
    windows.observe(Transaction{id_of(i), timed[i].time_ms, timed[i].amount}, out.data());
    checksum += out[3];
  }
  const double ns =
      std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / timed.size();

  const auto f = windows.figures();
  // A snapshot is taken a shard at a time, between two records: the longest of those pauses
  // is what a record can wait behind it.
  // The service frees each chunk once written: the first round (not timed) warms the allocator
  // the same way, the second is timed, the third kept to restore from.
  for (uint32_t k = 0; k < EntityWindows::kShards; ++k) (void)windows.snapshot_shard(k, 0);
  size_t snap_bytes = 0;
  double snap_ms = 0, longest_chunk_ms = 0;
  for (uint32_t k = 0; k < EntityWindows::kShards; ++k) {
    const auto s0 = Clock::now();
    const std::string chunk = windows.snapshot_shard(k, 0);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - s0).count();
    snap_ms += ms;
    longest_chunk_ms = std::max(longest_chunk_ms, ms);
    snap_bytes += chunk.size();
  }
  std::vector<std::string> chunks;
  for (uint32_t k = 0; k < EntityWindows::kShards; ++k)
    chunks.push_back(windows.snapshot_shard(k, 0));
  EntityWindows restored(spec);
  const auto r0 = Clock::now();
  const auto st = restored.restore({chunks.begin(), chunks.end()});
  const double restore_ms = std::chrono::duration<double, std::milli>(Clock::now() - r0).count();

  const char* tunables = std::getenv("GLIBC_TUNABLES");
  std::printf(
      "features_bench: %zu customers, %d warm days (%zu events), timed day %zu events; "
      "GLIBC_TUNABLES=%s\n",
      n_customers, warm_days, warm_events, timed.size(), tunables ? tunables : "(unset)");
  std::printf("  per event: %.0f ns (target <= 1000 ns), %s   [checksum %.0f]\n", ns,
              prefetch ? "ids hinted ahead as the consumer does" : "no hints (--no-prefetch)",
              checksum);
  std::printf("  state: %zu entities, %zu events kept (%.1f per entity)\n", f.entities, f.events,
              static_cast<double>(f.events) / static_cast<double>(f.entities));
  const double per_customer = (rss_warm - rss_before) * 1024.0 * 1024.0 / f_warm.entities;
  std::printf(
      "  memory: %.0f MiB resident for %zu entities = %.0f bytes per active customer "
      "(target <= 1024), ids held by the bench excluded\n",
      rss_warm - rss_before, f_warm.entities, per_customer);
  std::printf(
      "  snapshot: %.1f MiB in %u chunks, taken in %.0f ms in all (longest chunk %.2f ms), "
      "restored in %.0f ms (%s)\n",
      static_cast<double>(snap_bytes) / (1024.0 * 1024.0), EntityWindows::kShards, snap_ms,
      longest_chunk_ms, restore_ms, st.ok() ? "ok" : st.message().c_str());
  if (!st.ok() || redis_url.empty()) return st.ok() ? 0 : 1;
  return ready_after_assignment(redis_url, spec, windows, timed, ids) ? 0 : 1;
}

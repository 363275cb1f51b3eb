#include "support/velocity_data.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <random>

namespace vigil::testing {

namespace {
constexpr int64_t kDayMs = 86'400'000;
double f32(double a) {
  return static_cast<double>(static_cast<float>(a));
}
}  // namespace

std::vector<RawTx> make_raw_transactions(size_t n, size_t customers, int days, uint64_t seed,
                                         const std::string& prefix) {
  std::mt19937_64 rng(seed);
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  int64_t t = now - (days + 2) * kDayMs;
  const int64_t gap = days * kDayMs / static_cast<int64_t>(n);
  std::uniform_int_distribution<int64_t> step(0, 2 * gap);
  std::uniform_int_distribution<int64_t> back(0, 6 * 3600 * 1000);
  std::uniform_int_distribution<size_t> who(0, customers - 1);
  std::uniform_real_distribution<double> amount(1.0, 300.0);
  std::vector<RawTx> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    t += step(rng);
    const int64_t at = i % 10 == 3 ? t - back(rng) : t;
    out.push_back({prefix + std::to_string(i), "C" + std::to_string(who(rng)), at,
                   std::round(amount(rng) * 100) / 100, ""});
  }
  return out;
}

void assign_terminals(std::vector<RawTx>& txs, size_t terminals) {
  for (RawTx& t : txs) {
    t.terminal =
        "M" + std::to_string(std::hash<std::string>{}(t.id) % std::max<size_t>(terminals, 1));
  }
}

std::string raw_json(const RawTx& t) {
  char amount[32];
  std::snprintf(amount, sizeof amount, "%.2f", t.amount);
  return "{\"transaction_id\":\"" + t.id + "\",\"customer_id\":\"" + t.customer +
         "\",\"terminal_id\":\"" + (t.terminal.empty() ? std::string("M1") : t.terminal) +
         "\",\"amount\":" + amount + ",\"event_time_ms\":" + std::to_string(t.time_ms) + "}";
}

std::vector<std::pair<std::string, std::string>> keyed_by_customer(const std::vector<RawTx>& txs,
                                                                   size_t from, size_t to) {
  std::vector<std::pair<std::string, std::string>> recs;
  for (size_t i = from; i < to && i < txs.size(); ++i) {
    recs.emplace_back(txs[i].customer, raw_json(txs[i]));
  }
  return recs;
}

std::vector<std::vector<double>> reference_features(const std::vector<RawTx>& log) {
  std::map<std::string, std::vector<size_t>> by_customer;  // log positions read so far
  std::vector<std::vector<double>> out(log.size());
  for (size_t i = 0; i < log.size(); ++i) {
    const RawTx& tx = log[i];
    auto& seen = by_customer[tx.customer];
    seen.push_back(i);
    const int64_t day = tx.time_ms >= 0 ? tx.time_ms / kDayMs : (tx.time_ms - kDayMs + 1) / kDayMs;
    const int64_t weekday = ((day + 3) % 7 + 7) % 7;  // 1970-01-01 was a Thursday (3)
    const int64_t in_day = tx.time_ms - day * kDayMs;
    std::vector<double>& f = out[i];
    f = {f32(tx.amount), weekday >= 5 ? 1.0 : 0.0, in_day < 6 * 3600 * 1000 ? 1.0 : 0.0};
    for (int d : {1, 7, 30}) {
      double n = 0, sum = 0;
      for (size_t k : seen) {
        if (log[k].time_ms > tx.time_ms - d * kDayMs && log[k].time_ms <= tx.time_ms) {
          ++n;
          sum += f32(log[k].amount);
        }
      }
      f.push_back(n);
      f.push_back(sum / n);
    }
  }
  return out;
}

size_t check_feature_records(const std::vector<TestRecord>& records, const std::vector<RawTx>& log,
                             const std::vector<std::string>& names, const std::string& spec_hash,
                             double* worst) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < log.size(); ++i) index[log[i].id] = i;
  const auto want_all = reference_features(log);
  simdjson::dom::parser parser;
  size_t checked = 0, failures = 0;
  double worst_err = 0;
  auto fail = [&](const std::string& what) {
    if (++failures <= 5) ADD_FAILURE() << what;
  };
  for (const auto& r : records) {
    simdjson::dom::element doc;
    if (parser.parse(r.value).get(doc)) {
      fail("not JSON: " + r.value);
      continue;
    }
    std::string_view id, hash, history;
    if (doc["transaction_id"].get(id)) continue;
    auto it = index.find(std::string(id));
    if (it == index.end()) continue;
    if (doc["feature_spec"].get(hash) || hash != spec_hash) fail("spec hash in " + r.value);
    if (doc["history"].get(history) || history != "complete") fail("history in " + r.value);
    const auto& want = want_all[it->second];
    for (size_t f = 0; f < names.size() && f < want.size(); ++f) {
      double got = 0;
      if (doc["features"][names[f]].get(got)) {
        fail(std::string(id) + ": no feature " + names[f]);
        continue;
      }
      const double err = std::fabs(got - want[f]) / std::max(std::fabs(want[f]), 1e-12);
      worst_err = std::max(worst_err, err);
      if (err > 1e-6) {
        fail(std::string(id) + " " + names[f] + " = " + std::to_string(got) + ", reference " +
             std::to_string(want[f]));
      }
    }
    ++checked;
  }
  if (worst != nullptr) *worst = worst_err;
  return checked;
}

}  // namespace vigil::testing

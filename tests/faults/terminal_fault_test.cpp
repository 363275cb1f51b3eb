// Terminal risk end to end with two vigil processes serving fraud_terminal: generated
// transactions (tools/simulate_transactions.py) and their fraud reports through Kafka, day by
// day (a day's transactions, then the reports made that day, then one refresh interval), with
// one instance killed with kill -9 mid-day and a third started in its place. Every score
// record, the first emission and the ones scored again alike, carries the 15 features an
// independent Python computation gives (tests/faults/terminal_reference.py), and Redis holds
// each transaction exactly once: nothing the killed instance wrote is counted twice.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "faults/fault_fixture.h"
#include "features/feature_spec.h"
#include "kafka/embedded_cluster.h"
#include "support/redis_server.h"
#include "support/wait.h"

namespace vigil::faults {
namespace {

constexpr int kDays = 40;
constexpr int kKillDay = 22;
constexpr int kPartitions = 4;
constexpr int64_t kDayMs = 86'400'000;

struct Event {
  std::string id, customer, json;
  int64_t day = 0;
};

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// The expected features of each transaction id, from the reference's CSV.
std::map<std::string, std::vector<double>> read_expected(const std::string& path) {
  std::map<std::string, std::vector<double>> out;
  for (const std::string& line : read_lines(path)) {
    std::stringstream s(line);
    std::string id, cell;
    std::getline(s, id, ',');
    auto& row = out[id];
    while (std::getline(s, cell, ',')) row.push_back(std::stod(cell));
  }
  return out;
}

class TerminalFaultTest : public FaultTest {
 protected:
  // Waits until every live vigil has read the shared state twice more: a whole refresh began
  // after what was written before this call.
  void wait_for_refresh(const std::vector<VigilProcess*>& vigils) {
    const std::string series = "vigil_features_terminal_refreshes_total{outcome=\"ok\"}";
    for (VigilProcess* v : vigils) {
      const double before = v->metric_or_zero(series);
      ASSERT_TRUE(testing::wait_until([&] { return v->metric_or_zero(series) >= before + 2; },
                                      milliseconds(10000)))
          << v->log_tail();
    }
  }
};

TEST_F(TerminalFaultTest, TwoInstancesDayByDayWithAKillNineScoreEveryTransactionWithTheReference) {
  // Data: 300 customers, 1,000 terminals (about 8 within each customer's reach), 40 days.
  const std::string events_path = dir_ + "/events.jsonl", reports_path = dir_ + "/reports.jsonl";
  const std::string expected_path = dir_ + "/expected.csv";
  const std::string src = VIGIL_SOURCE_DIR;
  const std::string simulate = "python3 " + src +
                               "/tools/simulate_transactions.py --customers 300 --terminals 1000 "
                               "--days " +
                               std::to_string(kDays) + " --seed 11 --out " + events_path +
                               " --reports " + reports_path + " 2>/dev/null";
  ASSERT_EQ(std::system(simulate.c_str()), 0) << simulate;
  const std::string reference = "python3 " + src + "/tests/faults/terminal_reference.py " +
                                events_path + " " + reports_path + " " + expected_path;
  ASSERT_EQ(std::system(reference.c_str()), 0) << reference;
  const auto expected = read_expected(expected_path);

  std::vector<Event> events;
  int64_t first_day = INT64_MAX;
  for (const std::string& line : read_lines(events_path)) {
    Event e;
    e.json = line;
    e.id = testing::json_string(line, "transaction_id");
    e.customer = testing::json_string(line, "customer_id");
    e.day = static_cast<int64_t>(testing::json_number(line, "event_time_ms")) / kDayMs;
    first_day = std::min(first_day, e.day);
    events.push_back(std::move(e));
  }
  std::map<int64_t, Records> reports_by_day;
  size_t frauds = 0;
  for (const std::string& line : read_lines(reports_path)) {
    const auto day = static_cast<int64_t>(testing::json_number(line, "reported_at_ms")) / kDayMs;
    reports_by_day[day].emplace_back(testing::json_string(line, "transaction_id"), line);
    ++frauds;
  }
  ASSERT_EQ(expected.size(), events.size());
  ASSERT_GT(frauds, 50u);

  auto spec = features::load_feature_spec(src + "/models/fraud_terminal/features.yaml");
  ASSERT_TRUE(spec.ok()) << spec.error();
  const auto names = spec->output_names();
  ASSERT_EQ(names.size(), 15u);

  auto cluster = kafka::EmbeddedCluster::start(3, {{"transactions", kPartitions},
                                                   {"scores", kPartitions},
                                                   {"transactions.dlq", kPartitions},
                                                   {"fraud.reports", kPartitions}});
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  const std::string bootstrap = (*cluster)->bootstrap();
  auto redis = testing::RedisServer::Start();
  ASSERT_TRUE(redis.ok()) << redis.error();
  VigilOptions options;
  options.bootstrap = bootstrap;
  options.redis_url = (*redis)->url();
  options.model_name = "fraud_terminal";
  options.extra_flags = {"--features.snapshot.interval_s=1", "--features.shared.refresh_ms=200"};

  auto a = start_vigil("a", options);
  auto b = start_vigil("b", options);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  for (VigilProcess* v : {a.get(), b.get()}) {
    ASSERT_TRUE(testing::wait_until([&] { return v->ready(); }, milliseconds(60000)))
        << v->log_tail();
  }
  std::unique_ptr<VigilProcess> c;  // started in place of the killed one
  std::vector<VigilProcess*> live = {a.get(), b.get()};
  TopicWatcher scores_seen(bootstrap, "scores");
  size_t produced = 0, reports_produced = 0;
  Records inputs;
  for (int64_t day = first_day; day < first_day + kDays; ++day) {
    Records today;
    for (const Event& e : events) {
      if (e.day == day) today.emplace_back(e.customer, e.json);
      if (e.day == day) inputs.emplace_back(e.id, e.id);
    }
    if (day == first_day + kKillDay) {
      // Half the day's transactions, then kill -9 of b once it has scored some of them.
      const size_t half = today.size() / 2;
      const double before = b->scores_delivered();
      ASSERT_TRUE(testing::produce_all(bootstrap, "transactions",
                                       Records(today.begin(), today.begin() + half))
                      .ok());
      ASSERT_TRUE(
          testing::wait_until([&] { return b->scores_delivered() > before; }, milliseconds(30000)))
          << b->log_tail();
      const testing::ExitStatus st = b->process().kill();
      EXPECT_EQ(st.signal, SIGKILL) << st.to_string();
      c = start_vigil("c", options);
      ASSERT_NE(c, nullptr);
      live = {a.get(), c.get()};
      today.erase(today.begin(), today.begin() + half);
      produced += half;
    }
    ASSERT_TRUE(testing::produce_all(bootstrap, "transactions", today).ok());
    produced += today.size();
    ASSERT_TRUE(
        scores_seen.wait_for_keys([&](size_t k) { return k >= produced; }, milliseconds(120000)))
        << scores_seen.distinct_keys() << " of " << produced << " scored by day " << day << "; a:\n"
        << a->log_tail() << "\n"
        << live.back()->log_tail();
    auto it = reports_by_day.find(day);
    if (it != reports_by_day.end()) {
      ASSERT_TRUE(testing::produce_all(bootstrap, "fraud.reports", it->second).ok());
      reports_produced += it->second.size();
      ASSERT_TRUE(testing::wait_until(
          [&] {
            return testing::committed_sum(bootstrap, "vigil.reports", "fraud.reports",
                                          kPartitions) >= static_cast<int64_t>(reports_produced);
          },
          milliseconds(60000)))
          << "reports of day " << day << " not applied; a:\n"
          << a->log_tail();
    }
    wait_for_refresh(live);
    if (HasFatalFailure()) return;
  }
  const double read_through = a->metric_or_zero("vigil_features_terminal_read_through_total");
  const double stale = a->metric_or_zero("vigil_features_terminal_lookups_total{copy=\"stale\"}") +
                       c->metric_or_zero("vigil_features_terminal_lookups_total{copy=\"stale\"}");
  stop_all(live);

  // Every score record, repeats included, against the reference.
  auto scores = read_all(bootstrap, "scores");
  ASSERT_TRUE(scores.ok()) << scores.error();
  simdjson::dom::parser parser;
  size_t checked = 0, failures = 0;
  double worst = 0;
  for (const auto& r : *scores) {
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(r.value).get(doc), simdjson::SUCCESS) << r.value;
    std::string_view id, history, hash;
    ASSERT_EQ(doc["transaction_id"].get(id), simdjson::SUCCESS) << r.value;
    auto want = expected.find(std::string(id));
    ASSERT_NE(want, expected.end()) << r.value;
    EXPECT_TRUE(doc["history"].get(history) == simdjson::SUCCESS && history == "complete")
        << r.value;
    EXPECT_TRUE(doc["feature_spec"].get(hash) == simdjson::SUCCESS && hash == spec->hash())
        << r.value;
    for (size_t f = 0; f < names.size(); ++f) {
      double got = 0;
      ASSERT_EQ(doc["features"][names[f]].get(got), simdjson::SUCCESS) << names[f] << r.value;
      const double w = want->second[f];
      const double err = std::fabs(got - w) / std::max(std::fabs(w), 1e-12);
      worst = std::max(worst, err);
      if (err > 1e-6 && ++failures <= 5) {
        ADD_FAILURE() << id << " " << names[f] << " = " << got << ", reference " << w;
      }
    }
    ++checked;
  }
  EXPECT_EQ(failures, 0u);

  // Redis holds every transaction once.
  auto client = testing::RedisClient::Connect(**redis);
  ASSERT_TRUE(client.ok()) << client.error();
  auto keys = client->keys("vigil:term:vigil:transactions:tx:*");
  ASSERT_TRUE(keys.ok()) << keys.error();
  int64_t counted = 0;
  for (const std::string& k : *keys) {
    auto fields = client->hgetall(k);
    ASSERT_TRUE(fields.ok()) << fields.error();
    for (size_t i = 1; i < fields->size(); i += 2) counted += std::stoll((*fields)[i]);
  }
  EXPECT_EQ(counted, static_cast<int64_t>(events.size()))
      << "transactions counted in Redis, against the transactions produced";

  Tally t = tally("terminal risk, two instances, kill -9", bootstrap, inputs);
  expect_every_input_scored(t, events.size());
  std::printf(
      "[ faults ] terminal risk: %zu transactions over %d days, %zu fraud reports, kill -9 on "
      "day %d; %zu score records (%zu scored again) all equal to the Python reference "
      "(worst relative error %.2e); Redis counts %lld transactions; a read through %.0f "
      "time(s), stale lookups %.0f\n",
      events.size(), kDays, frauds, kKillDay, checked, t.duplicates, worst,
      static_cast<long long>(counted), read_through, stale);
}

}  // namespace
}  // namespace vigil::faults

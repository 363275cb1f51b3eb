#include "faults/fault_fixture.h"

#include <librdkafka/rdkafka.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "support/http_client.h"
#include "support/wait.h"

namespace vigil::faults {

namespace {

using steady = std::chrono::steady_clock;

// Plain clients of the fault tests: no property may be refused (test_client aborts).
kafka::Handle fault_client(rd_kafka_type_t type, const std::string& bootstrap,
                           const testing::KafkaProperties& extra) {
  return testing::test_client(type, bootstrap, extra, "fault test kafka client");
}

}  // namespace

std::string vigil_binary() {
  const char* other = std::getenv("VIGIL_FAULTS_VIGIL");
  return other && *other ? other : VIGIL_BINARY;
}
std::string harness_binary() {
  return VIGIL_FAULT_HARNESS;
}

// ---------------------------------------------------------------------------------------------
// VigilProcess

Result<std::unique_ptr<VigilProcess>> VigilProcess::Start(const std::string& name,
                                                          const VigilOptions& o,
                                                          const std::string& dir) {
  using R = Result<std::unique_ptr<VigilProcess>>;
  const std::string port_file = dir + "/" + name + ".port";
  std::error_code ignored;
  std::filesystem::remove(port_file, ignored);
  std::vector<std::string> args = {
      "--model.repository=" + o.model_repository,
      "--model.device=cpu",
      "--kafka.brokers=" + o.bootstrap,
      "--redis.url=" + o.redis_url,
      "--http.port=0",
      "--http.address=127.0.0.1",
      "--http.port_file=" + port_file,
      "--kafka.consumer.session.timeout.ms=6000",
      "--kafka.consumer.heartbeat.interval.ms=500",
      // The mock holds an empty fetch for the whole wait: what the embedded default sets.
      "--kafka.consumer.fetch.wait.max.ms=1",
      "--scoring.workers=1",
  };
  if (!o.model_name.empty()) args.push_back("--model.name=" + o.model_name);
  args.insert(args.end(), o.extra_flags.begin(), o.extra_flags.end());
  testing::ProcessOptions po;
  po.log_path = dir + "/" + name + ".log";
  auto proc = testing::Process::Spawn(vigil_binary(), args, po);
  if (!proc) return R::Error(proc.error());
  std::unique_ptr<VigilProcess> v(new VigilProcess());
  v->name_ = name;
  v->process_ = std::move(proc.value());
  auto port = testing::read_port_file(port_file, milliseconds(60000), v->process_.get());
  if (!port) return R::Error("vigil " + name + ": " + port.error() + "; log:\n" + v->log_tail());
  v->port_ = *port;
  return R(std::move(v));
}

std::pair<int, std::string> VigilProcess::get(const std::string& path, milliseconds timeout) {
  testing::HttpClient client(static_cast<uint16_t>(port_), timeout);
  if (client.connect_error()) return {0, "connect: " + client.connect_error().message()};
  auto res = client.request(boost::beast::http::verb::get, path);
  return {static_cast<int>(res.result_int()), res.body()};
}

std::optional<double> VigilProcess::metric(const std::string& series) {
  auto [status, body] = get("/metrics");
  if (status != 200) return std::nullopt;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
    }
  }
  return std::nullopt;
}

std::optional<testing::ExitStatus> VigilProcess::stop(milliseconds deadline) {
  if (process_->running()) process_->sigterm();
  return process_->wait(deadline);
}

// ---------------------------------------------------------------------------------------------
// Events and producing

Records make_events(const testing::ReferenceData& ref, const std::string& prefix, size_t from,
                    size_t to) {
  Records out;
  out.reserve(to - from);
  for (size_t i = from; i < to; ++i) {
    const std::string id = "tx-" + prefix + std::to_string(i);
    out.emplace_back(id, testing::reference_event(ref, i, id, /*as_object=*/false));
  }
  return out;
}

PacedProducer::PacedProducer(std::string bootstrap, std::string topic, Records records,
                             double per_second, int32_t partition)
    : bootstrap_(std::move(bootstrap)),
      topic_(std::move(topic)),
      records_(std::move(records)),
      per_second_(per_second),
      partition_(partition) {
  thread_ = std::thread([this] { run(); });
}

PacedProducer::~PacedProducer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void PacedProducer::run() {
  kafka::Conf conf = testing::test_conf(bootstrap_,
                                        {{"enable.idempotence", "true"},
                                         {"acks", "all"},
                                         {"linger.ms", "5"},
                                         {"message.timeout.ms", "300000"}},
                                        "paced producer");
  rd_kafka_conf_set_opaque(conf.get(), this);
  rd_kafka_conf_set_dr_msg_cb(conf.get(),
                              [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
                                auto* self = static_cast<PacedProducer*>(opaque);
                                if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                                  self->acked_.fetch_add(1);
                                } else {
                                  if (self->failed_.load() == 0)
                                    self->first_error_ = rd_kafka_err2str(m->err);
                                  self->failed_.fetch_add(1);
                                }
                              });
  kafka::Handle rk = testing::test_client(RD_KAFKA_PRODUCER, std::move(conf), "paced producer");
  const auto start = steady::now();
  size_t next = 0;
  while (next < records_.size() && !stop_) {
    const double elapsed = std::chrono::duration<double>(steady::now() - start).count();
    const size_t due = std::min(records_.size(), static_cast<size_t>(elapsed * per_second_) + 1);
    for (; next < due; ++next) {
      const auto& [k, v] = records_[next];
      const auto e = testing::produce_copy(rk.get(), topic_, k.data(), k.size(), v.data(), v.size(),
                                           10, partition_);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (failed_.load() == 0) first_error_ = rd_kafka_err2str(e);
        failed_.fetch_add(1);
      }
      produced_.store(next + 1);
    }
    rd_kafka_poll(rk.get(), 5);
  }
  while (!stop_ && rd_kafka_outq_len(rk.get()) > 0) rd_kafka_poll(rk.get(), 50);
}

Status PacedProducer::wait_done(milliseconds deadline) {
  const bool done = testing::wait_until(
      [&] { return acked_.load() + failed_.load() >= records_.size(); }, deadline);
  if (failed_.load() > 0) {
    return Status::Error(std::to_string(failed_.load()) +
                         " record(s) not produced: " + first_error_);
  }
  if (!done) {
    return Status::Error("producer: " + std::to_string(acked_.load()) + " of " +
                         std::to_string(records_.size()) + " acknowledged at the deadline");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Reading topics

Result<std::vector<testing::TestRecord>> read_all(const std::string& bootstrap,
                                                  const std::string& topic, milliseconds deadline) {
  using R = Result<std::vector<testing::TestRecord>>;
  kafka::Handle rk = fault_client(RD_KAFKA_CONSUMER, bootstrap,
                                  {{"group.id", "vigil-fault-reader"},
                                   {"enable.auto.commit", "false"},
                                   {"enable.partition.eof", "true"}});
  const int partitions = testing::partition_count_or_zero(rk.get(), topic);
  std::map<int32_t, int64_t> high;  // partitions left to read, up to this offset
  for (int p = 0; p < partitions; ++p) {
    int64_t lo = 0, hi = 0;
    auto e = rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &lo, &hi, 5000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return R::Error("watermarks of " + topic + "[" + std::to_string(p) +
                      "]: " + rd_kafka_err2str(e));
    }
    if (hi > lo) high[p] = hi;
  }
  testing::assign_all(rk.get(), topic, partitions);
  std::vector<testing::TestRecord> out;
  const auto end = steady::now() + deadline;
  while (!high.empty() && steady::now() < end) {
    kafka::Message m(rd_kafka_consumer_poll(rk.get(), 100));
    if (!m) continue;
    auto it = high.find(m->partition);
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && it != high.end() && m->offset < it->second) {
      out.push_back(testing::to_record(m.get()));
      if (m->offset + 1 >= it->second) high.erase(it);
    } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && it != high.end() &&
               m->offset >= it->second) {
      high.erase(it);
    }
  }
  rd_kafka_consumer_close(rk.get());
  rk.reset();
  if (partitions == 0) return R::Error("topic " + topic + " has no partitions (metadata)");
  if (!high.empty()) {
    return R::Error("read_all(" + topic + "): " + std::to_string(high.size()) +
                    " partition(s) not read to their end within the deadline");
  }
  return R(std::move(out));
}

TopicWatcher::TopicWatcher(const std::string& bootstrap, const std::string& topic)
    : rk_(fault_client(RD_KAFKA_CONSUMER, bootstrap,
                       {{"group.id", "vigil-fault-watcher"}, {"enable.auto.commit", "false"}})) {
  testing::assign_all(rk_.get(), topic, testing::partition_count_or_zero(rk_.get(), topic));
}

TopicWatcher::~TopicWatcher() {
  rd_kafka_consumer_close(rk_.get());
}

void TopicWatcher::poll(milliseconds timeout) {
  kafka::Message m(rd_kafka_consumer_poll(rk_.get(), static_cast<int>(timeout.count())));
  while (m) {
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->key) {
      keys_.emplace(static_cast<const char*>(m->key), m->key_len);
    }
    m.reset(rd_kafka_consumer_poll(rk_.get(), 0));
  }
}

bool TopicWatcher::wait_for_keys(const std::function<bool(size_t)>& done, milliseconds deadline) {
  const auto end = steady::now() + deadline;
  while (!done(keys_.size())) {
    if (steady::now() >= end) return false;
    poll(milliseconds(100));
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Tally

std::string Tally::line(const std::string& test) const {
  std::string s = "[ faults ] " + test + ": inputs " + std::to_string(inputs) + " scored " +
                  std::to_string(scored) + " missing " + std::to_string(missing) + " duplicates " +
                  std::to_string(duplicates) + " dlq " + std::to_string(dlq);
  if (unknown) s += " unknown " + std::to_string(unknown);
  return s;
}

Tally count(const Records& inputs, const std::vector<testing::TestRecord>& scores,
            const std::vector<testing::TestRecord>& dlq) {
  std::map<std::string, std::pair<size_t, size_t>> seen;  // id -> {scores, dead letters}
  for (const auto& [id, value] : inputs) seen[id];
  Tally t;
  t.inputs = seen.size();
  for (const auto& r : scores) {
    auto it = seen.find(r.key);
    if (it == seen.end()) {
      ++t.unknown;
    } else {
      ++it->second.first;
    }
  }
  for (const auto& r : dlq) {
    auto it = seen.find(r.key);
    if (it == seen.end()) {
      ++t.unknown;
    } else {
      ++it->second.second;
      ++t.dlq;
    }
  }
  for (const auto& [id, n] : seen) {
    if (n.first > 0) ++t.scored;
    if (n.first + n.second == 0) ++t.missing;
    if (n.first + n.second > 1) t.duplicates += n.first + n.second - 1;
  }
  return t;
}

void expect_every_input_scored(const Tally& tally, size_t inputs) {
  const std::string line = tally.line("tally");
  EXPECT_EQ(tally.inputs, inputs) << line;
  EXPECT_EQ(tally.scored, inputs) << line;
  EXPECT_EQ(tally.missing, 0u) << line;
  EXPECT_EQ(tally.dlq, 0u) << line;
  EXPECT_EQ(tally.unknown, 0u) << line;
}

void report(const std::string& test, const Tally& tally) {
  const std::string line = tally.line(test);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (const char* path = std::getenv("VIGIL_FAULTS_SUMMARY"); path && *path) {
    std::ofstream(path, std::ios::app) << line << "\n";
  }
}

// ---------------------------------------------------------------------------------------------
// FaultTest

void FaultTest::SetUp() {
  auto dir = testing::make_temp_dir("vigil-faults-");
  ASSERT_TRUE(dir.ok()) << dir.error();
  dir_ = *dir;
  ref_ = testing::load_reference();
}

void FaultTest::TearDown() {
  const char* keep = std::getenv("VIGIL_FAULTS_KEEP_LOGS");
  if (HasFailure() || (keep && *keep && std::string(keep) != "0")) {
    std::printf("[ faults ] logs kept in %s\n", dir_.c_str());
    return;
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::unique_ptr<VigilProcess> FaultTest::start_vigil(const std::string& name,
                                                     const VigilOptions& options) {
  auto v = VigilProcess::Start(name, options, dir_);
  EXPECT_TRUE(v.ok()) << v.error();
  return v.ok() ? std::move(v.value()) : nullptr;
}

void FaultTest::stop_all(const std::vector<VigilProcess*>& vigils) {
  for (auto* v : vigils) {
    if (v && v->process().running()) v->process().sigterm();
  }
  for (auto* v : vigils) {
    if (!v) continue;
    auto st = v->process().wait(milliseconds(30000));
    ASSERT_TRUE(st.has_value()) << "vigil " << v->name() << " did not stop within 30 s; log:\n"
                                << v->log_tail();
    EXPECT_TRUE(st->ok()) << "vigil " << v->name() << ": " << st->to_string() << "; log:\n"
                          << v->log_tail();
  }
}

Tally FaultTest::tally(const std::string& test, const std::string& bootstrap, const Records& inputs,
                       const std::string& scores_topic, const std::string& dlq_topic) {
  auto scores = read_all(bootstrap, scores_topic);
  auto dlq = read_all(bootstrap, dlq_topic);
  EXPECT_TRUE(scores.ok()) << scores.error();
  EXPECT_TRUE(dlq.ok()) << dlq.error();
  Tally t = count(inputs, scores.ok() ? *scores : std::vector<testing::TestRecord>{},
                  dlq.ok() ? *dlq : std::vector<testing::TestRecord>{});
  report(test, t);
  return t;
}

}  // namespace vigil::faults

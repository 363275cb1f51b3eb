// stream_bench: the Kafka path end to end on an embedded Kafka (librdkafka's mock cluster,
// 3 brokers, in this process) and a real redis-server, compared in the same run with what a
// user would otherwise have.
//
// Throughput (N events pre-loaded on a 16-partition topic, each consumer reading all of them):
//   raw          a bare librdkafka consumer reading the topic, no work: the ceiling
//   vigil        consume, decode, batch, score (TorchScript), produce to a scores topic and
//                SET ... EX in Redis; events/s from partition assignment to the last score
//                delivered (and written to Redis); once with Redis on, once with it off
//   python       bench/python_consumer.py doing the same job the way a team would write it
//                (confluent-kafka + torch + redis-py; consume 256, one forward, produce,
//                pipelined SET EX, commit per batch), a separate process
//   allocations  C++ heap allocations (operator new) per event in vigil's steady state, all
//                threads (librdkafka's are C mallocs and are not counted, as the target says)
//
// Latency at fixed offered rates (a load producer at librdkafka's default linger.ms=5 stamps
// each event's send time; a reader with fetch.wait.max.ms=1 notes each result's arrival; the
// figure is arrival - send, in microseconds):
//   vigil        the service with its embedded default settings (6 partitions)
//   relay        a zero-work relay: consume -> produce at once, plain librdkafka
//                (fetch.wait.max.ms=1, linger.ms=1): what the broker itself costs
//
// usage: stream_bench [--events 100000] [--rates 10000,50000,100000] [--seconds 4]
//                     [--no-python] [--no-latency]
#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "app/service.h"
#include "common/clock.h"
#include "kafka/embedded_cluster.h"
#include "kafka/kafka_client.h"
#include "scoring/model_repository.h"
#include "scoring/torch_model.h"
#include "support/kafka_test_util.h"
#include "support/redis_server.h"
#include "support/service_config.h"
#include "support/wait.h"

// ---------------------------------------------------------------------------------------------
// Counting operator new (the whole process; read as deltas around a window). GCC sees the
// malloc/free pairs below through inlined std::allocator calls and warns that new and free
// do not match; here they do (every operator new is malloc, every operator delete free).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n ? n : 1);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

using namespace vigil;
using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

namespace {

struct Args {
  size_t events = 100000;
  std::vector<int> rates = {10000, 50000, 100000};
  int seconds = 4;
  bool python = true;
  bool latency = true;
};

// Exits 2 on a usage error (0 after --help), as scripts calling the bench expect.
Args parse(int argc, char** argv) {
  Args a;
  // Integers from 1 (CLI::PositiveNumber would print its bound as a 300-digit double).
  const CLI::Range positive(1, std::numeric_limits<int>::max(), "POSITIVE");
  CLI::App app{
      "stream_bench: vigil's Kafka path end to end on an embedded Kafka, next to a bare "
      "consumer, a zero-work relay and a Python consumer; then latency at fixed rates"};
  app.add_option("--events", a.events, "events pre-loaded for the throughput runs")
      ->check(positive)
      ->capture_default_str();
  app.add_option("--rates", a.rates, "offered rates of the latency runs, events/s (R1,R2,...)")
      ->delimiter(',')
      ->check(positive)
      ->capture_default_str();
  app.add_option("--seconds", a.seconds, "seconds measured per rate, after 1 s of warm-up")
      ->check(positive)
      ->capture_default_str();
  bool no_python = false, no_latency = false;
  app.add_flag("--no-python", no_python, "skip bench/python_consumer.py");
  app.add_flag("--no-latency", no_latency, "skip the latency runs");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e) == 0 ? 0 : 2);
  }
  a.python = !no_python;
  a.latency = !no_latency;
  return a;
}

// Every bench client: plain librdkafka (no vigil settings); a refused property aborts.
constexpr const char* kClient = "stream_bench kafka client";

kafka::Handle make(rd_kafka_type_t type, const std::string& bootstrap,
                   const testing::KafkaProperties& props) {
  return testing::test_client(type, bootstrap, props, kClient);
}

// Relays one consumed record to `topic` (copied; polls `producer` 1 ms while its queue is full).
void relay_one(rd_kafka_t* producer, const std::string& topic, const rd_kafka_message_t* m) {
  testing::produce_copy(producer, topic, m->key, m->key_len, m->payload, m->len, 1);
}

// C++ allocations of one forward pass of the served model at `rows` rows (LibTorch's own
// per-batch bookkeeping), to tell per-batch costs from per-record ones.
double allocations_per_forward(size_t rows) {
  auto info = scoring::load_model_info(std::string(VIGIL_SOURCE_DIR) + "/models", "fraud_mlp", "");
  if (!info) return -1;
  auto model = scoring::load_torch_model(*info, {"cpu", 1, 8});
  if (!model) return -1;
  auto session = (*model)->new_session();
  std::vector<float> in(rows * info->width(), 0.5f), out(rows);
  for (int i = 0; i < 20; ++i) session->score(in.data(), rows, out.data());  // warm up
  const uint64_t a0 = g_allocations.load();
  constexpr int kPasses = 200;
  for (int i = 0; i < kPasses; ++i) session->score(in.data(), rows, out.data());
  return static_cast<double>(g_allocations.load() - a0) / kPasses;
}

// A bare consumer reading `n` records of `topic` from the beginning: the ceiling for vigil.
double raw_consume_rate(const std::string& bootstrap, const std::string& topic, int partitions,
                        size_t n) {
  kafka::Handle rk = make(RD_KAFKA_CONSUMER, bootstrap,
                          {{"group.id", "stream-bench-raw"}, {"fetch.wait.max.ms", "1"}});
  testing::assign_all(rk.get(), topic, partitions, RD_KAFKA_OFFSET_BEGINNING);
  rd_kafka_queue_t* q = rd_kafka_queue_get_consumer(rk.get());
  std::vector<rd_kafka_message_t*> msgs(1000);
  size_t got = 0;
  Steady::time_point t0{};
  const auto deadline = Steady::now() + std::chrono::seconds(60);
  while (got < n && Steady::now() < deadline) {
    ssize_t k = rd_kafka_consume_batch_queue(q, 100, msgs.data(), msgs.size());
    for (ssize_t i = 0; i < k; ++i) {
      if (!msgs[i]->err) {
        if (got == 0) t0 = Steady::now();
        ++got;
      }
      rd_kafka_message_destroy(msgs[i]);
    }
  }
  const double el = std::chrono::duration<double>(Steady::now() - t0).count();
  rd_kafka_queue_destroy(q);
  rd_kafka_consumer_close(rk.get());
  rk.reset();
  if (got < n) {
    std::fprintf(stderr, "raw consumer read only %zu of %zu records (mock retention?)\n", got, n);
    std::exit(1);
  }
  return static_cast<double>(n) / el;
}

// A zero-work relay over the same pre-loaded topic: consume every record, produce it at once
// to `out` (plain librdkafka, linger.ms=1), until every produce is acknowledged. What a
// consume -> produce job costs the broker and the client library alone: vigil's ceiling here.
double relay_rate(const std::string& bootstrap, const std::string& in, const std::string& out,
                  int partitions, size_t n) {
  kafka::Handle consumer =
      make(RD_KAFKA_CONSUMER, bootstrap,
           {{"group.id", "stream-bench-relay-tp"}, {"fetch.wait.max.ms", "1"}});
  std::atomic<size_t> acked{0};
  kafka::Conf pconf = testing::test_conf(bootstrap, {{"linger.ms", "1"}}, kClient);
  rd_kafka_conf_set_opaque(pconf.get(), &acked);
  rd_kafka_conf_set_dr_msg_cb(pconf.get(),
                              [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
                                if (!m->err)
                                  static_cast<std::atomic<size_t>*>(opaque)->fetch_add(1);
                              });
  kafka::Handle producer = testing::test_client(RD_KAFKA_PRODUCER, std::move(pconf), kClient);
  if (!kafka::fetch_metadata(producer.get(), {out}, 5000).ok()) std::exit(1);
  testing::assign_all(consumer.get(), in, partitions, RD_KAFKA_OFFSET_BEGINNING);
  rd_kafka_queue_t* q = rd_kafka_queue_get_consumer(consumer.get());
  std::vector<rd_kafka_message_t*> msgs(1000);
  size_t got = 0;
  Steady::time_point t0{};
  const auto deadline = Steady::now() + std::chrono::seconds(60);
  while (got < n && Steady::now() < deadline) {
    const ssize_t k = rd_kafka_consume_batch_queue(q, 100, msgs.data(), msgs.size());
    for (ssize_t i = 0; i < k; ++i) {
      rd_kafka_message_t* m = msgs[i];
      if (!m->err) {
        if (got++ == 0) t0 = Steady::now();
        relay_one(producer.get(), out, m);
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_poll(producer.get(), 0);
  }
  while (acked.load() < n && Steady::now() < deadline) rd_kafka_poll(producer.get(), 1);
  const double el = std::chrono::duration<double>(Steady::now() - t0).count();
  rd_kafka_queue_destroy(q);
  rd_kafka_consumer_close(consumer.get());
  consumer.reset();
  producer.reset();
  if (acked.load() < n) {
    std::fprintf(stderr, "relay delivered only %zu of %zu\n", acked.load(), n);
    std::exit(1);
  }
  return static_cast<double>(n) / el;
}

config::AppConfig service_config(const std::string& bootstrap, const std::string& group,
                                 const std::string& in, const std::string& out,
                                 const std::string& redis_url) {
  // The embedded default's settings on the bench's own cluster (so that the relay, the
  // reader and vigil all share it).
  config::AppConfig c = testing::service_config(bootstrap, redis_url);
  c.kafka.group_id = group;
  c.kafka.input_topic = in;
  c.kafka.output_topic = out;
  // Redis is best effort: a full write queue skips (and counts) writes rather than slow the
  // Kafka path. The throughput runs size it for the whole run, so that "Redis on" means every
  // score was written to Redis before the clock stops.
  c.redis.queue_capacity = 1 << 20;
  if (const char* w = std::getenv("STREAM_BENCH_WORKERS")) c.scoring.workers = std::atoi(w);
  return c;
}

struct ThroughputResult {
  double events_per_s = 0;         // first record consumed -> last score delivered
  double steady_events_per_s = 0;  // between 25% and 75% delivered
  double allocations_per_event = -1;
  uint64_t batches = 0;
  uint64_t redis_written = 0;
  uint64_t pauses = 0;
};

// One measurement from set-up to tear-down, kept whole so its steps read in order.
ThroughputResult vigil_throughput(const std::string& bootstrap, const std::string& group,
                                  const std::string& out, const std::string& redis_url, size_t n) {
  auto service = app::Service::create(service_config(bootstrap, group, "tp-in", out, redis_url));
  if (!service) {
    std::fprintf(stderr, "%s\n", service.error().c_str());
    std::exit(1);
  }
  auto& svc = **service;
  auto& delivered = svc.registry().counter("vigil_kafka_produced_total", "", {{"kind", "score"}});
  // Redis is best effort: a score it skipped (queue full) has its outcome too, and is counted.
  auto settled = [&]() -> uint64_t { return svc.redis() ? svc.redis()->stats().settled() : n; };
  auto done = [&] { return delivered.value() >= n && settled() >= n; };
  // The clock starts at the first record consumed (as the raw consumer's does), not at the
  // assignment: the group join and offset lookups are not throughput.
  auto& consumed = svc.source()->stats().consumed_;
  testing::wait_until([&] { return svc.source()->has_assignment(); }, milliseconds(30000));
  while (consumed.value() == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
  const auto t0 = Steady::now();
  std::atomic<bool> tracing{std::getenv("STREAM_BENCH_TRACE") != nullptr};
  std::thread tracer([&] {
    while (tracing.load()) {
      std::fprintf(stderr, "t=%6.1f ms consumed %7llu queue %6zu delivered %7llu redis %7llu\n",
                   std::chrono::duration<double, std::milli>(Steady::now() - t0).count(),
                   (unsigned long long)consumed.value(), svc.queue().depth(),
                   (unsigned long long)delivered.value(),
                   (unsigned long long)(svc.redis() ? svc.redis()->stats().written() : 0));
      std::this_thread::sleep_for(milliseconds(20));
      if (done()) break;
    }
  });
  // Allocations and the steady-state rate: between a quarter and three quarters of the events.
  auto wait_delivered = [&](uint64_t k) {
    while (delivered.value() < k) std::this_thread::sleep_for(std::chrono::microseconds(200));
  };
  wait_delivered(n / 4);
  const uint64_t a0 = g_allocations.load();
  const uint64_t d0 = delivered.value();
  const auto s0 = Steady::now();
  wait_delivered(3 * n / 4);
  const uint64_t a1 = g_allocations.load();
  const uint64_t d1 = delivered.value();
  const auto s1 = Steady::now();
  testing::wait_until(done, milliseconds(600000));
  tracing = false;
  tracer.join();
  const double el = std::chrono::duration<double>(Steady::now() - t0).count();
  if (std::getenv("STREAM_BENCH_PHASES")) {  // CLOCK_MONOTONIC, to cut a `perf -k mono` profile
    std::fprintf(stderr, "phase %s: %.6f .. %.6f\n", group.c_str(),
                 std::chrono::duration<double>(t0.time_since_epoch()).count(),
                 std::chrono::duration<double>(Steady::now().time_since_epoch()).count());
  }
  ThroughputResult r;
  r.events_per_s = static_cast<double>(n) / el;
  r.steady_events_per_s =
      static_cast<double>(d1 - d0) / std::chrono::duration<double>(s1 - s0).count();
  r.allocations_per_event =
      d1 > d0 ? static_cast<double>(a1 - a0) / static_cast<double>(d1 - d0) : -1.0;
  r.batches = svc.batcher().stats().batches();
  r.redis_written = svc.redis() ? svc.redis()->stats().written() : 0;
  r.pauses = svc.source()->stats().pauses_.value();
  if (!done()) {
    std::fprintf(stderr, "vigil delivered only %llu of %zu\n",
                 static_cast<unsigned long long>(delivered.value()), n);
    std::exit(1);
  }
  svc.stop();
  return r;
}

// Runs bench/python_consumer.py on the same topic; its events/s, or a negative value.
double python_throughput(const std::string& bootstrap, const std::string& redis_url, size_t n) {
  const std::string cmd = std::string("/usr/bin/python3 ") + VIGIL_SOURCE_DIR +
                          "/bench/python_consumer.py --bootstrap " + bootstrap +
                          " --topic tp-in --output-topic py-scores --group stream-bench-python"
                          " --model-dir " +
                          VIGIL_SOURCE_DIR + "/models/fraud_mlp --redis-url " + redis_url +
                          " --events " + std::to_string(n) + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char line[1024];
  double rate = -1;
  std::string all;
  while (std::fgets(line, sizeof line, p)) {
    all += line;
    if (const char* at = std::strstr(line, "events_per_s=")) rate = std::atof(at + 13);
  }
  if (pclose(p) != 0 || rate <= 0) {
    std::fprintf(stderr, "python consumer failed:\n%s\n", all.c_str());
    return -1;
  }
  return rate;
}

// ---------------------------------------------------------------------------------------------
// Latency

struct Percentiles {
  size_t seen = 0, sent = 0;
  double p50 = 0, p99 = 0, p999 = 0, max = 0;  // microseconds
};

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0.0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()))];
}

// Offers `rate` events/s to `in` for `seconds` (after one second of warm-up) and measures,
// per event, the time from its produce call to the arrival of the record keyed by its id on
// `out`.
// One measurement from set-up to tear-down, kept whole so its steps read in order.
Percentiles measure_latency(const std::string& bootstrap, const std::string& in,
                            const std::string& out, int partitions, int rate, int seconds,
                            const testing::ReferenceData& ref, const std::string& tag) {
  const size_t warm = static_cast<size_t>(rate);  // one second
  const size_t total = warm + static_cast<size_t>(rate) * seconds;
  std::vector<int64_t> sent_ns(total, 0);
  std::vector<int64_t> arrived_ns(total, 0);

  kafka::Handle reader = make(RD_KAFKA_CONSUMER, bootstrap,
                              {{"group.id", "stream-bench-reader"}, {"fetch.wait.max.ms", "1"}});
  testing::assign_all(reader.get(), out, partitions, RD_KAFKA_OFFSET_END);
  rd_kafka_queue_t* rq = rd_kafka_queue_get_consumer(reader.get());
  kafka::Handle producer = make(RD_KAFKA_PRODUCER, bootstrap, {});  // linger.ms default: 5
  if (!kafka::fetch_metadata(producer.get(), {in}, 5000).ok()) std::exit(1);
  // Let the reader reach the end offsets before the first event.
  for (int i = 0; i < 20; ++i) rd_kafka_consume_queue(rq, 10);

  const std::string prefix = tag + "-" + std::to_string(rate) + "-";
  std::atomic<bool> reading{true};
  std::thread reader_thread([&] {
    rd_kafka_message_t* msgs[1000];
    while (reading.load()) {
      const ssize_t k = rd_kafka_consume_batch_queue(rq, 5, msgs, 1000);
      const int64_t now = Steady::now().time_since_epoch().count();
      for (ssize_t i = 0; i < k; ++i) {
        const rd_kafka_message_t* m = msgs[i];
        if (!m->err && m->key_len > prefix.size() &&
            std::memcmp(m->key, prefix.data(), prefix.size()) == 0) {
          const size_t idx =
              std::strtoull(std::string(static_cast<const char*>(m->key) + prefix.size(),
                                        m->key_len - prefix.size())
                                .c_str(),
                            nullptr, 10);
          if (idx < total && arrived_ns[idx] == 0) arrived_ns[idx] = now;
        }
        rd_kafka_message_destroy(msgs[i]);
      }
    }
  });

  // Pre-built events (array shape), so the load loop only produces.
  std::vector<std::string> ids(total), events(total);
  for (size_t i = 0; i < total; ++i) {
    ids[i] = prefix + std::to_string(i);
    events[i] = testing::reference_event(ref, i, ids[i], false);
  }
  const auto start = Steady::now();
  size_t next = 0;
  while (next < total) {
    // Produce everything due by now, then sleep ~0.5 ms: pacing without a syscall per event.
    const auto now = Steady::now();
    const size_t due = std::min(
        total, static_cast<size_t>(std::chrono::duration<double>(now - start).count() * rate));
    for (; next < due; ++next) {
      sent_ns[next] = Steady::now().time_since_epoch().count();
      testing::produce_copy(producer.get(), in, ids[next].data(), ids[next].size(),
                            events[next].data(), events[next].size(), 1);
    }
    rd_kafka_poll(producer.get(), 0);
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  rd_kafka_flush(producer.get(), 10000);
  testing::wait_until(
      [&] {
        size_t seen = 0;
        for (size_t i = warm; i < total; ++i) seen += arrived_ns[i] != 0;
        return seen == total - warm;
      },
      milliseconds(15000));
  reading = false;
  reader_thread.join();
  rd_kafka_queue_destroy(rq);
  rd_kafka_consumer_close(reader.get());
  reader.reset();
  producer.reset();

  std::vector<double> us;
  for (size_t i = warm; i < total; ++i) {
    if (arrived_ns[i] != 0) us.push_back(static_cast<double>(arrived_ns[i] - sent_ns[i]) / 1e3);
  }
  std::sort(us.begin(), us.end());
  Percentiles p;
  p.sent = total - warm;
  p.seen = us.size();
  p.p50 = percentile(us, 0.5);
  p.p99 = percentile(us, 0.99);
  p.p999 = percentile(us, 0.999);
  p.max = us.empty() ? 0 : us.back();
  return p;
}

// A zero-work relay: consume `in`, produce each record to `out` at once.
class Relay {
 public:
  Relay(const std::string& bootstrap, const std::string& in, const std::string& out) : out_(out) {
    consumer_ = make(RD_KAFKA_CONSUMER, bootstrap,
                     {{"group.id", "stream-bench-relay"},
                      {"fetch.wait.max.ms", "1"},
                      {"session.timeout.ms", "6000"},
                      {"heartbeat.interval.ms", "500"},
                      {"auto.offset.reset", "latest"}});
    producer_ = make(RD_KAFKA_PRODUCER, bootstrap, {{"linger.ms", "1"}});
    if (!kafka::fetch_metadata(producer_.get(), {out}, 5000).ok()) std::exit(1);
    rd_kafka_poll_set_consumer(consumer_.get());
    kafka::PartitionList t(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(t.get(), in.c_str(), RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(consumer_.get(), t.get());
    thread_ = std::thread([this] { run(); });
  }
  ~Relay() {
    running_ = false;
    thread_.join();
    rd_kafka_flush(producer_.get(), 5000);
    rd_kafka_consumer_close(consumer_.get());
    consumer_.reset();
    producer_.reset();
  }
  bool assigned() const { return assigned_.load(); }

 private:
  void run() {
    rd_kafka_queue_t* q = rd_kafka_queue_get_consumer(consumer_.get());
    rd_kafka_message_t* msgs[1000];
    while (running_.load()) {
      const ssize_t k = rd_kafka_consume_batch_queue(q, 5, msgs, 1000);
      for (ssize_t i = 0; i < k; ++i) {
        rd_kafka_message_t* m = msgs[i];
        if (!m->err) relay_one(producer_.get(), out_, m);
        rd_kafka_message_destroy(m);
      }
      rd_kafka_poll(producer_.get(), 0);
      rd_kafka_topic_partition_list_t* a = nullptr;
      if (!assigned_.load() &&
          rd_kafka_assignment(consumer_.get(), &a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const kafka::PartitionList owned(a);
        assigned_ = owned->cnt > 0;
      }
    }
    rd_kafka_queue_destroy(q);
  }

  std::string out_;
  kafka::Handle consumer_;
  kafka::Handle producer_;
  std::atomic<bool> running_{true};
  std::atomic<bool> assigned_{false};
  std::thread thread_;
};

void print_latency(const char* who, int rate, const Percentiles& p) {
  std::printf("  %-6s %7d/s  p50 %8.0f us  p99 %8.0f us  p99.9 %8.0f us  max %8.0f us  (%zu/%zu)\n",
              who, rate, p.p50, p.p99, p.p999, p.max, p.seen, p.sent);
}

}  // namespace

// A benchmark's main is its script: it runs the measurements in the order the report prints
// them, which reads best in one piece, so it stays longer than the ~60-line rule.
int main(int argc, char** argv) {
  Args args = parse(argc, argv);
  spdlog::set_level(spdlog::level::warn);
  constexpr int kTpPartitions = 16;
  constexpr int kLatPartitions = 6;  // the embedded default's
  auto cluster = kafka::EmbeddedCluster::start(3, {{"tp-in", kTpPartitions},
                                                   {"tp-scores", kTpPartitions},
                                                   {"py-scores", kTpPartitions},
                                                   {"transactions.dlq", kTpPartitions},
                                                   {"lat-in", kLatPartitions},
                                                   {"lat-scores", kLatPartitions},
                                                   {"relay-in", kLatPartitions},
                                                   {"relay-out", kLatPartitions},
                                                   {"relay-tp-out", kTpPartitions}});
  if (!cluster) {
    std::fprintf(stderr, "%s\n", cluster.error().c_str());
    return 1;
  }
  auto redis = testing::RedisServer::Start();
  if (!redis) {
    std::fprintf(stderr, "%s\n", redis.error().c_str());
    return 1;
  }
  const std::string bootstrap = (*cluster)->bootstrap();
  const std::string redis_url = (*redis)->url();
  auto ref = testing::load_reference();

  // Pre-load the throughput topic (array-shaped events keep each partition under the mock
  // cluster's ~5 MiB retention).
  {
    std::vector<std::pair<std::string, std::string>> recs;
    recs.reserve(args.events);
    for (size_t i = 0; i < args.events; ++i) {
      const std::string id = "sb-" + std::to_string(i);
      recs.emplace_back(id, testing::reference_event(ref, i, id, false));
    }
    if (!testing::produce_all(bootstrap, "tp-in", recs).ok()) return 1;
  }
  std::printf(
      "stream_bench: %zu events on %d partitions, embedded Kafka (3 mock brokers, in this "
      "process), real redis-server, %u cores\n\n",
      args.events, kTpPartitions, std::thread::hardware_concurrency());

  const double raw = raw_consume_rate(bootstrap, "tp-in", kTpPartitions, args.events);
  const double relay = relay_rate(bootstrap, "tp-in", "relay-tp-out", kTpPartitions, args.events);
  const ThroughputResult on =
      vigil_throughput(bootstrap, "stream-bench-redis", "tp-scores", redis_url, args.events);
  const ThroughputResult off =
      vigil_throughput(bootstrap, "stream-bench-noredis", "tp-scores", "", args.events);
  const double py = args.python ? python_throughput(bootstrap, redis_url, args.events) : -1;

  std::printf("%-62s %12s  %s\n", "throughput", "events/s", "ratio");
  std::printf("%-62s %12.0f\n", "raw: bare librdkafka consumer, no work", raw);
  std::printf("%-62s %12.0f  %.1f%% of raw\n",
              "relay: consume -> produce, no work (plain librdkafka)", relay, 100.0 * relay / raw);
  std::printf("%-62s %12.0f  %.1f%% of raw, %.1f%% of relay\n",
              "vigil, Redis off: consume+decode+score+produce", off.events_per_s,
              100.0 * off.events_per_s / raw, 100.0 * off.events_per_s / relay);
  std::printf("%-62s %12.0f  %.1f%% of raw, %.1f%% of relay",
              "vigil, Redis on: ... + SET EX in Redis", on.events_per_s,
              100.0 * on.events_per_s / raw, 100.0 * on.events_per_s / relay);
  if (py > 0) std::printf(", %.1fx python", on.events_per_s / py);
  std::printf("\n");
  if (py > 0) {
    std::printf("%-62s %12.0f\n", "python: bench/python_consumer.py, same job, Redis on", py);
  }
  std::printf("  steady state (25%%..75%% delivered): Redis on %.0f events/s, Redis off %.0f\n",
              on.steady_events_per_s, off.steady_events_per_s);
  std::printf("  Redis on: %llu of %zu scores written to Redis (the rest skipped, counted); ",
              static_cast<unsigned long long>(on.redis_written), args.events);
  std::printf("consumer paused %llu times (Redis off: %llu); ",
              static_cast<unsigned long long>(on.pauses),
              static_cast<unsigned long long>(off.pauses));
  std::printf(
      "%llu batches, %.0f events per batch\n", static_cast<unsigned long long>(on.batches),
      static_cast<double>(args.events) / static_cast<double>(std::max<uint64_t>(on.batches, 1)));
  std::printf(
      "  C++ heap allocations per event in steady state (operator new, every thread): Redis on "
      "%.3f, Redis off %.3f\n",
      on.allocations_per_event, off.allocations_per_event);
  const double per_forward = allocations_per_forward(250);
  std::printf(
      "  of which LibTorch's forward pass: %.0f allocations per batch (measured alone at 250 "
      "rows), %.3f per event at %.0f events per batch\n",
      per_forward, per_forward / (static_cast<double>(args.events) / on.batches),
      static_cast<double>(args.events) / on.batches);

  if (args.latency) {
    std::printf(
        "\nlatency: event produce call -> result read back (load producer linger.ms=5; reader "
        "fetch.wait.max.ms=1; %d s per rate after 1 s warm-up)\n",
        args.seconds);
    std::vector<std::pair<Percentiles, Percentiles>> rows;
    {
      auto service = app::Service::create(
          service_config(bootstrap, "stream-bench-lat", "lat-in", "lat-scores", redis_url));
      if (!service) {
        std::fprintf(stderr, "%s\n", service.error().c_str());
        return 1;
      }
      testing::wait_until([&] { return (*service)->source()->has_assignment(); },
                          milliseconds(30000));
      for (int rate : args.rates) {
        rows.push_back({measure_latency(bootstrap, "lat-in", "lat-scores", kLatPartitions, rate,
                                        args.seconds, ref, "vigil"),
                        {}});
        print_latency("vigil", rate, rows.back().first);
        std::fflush(stdout);
      }
      (*service)->stop();
    }
    {
      Relay relay(bootstrap, "relay-in", "relay-out");
      testing::wait_until([&] { return relay.assigned(); }, milliseconds(30000));
      for (size_t i = 0; i < args.rates.size(); ++i) {
        rows[i].second = measure_latency(bootstrap, "relay-in", "relay-out", kLatPartitions,
                                         args.rates[i], args.seconds, ref, "relay");
        print_latency("relay", args.rates[i], rows[i].second);
        std::fflush(stdout);
      }
    }
    std::printf("\n  %-8s %18s %18s %18s\n", "rate", "vigil-relay p50", "vigil-relay p99",
                "vigil-relay p99.9");
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto& [v, r] = rows[i];
      std::printf("  %-8d %15.0f us %15.0f us %15.0f us\n", args.rates[i], v.p50 - r.p50,
                  v.p99 - r.p99, v.p999 - r.p999);
    }
  }
  return 0;
}

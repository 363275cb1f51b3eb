// stream_bench: the streaming path end to end on the embedded Kafka and a real redis-server.
//
// In one run it prints:
//   1. raw     — a bare librdkafka consumer reading the pre-loaded input topic, no scoring
//   2. vigil   — the same events through vigil: consume, decode, batch, score, produce to
//                `scores` and write to Redis; events/s from assignment to the last delivery
//   3. latency — end-to-end p50/p99 (event time -> score read back from `scores`) while a
//                producer offers a fixed rate
//
// usage: stream_bench [--events 60000] [--partitions 16] [--rate 5000] [--seconds 10]
#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "app/service.h"
#include "common/clock.h"
#include "kafka/embedded_cluster.h"
#include "support/kafka_test_util.h"
#include "support/redis_server.h"
#include "support/wait.h"

using namespace vigil;
using std::chrono::milliseconds;
using Wall = std::chrono::steady_clock;

namespace {

struct Args {
  size_t events = 60000;
  int partitions = 16;
  int rate = 5000;
  int seconds = 10;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--events")
      a.events = std::stoul(argv[i + 1]);
    else if (k == "--partitions")
      a.partitions = std::stoi(argv[i + 1]);
    else if (k == "--rate")
      a.rate = std::stoi(argv[i + 1]);
    else if (k == "--seconds")
      a.seconds = std::stoi(argv[i + 1]);
  }
  return a;
}

rd_kafka_t* make(rd_kafka_type_t type, const std::string& bootstrap,
                 std::vector<std::pair<std::string, std::string>> props) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  props.emplace_back("bootstrap.servers", bootstrap);
  props.emplace_back("log_level", "3");
  for (auto& [k, v] : props) rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) {
    std::fprintf(stderr, "%s\n", err);
    std::exit(1);
  }
  return rk;
}

void assign_all(rd_kafka_t* rk, const std::string& topic, int partitions, int64_t offset) {
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(l, topic.c_str(), p)->offset = offset;
  }
  rd_kafka_assign(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
}

// A bare consumer reading `n` records of `topic` from the beginning: the ceiling for vigil.
double raw_consume_rate(const std::string& bootstrap, const std::string& topic, int partitions,
                        size_t n) {
  rd_kafka_t* rk = make(RD_KAFKA_CONSUMER, bootstrap, {{"group.id", "stream-bench-raw"}});
  assign_all(rk, topic, partitions, RD_KAFKA_OFFSET_BEGINNING);
  rd_kafka_queue_t* q = rd_kafka_queue_get_consumer(rk);
  std::vector<rd_kafka_message_t*> msgs(1000);
  size_t got = 0, bytes = 0;
  Wall::time_point t0{};
  // The mock cluster keeps ~5 MiB per partition: keep events x size / partitions below it.
  const auto deadline = Wall::now() + std::chrono::seconds(60);
  while (got < n && Wall::now() < deadline) {
    ssize_t k = rd_kafka_consume_batch_queue(q, 1000, msgs.data(), msgs.size());
    for (ssize_t i = 0; i < k; ++i) {
      if (!msgs[i]->err) {
        if (got == 0) t0 = Wall::now();
        ++got;
        bytes += msgs[i]->len;
      }
      rd_kafka_message_destroy(msgs[i]);
    }
  }
  const double el = std::chrono::duration<double>(Wall::now() - t0).count();
  if (got < n) {
    std::fprintf(stderr, "raw consumer read only %zu of %zu records (mock retention?)\n", got, n);
    std::exit(1);
  }
  rd_kafka_queue_destroy(q);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return static_cast<double>(n) / el;
}

// Upper bound of the bucket holding quantile q of a histogram snapshot.
double bucket_quantile(const metrics::Histogram::Snapshot& h, double q) {
  if (h.count == 0) return 0.0;
  const double target = q * static_cast<double>(h.count);
  for (size_t i = 0; i < h.upper_bounds.size(); ++i) {
    if (static_cast<double>(h.cumulative_counts[i]) >= target) return h.upper_bounds[i];
  }
  return INFINITY;
}

void print_stage_histograms(metrics::Registry& r) {
  for (const auto& f : r.collect()) {
    if (f.type != metrics::Type::kHistogram) continue;
    for (const auto& s : f.series) {
      if (s.histogram.count == 0) continue;
      std::printf("  %-36s n=%-8llu p50<=%-10.4g p99<=%-10.4g mean %.4g\n", f.name.c_str(),
                  static_cast<unsigned long long>(s.histogram.count),
                  bucket_quantile(s.histogram, 0.5), bucket_quantile(s.histogram, 0.99),
                  s.histogram.sum / static_cast<double>(s.histogram.count));
    }
  }
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse(argc, argv);
  spdlog::set_level(spdlog::level::warn);
  auto cluster = kafka::EmbeddedCluster::start(3, {{"transactions", args.partitions},
                                                   {"scores", args.partitions},
                                                   {"transactions.dlq", args.partitions},
                                                   {"latency-in", args.partitions}});
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
  auto ref = testing::load_reference();

  // Pre-load the input topic (array-shaped events keep each partition under the mock
  // cluster's ~5 MiB retention).
  std::vector<std::pair<std::string, std::string>> recs;
  recs.reserve(args.events);
  for (size_t i = 0; i < args.events; ++i) {
    const std::string id = "sb-" + std::to_string(i);
    recs.emplace_back(id, testing::reference_event(ref, i, id, false));
  }
  if (!testing::produce_all(bootstrap, "transactions", recs).ok()) return 1;
  recs.clear();

  std::printf(
      "stream_bench: %zu events, %d partitions, embedded Kafka (3 mock brokers), "
      "real redis-server, %u cores\n",
      args.events, args.partitions, std::thread::hardware_concurrency());
  const double raw = raw_consume_rate(bootstrap, "transactions", args.partitions, args.events);

  config::AppConfig c;
  c.model.device = "cpu";
  c.kafka.brokers = bootstrap;
  c.kafka.consumer["session.timeout.ms"] = "6000";
  c.kafka.consumer["heartbeat.interval.ms"] = "500";
  c.redis.url = (*redis)->url();
  c.http.enabled = false;
  auto service = app::Service::create(c);
  if (!service) {
    std::fprintf(stderr, "%s\n", service.error().c_str());
    return 1;
  }
  auto& svc = **service;
  testing::wait_until([&] { return svc.source()->has_assignment(); }, milliseconds(30000));
  const auto t0 = Wall::now();
  auto& delivered = svc.registry().counter("vigil_kafka_produced_total", "", {{"kind", "score"}});
  testing::wait_until(
      [&] {
        return delivered.value() >= args.events && svc.redis()->stats().written() >= args.events;
      },
      milliseconds(600000));
  const double el = std::chrono::duration<double>(Wall::now() - t0).count();
  const double e2e = static_cast<double>(args.events) / el;

  std::printf("\n%-58s %12s\n", "path", "events/s");
  std::printf("%-58s %12.0f\n", "raw: bare librdkafka consumer, no scoring", raw);
  std::printf("%-58s %12.0f  (%.1f%% of raw)\n",
              "vigil: consume+decode+score+produce scores+Redis SET", e2e, 100.0 * e2e / raw);
  std::printf("  delivered to scores: %llu, written to Redis: %llu, batches: %llu\n",
              static_cast<unsigned long long>(delivered.value()),
              static_cast<unsigned long long>(svc.redis()->stats().written()),
              static_cast<unsigned long long>(svc.batcher().stats().batches()));

  // Latency at a fixed offered rate: stamp event_time_ms at produce, read the score back.
  rd_kafka_t* reader = make(RD_KAFKA_CONSUMER, bootstrap,
                            {{"group.id", "stream-bench-lat"}, {"fetch.wait.max.ms", "10"}});
  assign_all(reader, "scores", args.partitions, RD_KAFKA_OFFSET_END);
  rd_kafka_poll(reader, 500);
  rd_kafka_t* producer = make(RD_KAFKA_PRODUCER, bootstrap, {{"linger.ms", "1"}});
  // Known leaders before the first event: librdkafka < 2.10.1 can otherwise hold the first
  // second of messages to a new topic (upstream #5032), which would be charged to vigil.
  if (!kafka::fetch_metadata(producer, {"transactions"}, 5000).ok()) return 1;
  std::atomic<bool> reading{true};
  std::vector<double> lat_ms, to_scored_ms;
  std::thread reader_thread([&] {
    while (reading) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(reader, 50);
      if (!m) continue;
      if (!m->err && m->key_len > 3 && std::memcmp(m->key, "lt-", 3) == 0) {
        std::string v(static_cast<const char*>(m->payload), m->len);
        const double et = testing::json_number(v, "event_time_ms");
        to_scored_ms.push_back(testing::json_number(v, "scored_at_ms") - et);
        lat_ms.push_back(static_cast<double>(wall_clock_ms()) - et);
      }
      rd_kafka_message_destroy(m);
    }
  });
  const size_t total = static_cast<size_t>(args.rate) * args.seconds;
  const auto start = Wall::now();
  for (size_t i = 0; i < total; ++i) {
    const auto due = start + std::chrono::microseconds(i * 1000000 / args.rate);
    std::this_thread::sleep_until(due);
    const std::string id = "lt-" + std::to_string(i);
    std::string ev = testing::reference_event(ref, i, id, true);
    ev.insert(ev.size() - 1, ",\"event_time_ms\":" + std::to_string(wall_clock_ms()));
    while (rd_kafka_producev(
               producer, RD_KAFKA_V_TOPIC("transactions"), RD_KAFKA_V_KEY(id.data(), id.size()),
               RD_KAFKA_V_VALUE(ev.data(), ev.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
               RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(producer, 1);
    }
    rd_kafka_poll(producer, 0);
  }
  rd_kafka_flush(producer, 10000);
  testing::wait_until([&] { return lat_ms.size() >= total; }, milliseconds(30000));
  reading = false;
  reader_thread.join();
  std::printf(
      "\nend-to-end latency at %d events/s offered for %d s (event time -> score read "
      "back from `scores`), %zu of %zu scores seen:\n",
      args.rate, args.seconds, lat_ms.size(), total);
  std::printf("  p50 %.1f ms   p90 %.1f ms   p99 %.1f ms   max %.1f ms\n", percentile(lat_ms, 0.5),
              percentile(lat_ms, 0.9), percentile(lat_ms, 0.99), percentile(lat_ms, 1.0));
  std::printf("  of which event time -> scored: p50 %.1f ms   p99 %.1f ms\n",
              percentile(to_scored_ms, 0.5), percentile(to_scored_ms, 0.99));
  std::printf("vigil's own histograms over the whole run (seconds; batch size in rows):\n");
  print_stage_histograms(svc.registry());
  rd_kafka_destroy(producer);
  rd_kafka_consumer_close(reader);
  rd_kafka_destroy(reader);
  svc.stop();
  return 0;
}

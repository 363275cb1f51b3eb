// vigil-loadgen: replays transactions into vigil's input topic at a chosen rate and reports
// what comes out. Wiring and the run's phases only; the parts live beside this file.
//
//   CSV rows ──► EventFactory ──► EventProducer ──► topic `transactions` ──► vigil
//                    (paced by TokenBucket, main thread)                         │
//                                                                                ▼
//   summary ◄── ScoreCollector (own thread) ◄────────────────────────── topic `scores`
//      └─────── redis GET vigil:score:<id> for three sample ids
//
// Phases: set up (CSV, Kafka clients, scores assigned at their end offsets) → produce (until
// --count, --duration-s or Ctrl-C) → wait for the scores (until all arrived or --timeout-s)
// → flush and stop the clients → Redis check → summary.
#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "codec/event_decoder.h"
#include "codec/transactions_csv.h"
#include "console.h"
#include "event_factory.h"
#include "event_producer.h"
#include "options.h"
#include "redis_lookup.h"
#include "report.h"
#include "score_collector.h"
#include "scoring/model_repository.h"
#include "stop_signal.h"
#include "token_bucket.h"

namespace vigil::loadgen {
namespace {

using Clock = std::chrono::steady_clock;

// After Ctrl-C, how long the scores of the events already sent are still waited for.
constexpr auto kInterruptGrace = std::chrono::seconds(2);
// Bound on delivering what the producer still holds at the end.
constexpr auto kFlushTimeout = std::chrono::seconds(5);
// Bound on waiting for a sample score to appear in Redis.
constexpr auto kRedisSettle = std::chrono::seconds(2);
constexpr size_t kMissingShown = 5;

// What the run needs once set up; owns both Kafka clients.
struct Pipeline {
  EventFactory events;
  std::unique_ptr<ScoreCollector> scores;
  std::unique_ptr<EventProducer> producer;
};

struct ProduceOutcome {
  uint64_t sent = 0;
  uint64_t sent_labelled_fraud = 0;
  Clock::time_point started;
  Clock::time_point ended;
};

Result<EventFactory> load_events(const LoadgenOptions& o) {
  auto model = scoring::load_model_info(o.repository, o.model);
  if (!model) return Result<EventFactory>::Error("model '" + o.model + "': " + model.error());
  codec::FeatureSchema schema(model->input_names);
  auto rows = codec::read_transactions_csv(o.csv, schema);
  if (!rows) return Result<EventFactory>::Error(rows.error());
  auto events = EventFactory::create(*rows, schema.names(), o.shape, o.id_prefix);
  if (!events) return Result<EventFactory>::Error(o.csv + ": " + events.error());
  return events;
}

// Builds everything before the first event is sent: in particular the scores consumer is
// assigned at the topic's current end before producing starts, so no score can be missed.
Result<Pipeline> set_up(const LoadgenOptions& o) {
  auto events = load_events(o);
  if (!events) return Result<Pipeline>::Error(events.error());
  const Deadline deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(o.wait_s));
  std::string bootstrap = o.bootstrap;
  if (bootstrap.empty()) {
    auto from_file = wait_for_bootstrap_file(o.bootstrap_file, deadline);
    if (!from_file) return Result<Pipeline>::Error(from_file.error());
    bootstrap = from_file.value();
  }
  auto scores = ScoreCollector::create(bootstrap, o.scores_topic, o.id_prefix,
                                       o.consumer_properties, deadline);
  if (!scores) return Result<Pipeline>::Error(scores.error());
  auto producer = EventProducer::create(bootstrap, o.topic, o.producer_properties, deadline);
  if (!producer) return Result<Pipeline>::Error(producer.error());
  Console::message("connected to " + bootstrap + ": producing to '" + o.topic + "' (" +
                   std::to_string((*producer)->partitions()) + " partitions), reading '" +
                   o.scores_topic + "'; transaction ids " + o.id_prefix + "-<n>");
  return Pipeline{std::move(events.value()), std::move(scores.value()),
                  std::move(producer.value())};
}

// Sends events at the offered rate until --count, --duration-s, Ctrl-C or a refused event.
ProduceOutcome produce(const LoadgenOptions& o, Pipeline& p, ProgressReporter& progress) {
  ProduceOutcome out;
  out.started = Clock::now();
  TokenBucket bucket(o.rate_per_s, out.started);
  const auto end_at = o.duration_s > 0
                          ? out.started + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(o.duration_s))
                          : Clock::time_point::max();
  std::string key, value;
  bool refused = false;
  while (!refused && !stop_requested() && (o.count == 0 || out.sent < o.count)) {
    const auto now = Clock::now();
    if (now >= end_at) break;
    uint64_t due = bucket.available(now);
    if (o.count != 0) due = std::min(due, o.count - out.sent);
    uint64_t sent_now = 0;
    for (; sent_now < due; ++sent_now) {
      p.events.render(out.sent, wall_clock_ms(), key, value);
      if (!p.producer->send(key, value)) {
        refused = true;
        break;
      }
      out.sent_labelled_fraud += p.events.label(out.sent) == 1 ? 1 : 0;
      ++out.sent;
    }
    bucket.take(sent_now);
    p.producer->poll(std::chrono::milliseconds(0));
    progress.maybe_print(now, out.sent, *p.scores);
    std::this_thread::sleep_until(std::min({bucket.next_chunk_at(), progress.next_due(), end_at}));
  }
  out.ended = Clock::now();
  return out;
}

// Waits until every acknowledged event has a score, --timeout-s has passed, or (after Ctrl-C)
// a short grace has.
void wait_for_scores(const LoadgenOptions& o, Pipeline& p, ProgressReporter& progress,
                     uint64_t sent) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(o.timeout_s));
  auto grace_end = Clock::time_point::max();
  while (true) {
    p.producer->poll(std::chrono::milliseconds(50));
    const auto now = Clock::now();
    progress.maybe_print(now, sent, *p.scores);
    const DeliveryCounts& d = p.producer->counts();
    if (d.in_flight() == 0 && p.scores->scored() >= d.acked) return;
    if (stop_requested() && grace_end == Clock::time_point::max()) {
      grace_end = now + kInterruptGrace;
    }
    if (now >= deadline || now >= grace_end || stop_now_requested()) return;
  }
}

void check_redis(const LoadgenOptions& o, RunSummary& summary) {
  summary.redis_key_prefix = o.redis_key_prefix;
  if (o.redis_url.empty()) {
    summary.redis_skipped_because = "--redis-url is empty";
    return;
  }
  if (summary.samples.empty()) {
    summary.redis_skipped_because = "no score to look up";
    return;
  }
  if (stop_now_requested()) {
    summary.redis_skipped_because = "interrupted twice";
    return;
  }
  summary.redis_checked = true;
  std::vector<std::string> ids;
  for (const auto& sample : summary.samples) ids.push_back(sample.transaction_id);
  auto readings = read_scores_from_redis(o.redis_url, o.redis_key_prefix, ids, kRedisSettle);
  if (readings) {
    summary.redis_readings = std::move(readings.value());
  } else {
    summary.redis_error = readings.error();
  }
}

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return to > from ? std::chrono::duration<double>(to - from).count() : 0.0;
}

int run(const LoadgenOptions& o) {
  auto pipeline = set_up(o);
  if (!pipeline) {
    Console::message(pipeline.error());
    return 2;
  }
  Pipeline& p = pipeline.value();
  p.scores->start();
  ProgressReporter progress(Clock::now());
  const ProduceOutcome produced = produce(o, p, progress);
  wait_for_scores(o, p, progress, produced.sent);

  // The producer first, so that its counters are final (it delivers or purges what it still
  // holds); then the reading thread is joined and the final score counters taken.
  p.producer->flush(kFlushTimeout);
  p.scores->stop();
  const CollectorStats scores = p.scores->snapshot(/*close_window=*/false);
  Console::end_progress();

  RunSummary summary;
  summary.id_prefix = o.id_prefix;
  summary.topic = o.topic;
  summary.offered_rate_per_s = o.rate_per_s;
  summary.sent = produced.sent;
  summary.sent_labelled_fraud = produced.sent_labelled_fraud;
  summary.delivery = p.producer->counts();
  summary.first_delivery_error = p.producer->first_delivery_error();
  summary.scores = scores;
  summary.missing_examples = p.scores->missing(produced.sent, kMissingShown);
  summary.producing_s = seconds_between(produced.started, produced.ended);
  summary.until_last_score_s = seconds_between(produced.started, scores.last_scored_at);
  summary.interrupted = stop_requested();
  summary.samples = p.scores->samples();
  check_redis(o, summary);
  print_summary(summary);
  return summary.all_scored() ? 0 : 1;
}

}  // namespace
}  // namespace vigil::loadgen

int main(int argc, char** argv) {
  using namespace vigil::loadgen;
  auto options = parse_options(std::vector<std::string>(argv + 1, argv + argc));
  if (options && options->help) {
    std::fputs(usage().c_str(), stdout);
    return 0;
  }
  if (!options) {
    std::string errors = options.error();
    for (size_t begin = 0, end; begin <= errors.size(); begin = end + 1) {
      end = std::min(errors.find('\n', begin), errors.size());
      std::fprintf(stderr, "vigil-loadgen: %s\n", errors.substr(begin, end - begin).c_str());
    }
    std::fprintf(stderr, "(see --help)\n");
    return 2;
  }
  install_stop_handlers();
  return run(*options);
}

#include "report.h"

#include <cstdio>

#include "console.h"

namespace vigil::loadgen {

namespace {

std::string ms_or_dash(int64_t ms) {
  return ms < 0 ? "-" : std::to_string(ms);
}

std::string p50_p99(const LatencySummary& l) {
  return ms_or_dash(l.p50_ms) + "/" + ms_or_dash(l.p99_ms) + " ms";
}

double per_second(uint64_t n, double seconds) {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0.0;
}

void print_redis_check(const RunSummary& s) {
  if (!s.redis_checked) {
    std::printf("redis: not checked (%s)\n", s.redis_skipped_because.c_str());
    return;
  }
  if (!s.redis_error.empty()) {
    std::printf("redis: check failed: %s\n", s.redis_error.c_str());
    return;
  }
  std::printf("redis (GET %s<transaction_id>):\n", s.redis_key_prefix.c_str());
  size_t agreeing = 0;
  for (size_t i = 0; i < s.redis_readings.size(); ++i) {
    const RedisReading& r = s.redis_readings[i];
    const bool same = r.value && i < s.samples.size() && *r.value == s.samples[i].json;
    agreeing += same ? 1 : 0;
    std::printf("  %s %s%s\n", r.transaction_id.c_str(),
                r.value ? r.value->c_str() : "(no such key)",
                same ? "" : (r.value ? "  <- differs from the topic" : ""));
  }
  std::printf("redis agrees with the scores topic for %zu of %zu samples%s\n", agreeing,
              s.redis_readings.size(), agreeing == s.redis_readings.size() ? "" : " (MISMATCH)");
}

}  // namespace

void ProgressReporter::maybe_print(Clock::time_point now, uint64_t sent, ScoreCollector& scores) {
  if (now < next_due()) return;
  const double window_s = std::chrono::duration<double>(now - last_).count();
  const double total_s = std::chrono::duration<double>(now - start_).count();
  const CollectorStats s = scores.snapshot(/*close_window=*/true);
  char line[256];
  std::snprintf(
      line, sizeof line, "%5.1fs  sent %llu (%.0f/s)  scored %llu (%.0f/s)  e2e p50/p99 %s, all %s",
      total_s, static_cast<unsigned long long>(sent), per_second(sent - last_sent_, window_s),
      static_cast<unsigned long long>(s.scored), per_second(s.scored - last_scored_, window_s),
      p50_p99(s.window).c_str(), p50_p99(s.overall).c_str());
  Console::progress(line);
  last_ = now;
  last_sent_ = sent;
  last_scored_ = s.scored;
}

void print_summary(const RunSummary& s) {
  const auto& c = s.scores;
  const auto& l = c.overall;
  char rate[64] = "unlimited";
  if (s.offered_rate_per_s > 0)
    std::snprintf(rate, sizeof rate, "%g events/s", s.offered_rate_per_s);
  std::printf("vigil-loadgen summary: run %s -> topic %s, offered rate %s%s\n", s.id_prefix.c_str(),
              s.topic.c_str(), rate, s.interrupted ? " (interrupted)" : "");
  std::printf("  sent         %llu events (delivery acks %llu, delivery failures %llu%s%s)\n",
              static_cast<unsigned long long>(s.sent),
              static_cast<unsigned long long>(s.delivery.acked),
              static_cast<unsigned long long>(s.delivery.failed),
              s.first_delivery_error.empty() ? "" : ", first: ", s.first_delivery_error.c_str());
  std::printf("  scored       %llu distinct, %llu duplicates, %llu missing\n",
              static_cast<unsigned long long>(c.scored),
              static_cast<unsigned long long>(c.duplicates),
              static_cast<unsigned long long>(s.missing()));
  if (!s.missing_examples.empty()) {
    std::printf("  missing ids  ");
    for (size_t i = 0; i < s.missing_examples.size(); ++i) {
      std::printf("%s%s-%llu", i == 0 ? "" : ", ", s.id_prefix.c_str(),
                  static_cast<unsigned long long>(s.missing_examples[i]));
    }
    std::printf("%s\n", s.missing() > s.missing_examples.size() ? ", ..." : "");
  }
  std::printf("  elapsed      %.2f s producing, %.2f s until the last score\n", s.producing_s,
              s.until_last_score_s);
  std::printf("  throughput   %.0f events/s sent, %.0f events/s scored\n",
              per_second(s.sent, s.producing_s), per_second(c.scored, s.until_last_score_s));
  std::printf("  e2e latency  p50 %s ms, p95 %s ms, p99 %s ms, max %s ms (%llu scores%s)\n",
              ms_or_dash(l.p50_ms).c_str(), ms_or_dash(l.p95_ms).c_str(),
              ms_or_dash(l.p99_ms).c_str(), ms_or_dash(l.max_ms).c_str(),
              static_cast<unsigned long long>(l.count),
              c.without_event_time > 0 ? ", some without event_time_ms" : "");
  std::printf("  fraud        %llu scored as fraud (rows labelled fraud among those sent: %llu)\n",
              static_cast<unsigned long long>(c.fraud),
              static_cast<unsigned long long>(s.sent_labelled_fraud));
  if (c.foreign > 0 || c.malformed > 0) {
    std::printf("  ignored      %llu scores of other runs, %llu malformed\n",
                static_cast<unsigned long long>(c.foreign),
                static_cast<unsigned long long>(c.malformed));
  }
  std::printf("scores topic, %zu sample%s:\n", s.samples.size(), s.samples.size() == 1 ? "" : "s");
  for (const auto& sample : s.samples) {
    std::printf("  %s %s\n", sample.transaction_id.c_str(), sample.json.c_str());
  }
  print_redis_check(s);
  if (s.all_scored()) {
    std::printf("result: OK, all %llu sent events were scored\n",
                static_cast<unsigned long long>(s.sent));
  } else {
    std::printf("result: FAILED, %llu of %llu sent events were not scored\n",
                static_cast<unsigned long long>(s.missing()),
                static_cast<unsigned long long>(s.sent));
  }
  std::fflush(stdout);
}

}  // namespace vigil::loadgen

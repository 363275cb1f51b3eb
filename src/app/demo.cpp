#include "app/demo.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include "app/logging.h"
#include "codec/transactions_csv.h"
#include "common/metrics.h"
#include "scoring/batcher.h"
#include "scoring/model_repository.h"
#include "scoring/torch_model.h"

namespace vigil::app {

namespace {

struct DemoRun {
  std::vector<float> scores;
  size_t failed = 0;
  double seconds = 0.0;
  uint64_t batches = 0;
};

// Scores every row through a queue and a batcher, as the service does.
DemoRun score_rows(const config::AppConfig& cfg, std::shared_ptr<scoring::Model> model,
                   const std::vector<codec::LabelledRow>& rows) {
  metrics::Registry registry;
  scoring::ScoringQueue queue(cfg.scoring.queue(), SteadyClock::instance(), registry);
  scoring::Batcher batcher(cfg.scoring.batcher(cfg.explain), queue, std::move(model),
                           SteadyClock::instance(), registry);
  batcher.start();
  DemoRun run;
  run.scores.assign(rows.size(), 0.0f);
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < rows.size(); ++i) {
    scoring::ScoreRequest r;
    r.id = "demo-" + std::to_string(i);
    r.features = rows[i].features;
    r.done = [&, i](scoring::ScoreRequest&, const scoring::ScoreOutcome& o) {
      std::lock_guard<std::mutex> lock(mu);
      if (o.status.ok()) {
        run.scores[i] = o.score;
      } else {
        ++run.failed;
      }
      if (++done == run.scores.size()) cv.notify_one();
    };
    while (queue.try_push(r, scoring::Priority::kNormal) ==
           scoring::ScoringQueue::PushResult::kFull) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));  // demo: simple retry
    }
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == run.scores.size(); });
  }
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  batcher.stop(std::chrono::milliseconds(1000));
  run.batches = batcher.stats().batches();
  return run;
}

void print_summary(const DemoRun& run, const scoring::ModelInfo& mi, const std::string& input,
                   const std::vector<codec::LabelledRow>& rows) {
  size_t flagged = 0, tp = 0, positives = 0;
  for (size_t i = 0; i < run.scores.size(); ++i) {
    const bool fraud = run.scores[i] >= mi.threshold;
    flagged += fraud;
    if (rows[i].label == 1) {
      ++positives;
      tp += fraud;
    }
  }
  std::printf("vigil demo: scored %zu transactions from %s in %.3f s (%.0f rows/s)\n",
              run.scores.size() - run.failed, input.c_str(), run.seconds,
              static_cast<double>(run.scores.size()) / run.seconds);
  std::printf("  model %s v%s on %s, threshold %.4f; %llu batches, failed %zu\n", mi.name.c_str(),
              mi.version.c_str(), mi.device.c_str(), mi.threshold,
              static_cast<unsigned long long>(run.batches), run.failed);
  std::printf(
      "  flagged as fraud: %zu; labelled frauds in the sample: %zu, of which flagged: %zu\n",
      flagged, positives, tp);
  for (size_t i = 0; i < std::min<size_t>(5, run.scores.size()); ++i) {
    std::printf("  demo-%zu: score %.6f%s\n", i, run.scores[i],
                run.scores[i] >= mi.threshold ? " (fraud)" : "");
  }
}

}  // namespace

int run_demo(const config::AppConfig& cfg) {
  auto log = logger("vigil");
  scoring::set_torch_intra_op_threads(cfg.model.intra_op_threads);
  auto info = scoring::load_model_info(cfg.model.repository, cfg.model.name, cfg.model.version);
  if (!info) {
    log->error("{}", info.error());
    return 1;
  }
  auto model = scoring::load_torch_model(*info, {cfg.model.device, cfg.model.intra_op_threads});
  if (!model) {
    log->error("{}", model.error());
    return 1;
  }
  const scoring::ModelInfo mi = (*model)->info();
  log->info("model {} version {} loaded on {} ({} inputs)", mi.name, mi.version, mi.device,
            mi.width());
  std::string input = cfg.demo_input;
  if (input.empty()) {
    input = (std::filesystem::path(cfg.model.repository) / cfg.model.name / "sample" /
             "transactions.csv")
                .string();
  }
  codec::FeatureSchema schema(mi.input_names);
  auto rows = codec::read_transactions_csv(input, schema, cfg.demo_rows);
  if (!rows) {
    log->error("{}", rows.error());
    return 1;
  }
  const DemoRun run = score_rows(cfg, std::move(model.value()), *rows);
  print_summary(run, mi, input, *rows);
  return run.failed == 0 ? 0 : 1;
}

}  // namespace vigil::app

// scoring_bench: rows/s of the full queue -> batcher -> model path next to a raw LibTorch
// forward at the same batch size, in one run, plus per-request latency through the path.
//
// Builds from LibTorch and the header-only CLI11 alone (no Kafka/Redis/Boost/yaml), so it also
// runs on GPU hosts:
//   cmake -S . -B build/gpu -DVIGIL_SCORING_ONLY=ON  (one line with the next)
//     -DCMAKE_PREFIX_PATH="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"
//   cmake --build build/gpu --target scoring_bench
//
// usage: scoring_bench [--model models/fraud_mlp/1/model.pt] [--width 30] [--device cpu]
//                      [--batches 1,32,256,1024] [--seconds 2] [--workers 1]
//                      [--lifecycle-batch 256] [--shadow-model PATH] [--top-k 5]
// (`--help` lists them with their defaults; `--name=value` works too.)
//
// The last table (--lifecycle-batch, 0 = off) is the cost of the model lifecycle features at
// one batch size, each against the plain path measured right before it: a shadow model (by
// default a second load of the same file: the same work as any same-sized version) and
// reason codes (forward + one backward per batch, top-k per row).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "scoring/batcher.h"
#include "scoring/torch_model.h"

using namespace vigil;
using WallClock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string model = "models/fraud_mlp/1/model.pt";
  size_t width = 30;
  std::string device = "cpu";
  std::vector<size_t> batches = {1, 32, 256, 1024};
  double seconds = 2.0;
  int workers = 1;
  size_t lifecycle_batch = 256;
  std::string shadow_model;  // empty: --model again
  size_t top_k = 5;
};

// Rows of random input the bench cycles through; a batch cannot be larger.
constexpr size_t kDataRows = 65536;

// Exits 0 after printing --help, and 2 (naming the option) on a bad command line.
Args parse(int argc, char** argv) {
  Args a;
  CLI::App app(
      "scoring_bench: rows/s of queue -> batcher -> model next to a raw LibTorch forward,\n"
      "per-request latency, and the cost of a shadow model and of reason codes.\n",
      "scoring_bench");
  app.option_defaults()->always_capture_default();
  // The error message names the bounds; the help shows the type and default only.
  auto in = [](auto min, auto max) { return CLI::Range(min, max).description(""); };
  app.add_option("--model", a.model, "TorchScript model file")->type_name("PATH");
  app.add_option("--width", a.width, "features per row (the model's input width)")
      ->check(in(size_t{1}, size_t{4096}));
  app.add_option("--device", a.device, "LibTorch device (cpu, cuda, cuda:N)");
  app.add_option("--batches", a.batches, "batch sizes to measure, comma-separated")
      ->delimiter(',')
      ->check(in(size_t{1}, kDataRows));
  app.add_option("--seconds", a.seconds, "measuring time per cell")->check(in(0.001, 3600.0));
  app.add_option("--workers", a.workers, "scoring workers behind the batcher")->check(in(1, 256));
  app.add_option("--lifecycle-batch", a.lifecycle_batch,
                 "batch size of the model lifecycle table; 0 = no such table")
      ->check(in(size_t{0}, kDataRows));
  app.add_option("--shadow-model", a.shadow_model,
                 "model file of the shadow in the lifecycle table\n[default: --model again]")
      ->type_name("PATH");
  app.add_option("--top-k", a.top_k, "reason codes per row in the lifecycle table")
      ->check(in(size_t{1}, size_t{4096}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e) == 0 ? 0 : 2);
  }
  return a;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// CPU time of the calling thread: time the machine gives to other work does not count, so it
// is steadier than wall time on a shared machine.
double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

struct RawResult {
  double rows_per_s;
  double p50_ms, p99_ms;  // per forward
  double cpu_ns_per_row;  // the thread's CPU time per row
};

RawResult run_raw(scoring::Model& model, const std::vector<float>& data, size_t batch,
                  double seconds) {
  auto session = model.new_session();
  std::vector<float> out(batch);
  const size_t width = model.info().width();
  const size_t rows_avail = data.size() / width;
  for (int i = 0; i < 5; ++i) session->score(data.data(), batch, out.data());  // warm
  std::vector<double> per;
  size_t rows = 0, offset = 0;
  const double cpu0 = thread_cpu_ns();
  const auto t0 = WallClock::now();
  while (std::chrono::duration<double>(WallClock::now() - t0).count() < seconds) {
    if (offset + batch > rows_avail) offset = 0;
    const auto b0 = WallClock::now();
    auto st = session->score(data.data() + offset * width, batch, out.data());
    if (!st.ok()) {
      std::fprintf(stderr, "forward failed: %s\n", st.message().c_str());
      std::exit(1);
    }
    per.push_back(std::chrono::duration<double, std::milli>(WallClock::now() - b0).count());
    rows += batch;
    offset += batch;
  }
  const double el = std::chrono::duration<double>(WallClock::now() - t0).count();
  const double cpu = thread_cpu_ns() - cpu0;
  return {static_cast<double>(rows) / el, percentile(per, 0.5), percentile(per, 0.99),
          cpu / static_cast<double>(rows)};
}

// Service capacity of the path: the queue is filled with `total` ready requests before the
// workers start, so the figure is what queue + batcher + model + completion can sustain,
// without the cost of building requests (done by the Kafka/HTTP threads in the service).
// Rows complete as the stream's do: no per-request callback (a Kafka record's `done` is
// empty), the batch handed to one BatchCompletion (the delivery stage, in the service).
// `cpu_ns_per_row`, with one worker: the worker thread's CPU time per row between the marks.
double run_capacity(std::shared_ptr<scoring::Model> model, const std::vector<float>& data,
                    size_t batch, size_t total, int workers,
                    std::shared_ptr<scoring::Model> shadow = nullptr, size_t top_k = 0,
                    double* cpu_ns_per_row = nullptr) {
  metrics::Registry registry;
  const size_t width = model->info().width();
  const size_t rows_avail = data.size() / width;
  scoring::ScoringQueue queue({total, 1.0, 0.5}, SteadyClock::instance(), registry);
  // Steady state only: the rate between the 10% and the 90% completion marks, so thread
  // start-up and the drain of the last partial batch do not count.
  struct Counter final : scoring::BatchCompletion {
    size_t total = 0, mark_lo = 0, mark_hi = 0, top_k = 0;
    std::atomic<size_t> completed{0};
    WallClock::time_point t_lo{}, t_hi{};
    double cpu_lo = 0, cpu_hi = 0;  // the completing thread's CPU time at the marks
    std::mutex mu;
    std::condition_variable cv;
    void complete(std::vector<scoring::ScoreRequest>& rows,
                  const std::vector<scoring::ScoreOutcome>& outcomes,
                  const scoring::ModelInfo&) override {
      for (size_t i = 0; i < rows.size(); ++i) {
        const scoring::ScoreOutcome& o = outcomes[i];
        if (!o.status.ok()) std::exit(1);
        if (top_k > 0 && o.reasons.size() != top_k) {
          std::fprintf(stderr, "expected %zu reasons, got %zu\n", top_k, o.reasons.size());
          std::exit(1);
        }
      }
      const size_t before = completed.fetch_add(rows.size(), std::memory_order_relaxed);
      const size_t n = before + rows.size();
      if (before < mark_lo && n >= mark_lo) {
        t_lo = WallClock::now();
        cpu_lo = thread_cpu_ns();
      }
      if (before < mark_hi && n >= mark_hi) {
        t_hi = WallClock::now();
        cpu_hi = thread_cpu_ns();
      }
      if (n == total) {
        std::lock_guard<std::mutex> lock(mu);
        cv.notify_one();
      }
    }
  } counter;
  counter.total = total;
  counter.mark_lo = total / 10;
  counter.mark_hi = total - total / 10;
  counter.top_k = top_k;
  for (size_t i = 0; i < total; ++i) {
    scoring::ScoreRequest r;
    const size_t row = i % rows_avail;
    r.features.assign(data.data() + row * width, width);
    if (queue.try_push(r, scoring::Priority::kNormal) != scoring::ScoringQueue::PushResult::kOk) {
      std::exit(1);
    }
  }
  scoring::Batcher batcher({batch, std::chrono::microseconds(2000), workers, true, top_k}, queue,
                           model, SteadyClock::instance(), registry, &counter);
  batcher.set_shadow(shadow);
  batcher.start();
  {
    std::unique_lock<std::mutex> lock(counter.mu);
    counter.cv.wait(lock, [&] { return counter.completed.load() == total; });
  }
  batcher.stop(std::chrono::milliseconds(1000));
  const double el = std::chrono::duration<double>(counter.t_hi - counter.t_lo).count();
  const auto rows = static_cast<double>(counter.mark_hi - counter.mark_lo);
  if (cpu_ns_per_row != nullptr) {
    *cpu_ns_per_row = workers == 1 ? (counter.cpu_hi - counter.cpu_lo) / rows : std::nan("");
  }
  return rows / el;
}

struct PathResult {
  double rows_per_s;
  double p50_ms, p99_ms;  // per request, enqueue -> completion
  double mean_batch;
};

PathResult run_path(std::shared_ptr<scoring::Model> model, const std::vector<float>& data,
                    size_t batch, double seconds, int workers) {
  metrics::Registry registry;
  const size_t width = model->info().width();
  const size_t rows_avail = data.size() / width;
  scoring::ScoringQueue queue({std::max<size_t>(batch * 8, 4096), 0.8, 0.5},
                              SteadyClock::instance(), registry);
  scoring::Batcher batcher({batch, std::chrono::microseconds(2000), workers}, queue, model,
                           SteadyClock::instance(), registry);
  batcher.start();

  std::atomic<size_t> completed{0};
  std::mutex lat_mu;
  std::vector<double> latencies;
  latencies.reserve(1 << 20);
  // Open-loop producer: keeps the queue full so that batches fill (throughput mode).
  std::atomic<bool> producing{true};
  size_t produced = 0;
  auto completion = [&](scoring::ScoreRequest& r, const scoring::ScoreOutcome& o) {
    if (!o.status.ok()) {
      std::fprintf(stderr, "scoring failed: %s\n", o.status.message().c_str());
      std::exit(1);
    }
    const double ms =
        std::chrono::duration<double, std::milli>(WallClock::now() - r.enqueued_at).count();
    {
      std::lock_guard<std::mutex> lock(lat_mu);
      if (latencies.size() < latencies.capacity()) latencies.push_back(ms);
    }
    completed.fetch_add(1, std::memory_order_relaxed);
  };
  const auto t0 = WallClock::now();
  std::thread producer([&] {
    size_t i = 0;
    while (producing.load(std::memory_order_relaxed)) {
      scoring::ScoreRequest r;
      const size_t row = i++ % rows_avail;
      r.features.resize(width);
      std::memcpy(r.features.data(), data.data() + row * width, width * sizeof(float));
      r.done = completion;
      while (queue.try_push(r, scoring::Priority::kNormal) !=
             scoring::ScoringQueue::PushResult::kOk) {
        if (!producing.load(std::memory_order_relaxed)) return;
        std::this_thread::yield();
      }
      ++produced;
    }
  });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const size_t done_at_end = completed.load();
  const double el = std::chrono::duration<double>(WallClock::now() - t0).count();
  producing = false;
  producer.join();
  batcher.stop(std::chrono::milliseconds(30000));
  const double batches = static_cast<double>(batcher.stats().batches());
  return {static_cast<double>(done_at_end) / el, percentile(latencies, 0.5),
          percentile(latencies, 0.99), static_cast<double>(completed.load()) / batches};
}

}  // namespace

// A benchmark's main is its script: it runs the measurements in the order the report prints
// them, which reads best in one piece, so it stays longer than the ~60-line rule.
int main(int argc, char** argv) {
  Args args = parse(argc, argv);
  scoring::set_torch_intra_op_threads(1);
  scoring::ModelInfo info;
  info.name = "bench";
  info.version = "1";
  info.path = args.model;
  for (size_t i = 0; i < args.width; ++i) info.input_names.push_back("f" + std::to_string(i));
  info.baseline.assign(args.width, 0.0f);  // the bench's inputs are N(0, 1)
  auto loaded = scoring::load_torch_model(info, {args.device, 1, 64});
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.error().c_str());
    return 1;
  }
  std::shared_ptr<scoring::Model> model = std::move(loaded.value());

  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> data(kDataRows * args.width);
  for (auto& v : data) v = nd(rng);

  std::printf(
      "scoring_bench: model %s, width %zu, device %s, %d worker(s), intra-op threads 1, "
      "%.1f s per cell\n",
      args.model.c_str(), args.width, model->info().device.c_str(), args.workers, args.seconds);
  std::printf(
      "raw      = one thread calling the model's forward on pre-packed batches\n"
      "raw, path: the medians of three of each, alternated\n"
      "path     = queue -> batcher -> model -> batch completion, queue pre-filled (capacity;\n"
      "           rows completed as the stream's: one completion per batch, no callback per row)\n"
      "+producer= same path fed live by one producer thread building requests\n");
  std::printf("%7s %13s %10s %10s %13s %9s %13s %9s %10s %10s %9s\n", "batch", "raw rows/s",
              "raw p50ms", "raw p99ms", "path rows/s", "path/raw", "+prod rows/s", "prod/raw",
              "req p50ms", "req p99ms", "avg batch");
  struct CpuRow {
    size_t batch;
    double raw_ns, path_ns;  // CPU time per row, medians
  };
  std::vector<CpuRow> cpu_rows;
  for (size_t b : args.batches) {
    // Raw and path alternate three times, each a third of the cell, and the medians are
    // compared: on a shared machine a single pair moved the ratio by 30 points run to run.
    const size_t total = std::max<size_t>(1000000, b * 400);
    std::vector<double> raw_rate, raw_p50, raw_p99, capacities, raw_cpu, path_cpu;
    for (int round = 0; round < 3; ++round) {
      const RawResult r = run_raw(*model, data, b, args.seconds / 3);
      raw_rate.push_back(r.rows_per_s);
      raw_p50.push_back(r.p50_ms);
      raw_p99.push_back(r.p99_ms);
      raw_cpu.push_back(r.cpu_ns_per_row);
      path_cpu.emplace_back();
      capacities.push_back(
          run_capacity(model, data, b, total, args.workers, nullptr, 0, &path_cpu.back()));
    }
    const RawResult raw{percentile(raw_rate, 0.5), percentile(raw_p50, 0.5),
                        percentile(raw_p99, 0.5), percentile(raw_cpu, 0.5)};
    const double capacity = percentile(capacities, 0.5);
    cpu_rows.push_back({b, raw.cpu_ns_per_row, percentile(path_cpu, 0.5)});
    PathResult path = run_path(model, data, b, args.seconds, args.workers);
    std::printf("%7zu %13.0f %10.3f %10.3f %13.0f %8.1f%% %13.0f %8.1f%% %10.3f %10.3f %9.1f\n", b,
                raw.rows_per_s, raw.p50_ms, raw.p99_ms, capacity, 100.0 * capacity / raw.rows_per_s,
                path.rows_per_s, 100.0 * path.rows_per_s / raw.rows_per_s, path.p50_ms, path.p99_ms,
                path.mean_batch);
    std::fflush(stdout);
  }
  if (args.workers == 1) {
    std::printf(
        "\nCPU time per row (the thread's own clock: time the machine gives to other work does "
        "not count), medians of the same three rounds:\n");
    std::printf("%7s %13s %13s %9s\n", "batch", "raw ns/row", "path ns/row", "path/raw");
    for (const CpuRow& r : cpu_rows) {
      std::printf("cpu %3zu %13.1f %13.1f %8.1f%%\n", r.batch, r.raw_ns, r.path_ns,
                  100.0 * r.raw_ns / r.path_ns);
    }
  }

  if (args.lifecycle_batch > 0) {
    scoring::ModelInfo shadow_info = info;
    shadow_info.version = "2";
    if (!args.shadow_model.empty()) shadow_info.path = args.shadow_model;
    auto shadow = scoring::load_torch_model(shadow_info, {args.device, 1, 64});
    if (!shadow) {
      std::fprintf(stderr, "%s\n", shadow.error().c_str());
      return 1;
    }
    std::shared_ptr<scoring::Model> shadow_model = std::move(shadow.value());
    const size_t b = args.lifecycle_batch;
    const size_t total = std::max<size_t>(1000000, b * 400);
    std::printf(
        "\nmodel lifecycle costs at batch %zu (path capacity, rows/s; each feature against the "
        "plain path measured just before it)\n",
        b);
    std::printf("%-34s %13s %13s %9s\n", "feature", "plain", "with it", "ratio");
    const double plain1 = run_capacity(model, data, b, total, args.workers);
    const double shadowed = run_capacity(model, data, b, total, args.workers, shadow_model);
    std::printf("%-34s %13.0f %13.0f %8.1f%%\n", "shadow model (second forward)", plain1, shadowed,
                100.0 * shadowed / plain1);
    const double plain2 = run_capacity(model, data, b, total, args.workers);
    const double explained = run_capacity(model, data, b, total, args.workers, nullptr, args.top_k);
    const std::string label = "reason codes (top " + std::to_string(args.top_k) + ")";
    std::printf("%-34s %13.0f %13.0f %8.1f%%\n", label.c_str(), plain2, explained,
                100.0 * explained / plain2);
  }
  return 0;
}

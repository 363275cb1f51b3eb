#include "scoring/batcher.h"

#include <algorithm>
#include <cmath>

#include "common/thread_name.h"

namespace vigil::scoring {

using std::chrono::duration_cast;
using std::chrono::microseconds;

namespace {
// How long an idle leader blocks on the queue before looking again (close() wakes it anyway).
constexpr microseconds kIdleWait{50000};

int64_t steady_ns() {
  return std::chrono::steady_clock::now().time_since_epoch().count();
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// BatchFormer

BatchFormer::BatchFormer(ScoringQueue& queue, const Clock& clock, size_t max_batch_size,
                         microseconds max_delay, std::function<bool()> all_idle)
    : queue_(queue),
      clock_(clock),
      max_batch_size_(std::max<size_t>(max_batch_size, 1)),
      max_delay_(max_delay),
      all_idle_(std::move(all_idle)) {
  pending_.reserve(max_batch_size_);
}

std::optional<Clock::time_point> BatchFormer::deadline() const {
  if (pending_.empty()) return std::nullopt;
  return oldest_ + max_delay_;
}

void BatchFormer::pull(microseconds wait) {
  const size_t before = pending_.size();
  if (before >= max_batch_size_) return;
  queue_.pop_bulk(pending_, max_batch_size_ - before, wait);
  for (size_t i = before; i < pending_.size(); ++i) {
    if (i == 0 || pending_[i].enqueued_at < oldest_) oldest_ = pending_[i].enqueued_at;
  }
}

bool BatchFormer::due() const {
  if (pending_.empty()) return false;
  if (pending_.size() >= max_batch_size_) return true;
  if (queue_.closed()) return true;  // nothing more can arrive: do not wait out the delay
  if (all_idle_ && all_idle_()) return true;
  return clock_.now() >= oldest_ + max_delay_;
}

bool BatchFormer::next(std::vector<ScoreRequest>& batch, microseconds max_wait) {
  pull(microseconds(0));
  if (!due() && max_wait.count() > 0) {
    microseconds wait = max_wait;
    if (auto d = deadline()) {
      wait =
          std::min(wait, std::max(microseconds(0), duration_cast<microseconds>(*d - clock_.now())));
      // A worker that goes idle wakes the leader through the queue (ScoringQueue::wake).
    }
    if (wait.count() > 0) pull(wait);
    pull(microseconds(0));  // whatever arrived together with the one that woke us
  }
  if (!due()) return false;
  batch.swap(pending_);
  pending_.clear();
  pending_.reserve(max_batch_size_);
  return true;
}

// ---------------------------------------------------------------------------------------------
// ScoringStats

ScoringStats::ScoringStats(metrics::Registry& r)
    : registry_(r),
      batch_size_(r.histogram("vigil_batch_size", "Rows per forward pass",
                              metrics::exponential_buckets(1, 2, 15))),
      compute_seconds_(r.histogram("vigil_model_compute_seconds",
                                   "Time of one batch's forward pass",
                                   metrics::latency_buckets_seconds())),
      queue_wait_seconds_(r.histogram("vigil_queue_wait_seconds",
                                      "Time from enqueue to the batch being formed",
                                      metrics::latency_buckets_seconds())),
      scored_kafka_(r.counter("vigil_requests_scored_total", "Requests scored, by origin",
                              {{"origin", "kafka"}})),
      scored_http_(r.counter("vigil_requests_scored_total", "Requests scored, by origin",
                             {{"origin", "http"}})),
      failed_model_(r.counter("vigil_requests_failed_total",
                              "Requests that could not be scored, by reason",
                              {{"reason", "model_error"}})),
      failed_width_(r.counter("vigil_requests_failed_total",
                              "Requests that could not be scored, by reason",
                              {{"reason", "bad_width"}})),
      failed_shutdown_(r.counter("vigil_requests_failed_total",
                                 "Requests that could not be scored, by reason",
                                 {{"reason", "shutdown"}})),
      batch_failures_(r.counter("vigil_batch_failures_total",
                                "Forward passes that failed as a whole (rows were then retried "
                                "one by one)")) {}

void ScoringStats::batch_scored(size_t rows, microseconds compute) {
  batch_size_.observe(static_cast<double>(rows));
  compute_seconds_.observe(static_cast<double>(compute.count()) * 1e-6);
}

void ScoringStats::BatchTally::commit() {
  if (http_) stats_.scored_http_.inc(http_);
  if (kafka_) stats_.scored_kafka_.inc(kafka_);
  stats_.queue_wait_seconds_.merge(wait_);
  wait_.clear();
  http_ = kafka_ = 0;
}

void ScoringStats::request_failed(const char* reason) {
  std::string r(reason);
  if (r == "model_error") {
    failed_model_.inc();
  } else if (r == "bad_width") {
    failed_width_.inc();
  } else {
    failed_shutdown_.inc();
  }
}

void ScoringStats::batch_failed() {
  batch_failures_.inc();
}

// ---------------------------------------------------------------------------------------------
// Batcher

struct Batcher::Worker {
  std::thread thread;
  std::unique_ptr<ModelSession> session;
  std::shared_ptr<const ModelInfo> info;
  uint64_t generation = ~uint64_t{0};
  std::vector<float> input;  // packed rows, reused across batches
  std::vector<float> output;
  std::vector<ScoreOutcome> outcomes;  // one per request of the batch, reused
  std::atomic<int64_t> busy_since_ns{0};
};

Batcher::Batcher(const BatcherConfig& config, ScoringQueue& queue, std::shared_ptr<Model> model,
                 const Clock& clock, metrics::Registry& registry, BatchCompletion* completion)
    : config_(config),
      queue_(queue),
      clock_(clock),
      completion_(completion),
      stats_(registry),
      former_(queue, clock, config.max_batch_size, config.max_delay,
              config.eager_when_idle ? std::function<bool()>([this] { return busy_workers_ == 0; })
                                     : nullptr) {
  swap_model(std::move(model));
}

Batcher::~Batcher() {
  stop(std::chrono::milliseconds(0));
}

void Batcher::swap_model(std::shared_ptr<Model> model) {
  VIGIL_CHECK(model != nullptr);
  auto info = std::make_shared<const ModelInfo>(model->info());
  std::lock_guard<std::mutex> lock(served_mutex_);
  served_.model = std::move(model);
  served_.info = std::move(info);
  ++served_.generation;
}

Batcher::Served Batcher::served() const {
  std::lock_guard<std::mutex> lock(served_mutex_);
  return served_;
}

std::shared_ptr<const ModelInfo> Batcher::model_info() const {
  return served().info;
}

std::vector<int64_t> Batcher::worker_busy_since_ns() const {
  std::vector<int64_t> out;
  for (const auto& w : workers_) out.push_back(w->busy_since_ns.load());
  return out;
}

void Batcher::start() {
  if (started_.exchange(true)) return;
  int n = config_.workers > 0 ? config_.workers
                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>());
  for (size_t i = 0; i < workers_.size(); ++i) {
    Worker* w = workers_[i].get();
    w->thread = std::thread([this, wp = w, i] {
      name_this_thread("vigil-score-" + std::to_string(i));
      worker_main(*wp);
    });
  }
}

void Batcher::stop(std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> lock(stop_mutex_);
  drain_deadline_ns_ = steady_ns() + duration_cast<std::chrono::nanoseconds>(grace).count();
  stopping_ = true;
  queue_.close();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  // Workers never started (or all gone): fail what is left so no completion is lost.
  std::vector<ScoreRequest> rest;
  std::vector<ScoreOutcome> outcomes;
  {
    std::lock_guard<std::mutex> flock(former_mutex_);
    while (former_.next(rest, microseconds(0)) || queue_.pop_bulk(rest, 4096, microseconds(0))) {
      fail_all(rest, outcomes, "server is shutting down", "shutdown");
    }
  }
}

void Batcher::worker_main(Worker& w) {
  std::vector<ScoreRequest> batch;
  batch.reserve(config_.max_batch_size);
  while (true) {
    bool have = false;
    bool done = false;
    {
      std::lock_guard<std::mutex> lock(former_mutex_);
      have = former_.next(batch, kIdleWait);
      done = !have && queue_.closed() && queue_.depth() == 0 && former_.pending() == 0;
    }
    if (done) return;
    if (!have) continue;
    w.busy_since_ns = steady_ns();
    busy_workers_.fetch_add(1);
    if (stopping_ && steady_ns() > drain_deadline_ns_) {
      fail_all(batch, w.outcomes, "server is shutting down", "shutdown");
    } else {
      run_batch(w, batch);
    }
    batch.clear();
    // The last worker to go idle may make a waiting leader's partial batch due at once.
    if (busy_workers_.fetch_sub(1) == 1 && config_.eager_when_idle) queue_.wake();
    w.busy_since_ns = 0;
  }
}

void Batcher::fail_all(std::vector<ScoreRequest>& batch, std::vector<ScoreOutcome>& outcomes,
                       const std::string& why, const char* reason) {
  outcomes.assign(batch.size(), ScoreOutcome{});
  for (auto& o : outcomes) {
    o.status = Status::Error(why);
    o.retryable = true;
    stats_.request_failed(reason);
  }
  complete(batch, outcomes, served().info);
  batch.clear();
}

void Batcher::complete(std::vector<ScoreRequest>& batch, std::vector<ScoreOutcome>& outcomes,
                       const std::shared_ptr<const ModelInfo>& model) {
  bool any_without_callback = false;
  for (size_t i = 0; i < batch.size(); ++i) {
    ScoreRequest& r = batch[i];
    if (!r.done) {
      any_without_callback = true;
      continue;
    }
    ScoreOutcome& o = outcomes[i];
    if (o.status.ok()) o.model = model;
    r.done(r, o);
    o.model.reset();
  }
  if (any_without_callback && completion_ != nullptr)
    completion_->complete(batch, outcomes, *model);
}

void Batcher::run_batch(Worker& w, std::vector<ScoreRequest>& batch) {
  Served s = served();
  if (w.generation != s.generation) {
    w.session = s.model->new_session();
    w.info = s.info;
    w.generation = s.generation;
  }
  const size_t width = w.info->width();
  const auto formed_at = clock_.now();
  const size_t n = batch.size();
  w.outcomes.resize(n);
  w.input.resize(n * width);
  w.output.assign(n, 0.0f);
  // Rows of the wrong width cannot be packed (decoders prevent them): they fail alone, and
  // their slot in the packed input is left as zeros.
  bool any_bad_width = false;
  for (size_t i = 0; i < n; ++i) {
    const ScoreRequest& r = batch[i];
    if (r.features.size() == width) {
      std::copy(r.features.begin(), r.features.end(), w.input.begin() + i * width);
    } else {
      any_bad_width = true;
      std::fill(w.input.begin() + i * width, w.input.begin() + (i + 1) * width, 0.0f);
    }
  }

  const auto t0 = std::chrono::steady_clock::now();
  Status st = w.session->score(w.input.data(), n, w.output.data());
  std::vector<Status> row_status;
  if (!st.ok()) {
    // One poison row must not fail its neighbours: retry each row alone.
    stats_.batch_failed();
    row_status.resize(n);
    for (size_t i = 0; i < n; ++i) {
      if (batch[i].features.size() != width) continue;
      row_status[i] = w.session->score(w.input.data() + i * width, 1, w.output.data() + i);
    }
  }
  const auto compute = duration_cast<microseconds>(std::chrono::steady_clock::now() - t0);
  stats_.batch_scored(n, compute);

  ScoringStats::BatchTally tally(stats_);
  for (size_t i = 0; i < n; ++i) {
    const ScoreRequest& r = batch[i];
    ScoreOutcome& o = w.outcomes[i];
    o.retryable = false;
    o.score = 0.0f;
    o.is_fraud = false;
    o.compute = compute;
    o.batch_size = n;
    o.queue_wait = duration_cast<microseconds>(formed_at - r.enqueued_at);
    if (any_bad_width && r.features.size() != width) {
      o.status = Status::Error("expected " + std::to_string(width) + " features, got " +
                               std::to_string(r.features.size()));
      stats_.request_failed("bad_width");
    } else if (!row_status.empty() && !row_status[i].ok()) {
      o.status = row_status[i];
      stats_.request_failed("model_error");
    } else if (!std::isfinite(w.output[i])) {
      o.status = Status::Error("model returned a non-finite score");
      stats_.request_failed("model_error");
    } else {
      o.status = Status::Ok();
      o.score = w.output[i];
      o.is_fraud = o.score >= w.info->threshold;
      tally.scored(r.origin, o.queue_wait);
    }
  }
  tally.commit();
  complete(batch, w.outcomes, w.info);
}

}  // namespace vigil::scoring

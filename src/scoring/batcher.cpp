#include "scoring/batcher.h"

#include <algorithm>
#include <cmath>

#include "common/log.h"
#include "common/rate_limit.h"
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
                         microseconds max_delay, std::function<bool()> all_idle, size_t models)
    : queue_(queue),
      clock_(clock),
      max_batch_size_(std::max<size_t>(max_batch_size, 1)),
      max_delay_(max_delay),
      all_idle_(std::move(all_idle)),
      pending_(std::max<size_t>(models, 1)) {
  for (Pending& p : pending_) p.rows.reserve(max_batch_size_);
}

std::optional<Clock::time_point> BatchFormer::deadline() const {
  std::optional<Clock::time_point> oldest;
  for (const Pending& p : pending_) {
    if (!p.rows.empty() && (!oldest || p.oldest < *oldest)) oldest = p.oldest;
  }
  if (!oldest) return std::nullopt;
  return *oldest + max_delay_;
}

void BatchFormer::pull(microseconds wait) {
  // No model's batch may grow past max_batch_size: take at most what the fullest one has room
  // for (a full one is due anyway).
  if (largest_ >= max_batch_size_) return;
  const size_t room = max_batch_size_ - largest_;
  if (pending_.size() == 1) {  // one model: straight into its batch
    Pending& p = pending_[0];
    const size_t before = p.rows.size();
    queue_.pop_bulk(p.rows, room, wait);
    for (size_t i = before; i < p.rows.size(); ++i) {
      if (i == 0 || p.rows[i].enqueued_at < p.oldest) p.oldest = p.rows[i].enqueued_at;
    }
    largest_ = p.rows.size();
    pending_count_ = largest_;
    return;
  }
  // Rows of several models: one pull may fill no batch while more wait in the queue, so pull
  // again (without waiting) until one is full or the queue has given what it holds.
  for (size_t want = room; want > 0; want = max_batch_size_ - largest_) {
    incoming_.clear();
    queue_.pop_bulk(incoming_, want, wait);
    wait = microseconds(0);
    for (ScoreRequest& r : incoming_) {
      // Producers (the router, the consumer) only name models the batcher was given.
      VIGIL_CHECK(r.model < pending_.size());
      Pending& p = pending_[r.model];
      if (p.rows.empty() || r.enqueued_at < p.oldest) p.oldest = r.enqueued_at;
      p.rows.push_back(std::move(r));
      largest_ = std::max(largest_, p.rows.size());
    }
    pending_count_ += incoming_.size();
    if (incoming_.size() < want) break;  // the queue is drained
  }
  incoming_.clear();
}

int BatchFormer::due() const {
  if (pending_count_ == 0) return -1;
  if (pending_.size() == 1) {
    if (pending_[0].rows.size() >= max_batch_size_) return 0;
    if (queue_.closed()) return 0;  // nothing more can arrive: do not wait out the delay
    if (all_idle_ && all_idle_()) return 0;
    return clock_.now() >= pending_[0].oldest + max_delay_ ? 0 : -1;
  }
  // Several models: an overdue batch goes first, so that one model's backlog, which refills
  // its batch after every flush, cannot hold another model's rows past their max delay; then
  // the oldest full batch; then, with nothing more to wait for, the oldest.
  int oldest = -1, oldest_full = -1;
  for (size_t m = 0; m < pending_.size(); ++m) {
    const Pending& p = pending_[m];
    if (p.rows.empty()) continue;
    if (oldest < 0 || p.oldest < pending_[oldest].oldest) oldest = static_cast<int>(m);
    if (p.rows.size() >= max_batch_size_ &&
        (oldest_full < 0 || p.oldest < pending_[oldest_full].oldest)) {
      oldest_full = static_cast<int>(m);
    }
  }
  if (clock_.now() >= pending_[oldest].oldest + max_delay_) return oldest;
  if (oldest_full >= 0) return oldest_full;
  if (queue_.closed() || (all_idle_ && all_idle_())) return oldest;
  return -1;
}

bool BatchFormer::next(std::vector<ScoreRequest>& batch, microseconds max_wait) {
  pull(microseconds(0));
  int m = due();
  if (m < 0 && max_wait.count() > 0) {
    microseconds wait = max_wait;
    if (auto d = deadline()) {
      wait =
          std::min(wait, std::max(microseconds(0), duration_cast<microseconds>(*d - clock_.now())));
      // A worker that goes idle wakes the leader through the queue (ScoringQueue::wake).
    }
    if (wait.count() > 0) pull(wait);
    pull(microseconds(0));  // whatever arrived together with the one that woke us
    m = due();
  }
  if (m < 0) return false;
  Pending& p = pending_[m];
  batch.swap(p.rows);
  p.rows.clear();
  p.rows.reserve(max_batch_size_);
  pending_count_ -= batch.size();
  largest_ = 0;
  for (const Pending& q : pending_) largest_ = std::max(largest_, q.rows.size());
  return true;
}

// ---------------------------------------------------------------------------------------------
// ScoringStats

ScoringStats::ScoringStats(metrics::Registry& r, const std::string& model)
    : batch_size_(r.histogram("vigil_batch_size", "Rows per forward pass",
                              metrics::exponential_buckets(1, 2, 15), {{"model", model}})),
      compute_seconds_(r.histogram("vigil_model_compute_seconds",
                                   "Time of one batch's forward pass",
                                   metrics::latency_buckets_seconds(), {{"model", model}})),
      queue_wait_seconds_(r.histogram("vigil_queue_wait_seconds",
                                      "Time from enqueue to the batch being formed",
                                      metrics::latency_buckets_seconds(), {{"model", model}})),
      scored_kafka_(r.counter("vigil_requests_scored_total", "Requests scored, by origin",
                              {{"origin", "kafka"}, {"model", model}})),
      scored_http_(r.counter("vigil_requests_scored_total", "Requests scored, by origin",
                             {{"origin", "http"}, {"model", model}})),
      failed_model_(r.counter("vigil_requests_failed_total",
                              "Requests that could not be scored, by reason",
                              {{"reason", "model_error"}, {"model", model}})),
      failed_width_(r.counter("vigil_requests_failed_total",
                              "Requests that could not be scored, by reason",
                              {{"reason", "bad_width"}, {"model", model}})),
      failed_shutdown_(r.counter("vigil_requests_failed_total",
                                 "Requests that could not be scored, by reason",
                                 {{"reason", "shutdown"}, {"model", model}})),
      batch_failures_(r.counter("vigil_batch_failures_total",
                                "Forward passes that failed as a whole (rows were then retried "
                                "one by one)",
                                {{"model", model}})),
      scored_inline_(r.counter("vigil_requests_scored_inline_total",
                               "HTTP requests scored on their io thread while the batcher was "
                               "idle (no hand-off to a worker)",
                               {{"model", model}})),
      shadow_rows_(
          r.counter("vigil_shadow_rows_total", "Rows the shadow model scored", {{"model", model}})),
      shadow_agree_(r.counter("vigil_shadow_decisions_total",
                              "Shadow rows by whether both models decided alike at their "
                              "thresholds",
                              {{"result", "agree"}, {"model", model}})),
      shadow_disagree_(r.counter("vigil_shadow_decisions_total",
                                 "Shadow rows by whether both models decided alike at their "
                                 "thresholds",
                                 {{"result", "disagree"}, {"model", model}})),
      shadow_failures_(r.counter("vigil_shadow_failures_total",
                                 "Shadow forward passes that failed (the primary result stands)",
                                 {{"model", model}})),
      shadow_difference_(r.histogram(
          "vigil_shadow_score_difference", "|shadow score - served score| per row",
          {0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0}, {{"model", model}})),
      shadow_compute_seconds_(r.histogram("vigil_shadow_compute_seconds",
                                          "Time of one batch's shadow forward pass",
                                          metrics::latency_buckets_seconds(), {{"model", model}})),
      explained_rows_(r.counter("vigil_explained_rows_total", "Rows scored with reason codes",
                                {{"model", model}})),
      explain_compute_seconds_(
          r.histogram("vigil_explain_compute_seconds",
                      "Time of one batch's forward and backward pass for reason codes",
                      metrics::latency_buckets_seconds(), {{"model", model}})) {}

void ScoringStats::Figures::add(const Figures& other) {
  scored_kafka += other.scored_kafka;
  scored_http += other.scored_http;
  batch_size.add(other.batch_size);
}

ScoringStats::Figures ScoringStats::figures() const {
  Figures f;
  f.scored_kafka = scored_kafka_.value();
  f.scored_http = scored_http_.value();
  f.batch_size = batch_size_.snapshot();
  return f;
}

void ScoringStats::shadow_scored(size_t rows, size_t agree, microseconds compute,
                                 const metrics::Histogram::Local& differences) {
  shadow_rows_.inc(rows);
  if (agree) shadow_agree_.inc(agree);
  if (rows > agree) shadow_disagree_.inc(rows - agree);
  shadow_difference_.merge(differences);
  shadow_compute_seconds_.observe(static_cast<double>(compute.count()) * 1e-6);
}

void ScoringStats::shadow_failed() {
  shadow_failures_.inc();
}

void ScoringStats::explained(size_t rows, microseconds compute) {
  explained_rows_.inc(rows);
  explain_compute_seconds_.observe(static_cast<double>(compute.count()) * 1e-6);
}

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
  // Its session of one model, made on its thread at its first batch of that model.
  struct Sessions {
    std::unique_ptr<ModelSession> session;
    std::shared_ptr<const ModelInfo> info;
    std::unique_ptr<ModelSession> shadow_session;  // null: no shadow model
    std::shared_ptr<const ModelInfo> shadow_info;
    uint64_t generation = ~uint64_t{0};
  };
  std::thread thread;
  std::vector<Sessions> models;  // by model index
  // The batch being scored: its model's index and sessions.
  size_t index = 0;
  Sessions* current = nullptr;
  // The current model's (shorthands for current->...)
  ModelSession& session() { return *current->session; }
  const ModelInfo& info() const { return *current->info; }
  std::vector<float> input;  // packed rows, reused across batches
  std::vector<float> output;
  std::vector<float> contributions;  // rows x width, when the batch is explained
  bool explained = false;            // whether `contributions` holds this batch's
  std::vector<float> shadow_output;
  std::vector<ShadowRow> shadow_rows;  // the scored rows, kept for the shadow pass
  std::vector<uint32_t> shadow_index;  // their row in `input`
  std::vector<uint32_t> order;         // scratch for ranking reason codes
  std::vector<ScoreOutcome> outcomes;  // one per request of the batch, reused
  std::atomic<int64_t> busy_since_ns{0};
};

Batcher::Batcher(const BatcherConfig& config, ScoringQueue& queue,
                 std::vector<std::shared_ptr<Model>> models, const Clock& clock,
                 metrics::Registry& registry, BatchCompletion* completion,
                 ShadowCompletion* shadow_completion)
    : config_(config),
      queue_(queue),
      clock_(clock),
      completion_(completion),
      shadow_completion_(shadow_completion),
      former_(queue, clock, config.max_batch_size, config.max_delay,
              config.eager_when_idle ? std::function<bool()>([this] { return busy_workers_ == 0; })
                                     : nullptr,
              models.size()) {
  VIGIL_CHECK(!models.empty());
  for (size_t i = 0; i < models.size(); ++i) {
    VIGIL_CHECK(models[i] != nullptr);
    slots_.push_back(std::make_unique<Slot>(registry, models[i]->info().name));
    swap_model(std::move(models[i]), i);
  }
}

Batcher::Batcher(const BatcherConfig& config, ScoringQueue& queue, std::shared_ptr<Model> model,
                 const Clock& clock, metrics::Registry& registry, BatchCompletion* completion,
                 ShadowCompletion* shadow_completion)
    : Batcher(config, queue, std::vector<std::shared_ptr<Model>>{std::move(model)}, clock, registry,
              completion, shadow_completion) {}

Batcher::~Batcher() {
  stop(std::chrono::milliseconds(0));
}

void Batcher::swap_model(std::shared_ptr<Model> model, size_t index) {
  VIGIL_CHECK(model != nullptr && index < slots_.size());
  auto info = std::make_shared<const ModelInfo>(model->info());
  Slot& slot = *slots_[index];
  std::lock_guard<std::mutex> lock(served_mutex_);
  slot.served.model = std::move(model);
  slot.served.info = std::move(info);
  slot.generation.store(++slot.served.generation);
  slot.last_compute_us.store(-1);  // a new model is timed again (by a worker) before inlining
}

void Batcher::set_shadow(std::shared_ptr<Model> shadow, size_t index) {
  VIGIL_CHECK(index < slots_.size());
  std::shared_ptr<const ModelInfo> info =
      shadow ? std::make_shared<const ModelInfo>(shadow->info()) : nullptr;
  Slot& slot = *slots_[index];
  std::lock_guard<std::mutex> lock(served_mutex_);
  slot.served.shadow = std::move(shadow);
  slot.served.shadow_info = std::move(info);
  slot.generation.store(++slot.served.generation);
  slot.last_compute_us.store(-1);
}

std::shared_ptr<const ModelInfo> Batcher::shadow_info(size_t index) const {
  return served(index).shadow_info;
}

Batcher::Served Batcher::served(size_t index) const {
  VIGIL_CHECK(index < slots_.size());
  std::lock_guard<std::mutex> lock(served_mutex_);
  return slots_[index]->served;
}

std::shared_ptr<const ModelInfo> Batcher::model_info(size_t index) const {
  return served(index).info;
}

ScoringStats::Figures Batcher::figures() const {
  ScoringStats::Figures f = slots_[0]->stats.figures();
  for (size_t i = 1; i < slots_.size(); ++i) f.add(slots_[i]->stats.figures());
  return f;
}

Batcher::InlineLane::InlineLane() : worker_(std::make_unique<Worker>()) {}
Batcher::InlineLane::~InlineLane() = default;

std::unique_ptr<Batcher::InlineLane> Batcher::make_inline_lane() const {
  return std::unique_ptr<InlineLane>(new InlineLane());
}

bool Batcher::try_score_inline(InlineLane& lane, std::vector<ScoreRequest>& batch) {
  if (batch.empty() || batch.size() > config_.max_batch_size) return false;
  if (!started_.load() || queue_.depth() != 0) return false;
  const size_t index = batch.front().model;
  for (const ScoreRequest& r : batch) {
    if (r.model != index) return false;  // a batch holds rows of one model
  }
  VIGIL_CHECK(index < slots_.size());
  // Only a model known to be fast: a slow forward on the io thread would hold up every other
  // connection of that thread and its request timeouts. The first batches of each model go
  // through the workers, which time them.
  const int64_t compute_us = slots_[index]->last_compute_us.load();
  if (compute_us < 0 || compute_us > kInlineComputeBound.count()) return false;
  // Claims "busy" only from idle: a busy worker, or another inline caller, means load. Then
  // stopping_, after the claim: stop() sets it before it waits for "busy" to drop to zero, so
  // either stop() waits for this batch or this call sees it and backs off.
  int idle = 0;
  if (!busy_workers_.compare_exchange_strong(idle, 1)) return false;
  if (stopping_.load()) {
    busy_workers_.fetch_sub(1);
    return false;
  }
  const Clock::time_point now = clock_.now();
  for (ScoreRequest& r : batch) r.enqueued_at = now;  // no queue wait
  Worker& w = *lane.worker_;
  w.busy_since_ns = now.time_since_epoch().count();
  // Counted before the batch runs: its answers may be written (and read by the caller) inside
  // run_batch, and whoever has an answer sees its row counted, as a worker's batch_scored is.
  slots_[index]->stats.scored_inline(batch.size());
  run_batch(w, batch, /*release_busy_when_scored=*/false);
  w.busy_since_ns = 0;
  release_busy();
  return true;
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
  // An inline caller that claimed "busy" before it could see stopping_ finishes its batch
  // (the completion is still up: it stops after the batcher); later ones see stopping_.
  while (busy_workers_.load() != 0) std::this_thread::sleep_for(microseconds(50));
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
    w.busy_since_ns = clock_.now().time_since_epoch().count();  // the watchdog's clock
    busy_workers_.fetch_add(1);
    if (stopping_ && steady_ns() > drain_deadline_ns_) {
      release_busy();
      fail_all(batch, w.outcomes, "server is shutting down", "shutdown");
    } else {
      run_batch(w, batch, /*release_busy_when_scored=*/true);
    }
    batch.clear();
    w.busy_since_ns = 0;
  }
}

void Batcher::fail_all(std::vector<ScoreRequest>& batch, std::vector<ScoreOutcome>& outcomes,
                       const std::string& why, const char* reason) {
  // A batch the former made is of one model; rows straight from the queue may be of several.
  const bool one_model = std::all_of(batch.begin(), batch.end(), [&](const ScoreRequest& r) {
    return r.model == batch.front().model;
  });
  if (batch.empty() || one_model) {
    if (!batch.empty()) fail_model(batch.front().model, batch, outcomes, why, reason);
    return;
  }
  std::vector<ScoreRequest> rows;
  for (size_t m = 0; m < slots_.size(); ++m) {
    rows.clear();
    for (ScoreRequest& r : batch) {
      VIGIL_CHECK(r.model < slots_.size());  // producers name only the models given
      if (r.model == m) rows.push_back(std::move(r));
    }
    if (!rows.empty()) fail_model(m, rows, outcomes, why, reason);
  }
  batch.clear();
}

void Batcher::fail_model(size_t index, std::vector<ScoreRequest>& batch,
                         std::vector<ScoreOutcome>& outcomes, const std::string& why,
                         const char* reason) {
  outcomes.assign(batch.size(), ScoreOutcome{});
  for (auto& o : outcomes) {
    o.status = Status::Error(why);
    o.retryable = true;
    slots_[index]->stats.request_failed(reason);
  }
  complete(batch, outcomes, served(index).info);
  batch.clear();
}

void Batcher::complete(std::vector<ScoreRequest>& batch, std::vector<ScoreOutcome>& outcomes,
                       const std::shared_ptr<const ModelInfo>& model) {
  // HTTP callers are answered first; then the whole batch, HTTP rows included, leaves by the
  // completion (the delivery stage: the one exit for scores).
  for (size_t i = 0; i < batch.size(); ++i) {
    ScoreRequest& r = batch[i];
    if (!r.done) continue;
    ScoreOutcome& o = outcomes[i];
    if (o.status.ok()) o.model = model;
    r.done(r, o);
    o.model.reset();
  }
  if (completion_ != nullptr) completion_->complete(batch, outcomes, *model);
  if (FlaggedObserver* observer = flagged_observer_.load(std::memory_order_acquire)) {
    for (size_t i = 0; i < batch.size(); ++i) {
      const ScoreOutcome& o = outcomes[i];
      if (o.is_fraud && o.status.ok()) observer->flagged(batch[i], o, *model);
    }
  }
}

void Batcher::release_busy() {
  // The last one to go idle may make a waiting leader's partial batch due at once; with no
  // rows held there is nothing to make due (and, after each inline batch, nobody to wake).
  if (busy_workers_.fetch_sub(1) == 1 && config_.eager_when_idle && former_.pending() > 0) {
    queue_.wake();
  }
}

void Batcher::run_batch(Worker& w, std::vector<ScoreRequest>& batch,
                        bool release_busy_when_scored) {
  w.index = batch.front().model;
  Slot& slot = *slots_[w.index];
  if (w.models.size() < slots_.size()) w.models.resize(slots_.size());
  w.current = &w.models[w.index];
  Worker::Sessions& m = *w.current;
  Served s = served(w.index);
  if (m.generation != s.generation) {
    m.session = s.model->new_session();
    m.info = s.info;
    m.shadow_session = s.shadow ? s.shadow->new_session() : nullptr;
    m.shadow_info = s.shadow_info;
    m.generation = s.generation;
  }
  ScoringStats& stats = slot.stats;
  const auto formed_at = clock_.now();
  const Packed packed = pack(w, batch);

  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Status> row_status;
  if (!forward(w, batch, packed.explain_k).ok()) {
    // One poison row must not fail its neighbours: retry each row alone.
    stats.batch_failed();
    const size_t width = w.info().width();
    row_status.resize(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].features.size() != width) continue;
      row_status[i] = w.session().score(w.input.data() + i * width, 1, w.output.data() + i);
    }
  }
  const auto compute = duration_cast<microseconds>(std::chrono::steady_clock::now() - t0);
  stats.batch_scored(batch.size(), compute);
  // Timed for the served version only: a batch of a version swapped out meanwhile does not count.
  if (s.generation == slot.generation.load()) slot.last_compute_us.store(compute.count());
  if (w.explained) stats.explained(batch.size(), compute);
  fill_outcomes(w, batch, row_status, packed.any_bad_width, formed_at, compute);
  if (w.explained) fill_reasons(w, batch);

  // The shadow pass runs after the primary results are handed on: it keeps what it needs of
  // the batch (ids, scores) since the completion takes the requests' records.
  const bool shadow = m.shadow_session != nullptr;
  if (shadow) {
    w.shadow_rows.clear();
    w.shadow_index.clear();
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!w.outcomes[i].status.ok()) continue;
      w.shadow_rows.push_back({batch[i].id, w.outcomes[i].score, 0.0f, batch[i].event_time_ms});
      w.shadow_index.push_back(static_cast<uint32_t>(i));
    }
  }
  const size_t n = batch.size();
  if (release_busy_when_scored) release_busy();
  complete(batch, w.outcomes, m.info);
  if (shadow && !w.shadow_rows.empty()) run_shadow(w, n);
}

Batcher::Packed Batcher::pack(Worker& w, const std::vector<ScoreRequest>& batch) const {
  const size_t width = w.info().width();
  const size_t n = batch.size();
  w.outcomes.resize(n);
  w.input.resize(n * width);
  w.output.assign(n, 0.0f);
  // Rows of the wrong width cannot be packed (decoders prevent them): they fail alone, and
  // their slot in the packed input is left as zeros.
  Packed p;
  for (size_t i = 0; i < n; ++i) {
    const ScoreRequest& r = batch[i];
    if (r.features.size() == width) {
      std::copy(r.features.begin(), r.features.end(), w.input.begin() + i * width);
    } else {
      p.any_bad_width = true;
      std::fill(w.input.begin() + i * width, w.input.begin() + (i + 1) * width, 0.0f);
    }
    p.explain_k = std::max(p.explain_k, top_k_of(r));
  }
  if (w.info().baseline.size() != width) p.explain_k = 0;  // model.yaml has no baseline
  return p;
}

void Batcher::fill_outcomes(Worker& w, const std::vector<ScoreRequest>& batch,
                            const std::vector<Status>& row_status, bool any_bad_width,
                            Clock::time_point formed_at, microseconds compute) {
  const size_t width = w.info().width();
  ScoringStats& stats = slots_[w.index]->stats;
  ScoringStats::BatchTally tally(stats);
  for (size_t i = 0; i < batch.size(); ++i) {
    const ScoreRequest& r = batch[i];
    ScoreOutcome& o = w.outcomes[i];
    o.retryable = false;
    o.score = 0.0f;
    o.is_fraud = false;
    o.compute = compute;
    o.batch_size = batch.size();
    o.queue_wait = duration_cast<microseconds>(formed_at - r.enqueued_at);
    o.reasons.clear();
    if (any_bad_width && r.features.size() != width) {
      o.status = Status::Error("expected " + std::to_string(width) + " features, got " +
                               std::to_string(r.features.size()));
      stats.request_failed("bad_width");
    } else if (!row_status.empty() && !row_status[i].ok()) {
      o.status = row_status[i];
      stats.request_failed("model_error");
    } else if (!std::isfinite(w.output[i])) {
      o.status = Status::Error("model returned a non-finite score");
      stats.request_failed("model_error");
    } else {
      o.status = Status::Ok();
      o.score = w.output[i];
      o.is_fraud = o.score >= w.info().threshold;
      tally.scored(r.origin, o.queue_wait);
    }
  }
  tally.commit();
}

size_t Batcher::top_k_of(const ScoreRequest& r) const {
  if (r.explain_top_k > 0) return r.explain_top_k;
  return r.origin == Origin::kKafka ? config_.explain_top_k : 0;
}

Status Batcher::forward(Worker& w, std::vector<ScoreRequest>& batch, size_t explain_k) {
  const size_t n = batch.size();
  w.explained = false;
  if (explain_k > 0) {
    w.contributions.resize(n * w.info().width());
    Status st = w.session().explain(w.input.data(), n, w.info().baseline.data(), w.output.data(),
                                    w.contributions.data());
    if (st.ok()) {
      w.explained = true;
      return st;
    }
    // Scores matter more than their explanation: score without reasons.
    static RateLimitedLog log{"scoring", std::chrono::milliseconds(5000)};
    log.warn("reason codes unavailable for a batch of {}: {}", n, st.message());
  }
  return w.session().score(w.input.data(), n, w.output.data());
}

void Batcher::fill_reasons(Worker& w, std::vector<ScoreRequest>& batch) {
  const size_t width = w.info().width();
  w.order.resize(width);
  for (size_t i = 0; i < batch.size(); ++i) {
    ScoreOutcome& o = w.outcomes[i];
    const size_t k = std::min(top_k_of(batch[i]), width);
    if (k == 0 || !o.status.ok()) continue;
    const float* c = w.contributions.data() + i * width;
    for (uint32_t j = 0; j < width; ++j) w.order[j] = j;
    std::partial_sort(
        w.order.begin(), w.order.begin() + k, w.order.end(),
        [c](uint32_t a, uint32_t b) { return c[a] > c[b] || (c[a] == c[b] && a < b); });
    for (size_t j = 0; j < k; ++j) o.reasons.push_back({w.order[j], c[w.order[j]]});
  }
}

void Batcher::run_shadow(Worker& w, size_t n) {
  const auto t0 = std::chrono::steady_clock::now();
  w.shadow_output.assign(n, 0.0f);
  const Worker::Sessions& m = *w.current;
  ScoringStats& stats = slots_[w.index]->stats;
  Status st = m.shadow_session->score(w.input.data(), n, w.shadow_output.data());
  if (!st.ok()) {
    stats.shadow_failed();
    static RateLimitedLog log{"scoring", std::chrono::milliseconds(5000)};
    log.warn("shadow model {} version {} failed a batch of {}: {}", m.shadow_info->name,
             m.shadow_info->version, n, st.message());
    return;
  }
  const auto compute = duration_cast<microseconds>(std::chrono::steady_clock::now() - t0);
  metrics::Histogram::Local differences(stats.shadow_difference_histogram());
  size_t agree = 0;
  for (size_t j = 0; j < w.shadow_rows.size(); ++j) {
    ShadowRow& row = w.shadow_rows[j];
    row.shadow_score = w.shadow_output[w.shadow_index[j]];
    differences.observe(std::fabs(row.shadow_score - row.score));
    agree += (row.score >= w.info().threshold) == (row.shadow_score >= m.shadow_info->threshold);
  }
  stats.shadow_scored(w.shadow_rows.size(), agree, compute, differences);
  if (shadow_completion_ != nullptr) {
    shadow_completion_->shadow_scored(w.shadow_rows, w.info(), *m.shadow_info);
  }
}

}  // namespace vigil::scoring

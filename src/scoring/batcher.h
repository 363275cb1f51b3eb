// Dynamic batching: scoring workers drain the ScoringQueue in batches and run one forward
// pass per batch.
//
// Flush rule (BatchFormer). A batch is released as soon as either holds:
//
//   pending: [r0 r1 r2 ... rk]        r0 = the OLDEST waiting request (smallest enqueued_at)
//             |<--- max_delay_us --->|
//   t:        r0.enqueued_at          r0.enqueued_at + max_delay  => flush what has arrived
//   or:       k + 1 == max_batch_size                              => flush at once (full)
//   or:       the queue is closed (shutdown drain)                 => flush at once
//   or:       eager_when_idle and no worker is scoring a batch     => flush at once
//
// The last rule keeps light traffic fast: when every worker is idle, waiting for more
// requests buys no throughput, only latency. Under load some worker is always busy, so
// requests accumulate into larger batches while it computes, still bounded by max_delay.
//
// The delay runs from the moment the oldest request entered the queue, not from when a
// worker picked it up, so a request never waits longer than max_delay_us for a batch to
// fill (plus the forward pass of batches ahead of it).
//
// Several models: each request names the model that scores it (ScoreRequest::model, an index
// into the batcher's models), and a batch holds rows of one model. Rows of each model wait in
// their own pending batch under the rule above; the due one whose oldest row waited longest
// goes first. The workers are shared by all models (each keeps a session per model).
//
// Workers follow a leader/follower scheme: one worker at a time holds the former and waits
// for a batch to become due; when it has one it releases the former and runs the forward,
// and the next worker takes over forming. Batches therefore fill as much as the traffic
// allows instead of being split between idle workers.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/status.h"
#include "scoring/model.h"
#include "scoring/request.h"
#include "scoring/scoring_queue.h"

namespace vigil::scoring {

struct BatcherConfig {
  size_t max_batch_size = 256;                // rows per forward pass at most
  std::chrono::microseconds max_delay{2000};  // longest a request waits for its batch to fill
  int workers = 0;                            // scoring threads; 0 = one per core
  bool eager_when_idle = true;                // flush at once when no worker is busy
  size_t explain_top_k = 0;                   // reason codes on every Kafka-origin score (0 = none)
};

// Collects requests from the queue and decides when a batch is due. Single-threaded: the
// Batcher serialises access. Unit tests drive it with a ManualClock and max_wait = 0.
class BatchFormer {
 public:
  // `all_idle`, when set, says whether no worker is scoring a batch; a pending batch is then
  // due at once (see the flush rule above).
  // `models`: how many models requests may name (ScoreRequest::model < models).
  BatchFormer(ScoringQueue& queue, const Clock& clock, size_t max_batch_size,
              std::chrono::microseconds max_delay, std::function<bool()> all_idle = nullptr,
              size_t models = 1);

  // Pulls what has arrived; if a batch is due, moves it into `batch` (which must be empty)
  // (rows of one model) and returns true. Otherwise waits up to `max_wait` (less if the oldest
  // pending request's deadline comes first) for more requests, and returns whether a batch is due
  // then.
  bool next(std::vector<ScoreRequest>& batch, std::chrono::microseconds max_wait);

  // Rows held for a batch not yet due. Any thread: a worker going idle reads it to wake the
  // leader only when it holds rows (the leader publishes them before it asks all_idle; the
  // worker drops its busy mark before it reads this; both sequentially consistent, so one of
  // the two sees the other).
  size_t pending() const { return pending_count_.load(); }
  // When the oldest pending request must be flushed; nullopt when nothing is pending.
  std::optional<Clock::time_point> deadline() const;

 private:
  struct Pending {  // one model's rows waiting
    std::vector<ScoreRequest> rows;
    Clock::time_point oldest{};
  };
  void pull(std::chrono::microseconds wait);
  // The model whose batch is due (a full one first, else the oldest waiting), or -1.
  int due() const;

  ScoringQueue& queue_;
  const Clock& clock_;
  const size_t max_batch_size_;
  const std::chrono::microseconds max_delay_;
  const std::function<bool()> all_idle_;
  std::vector<Pending> pending_;          // by model
  std::vector<ScoreRequest> incoming_;    // rows just pulled, before they are sorted by model
  std::atomic<size_t> pending_count_{0};  // written by the leader only
  size_t largest_ = 0;                    // rows in the fullest pending batch
};

// Per-component metrics with verbs.
class ScoringStats {
 public:
  // Every series carries the label model=<model>.
  ScoringStats(metrics::Registry& registry, const std::string& model);
  void batch_scored(size_t rows, std::chrono::microseconds compute);
  // Per-batch accounting of scored requests: counts by origin and the queue-wait
  // distribution, accumulated without atomics and merged once per batch.
  class BatchTally {
   public:
    explicit BatchTally(ScoringStats& stats) : stats_(stats), wait_(stats.queue_wait_seconds_) {}
    void scored(Origin origin, std::chrono::microseconds queue_wait) {
      ++(origin == Origin::kHttp ? http_ : kafka_);
      wait_.observe(static_cast<double>(queue_wait.count()) * 1e-6);
    }
    void commit();  // publishes and resets

   private:
    ScoringStats& stats_;
    metrics::Histogram::Local wait_;
    uint64_t http_ = 0, kafka_ = 0;
  };
  void request_failed(const char* reason);
  void batch_failed();
  void scored_inline(size_t rows) { scored_inline_.inc(rows); }
  // A shadow forward of `rows` rows; `agree` of them got the same decision at the thresholds;
  // `differences` holds |shadow - primary| per row.
  void shadow_scored(size_t rows, size_t agree, std::chrono::microseconds compute,
                     const metrics::Histogram::Local& differences);
  void shadow_failed();
  void explained(size_t rows, std::chrono::microseconds compute);
  metrics::Histogram& shadow_difference_histogram() { return shadow_difference_; }

  // What the live view shows of scoring (src/live). Any thread.
  struct Figures {
    uint64_t scored_kafka = 0;
    uint64_t scored_http = 0;
    metrics::Histogram::Snapshot batch_size;  // rows per forward pass
    void add(const Figures& other);           // another model's
  };
  Figures figures() const;

  uint64_t scored() const { return scored_kafka_.value() + scored_http_.value(); }
  uint64_t failed_model() const { return failed_model_.value(); }
  uint64_t failed_shutdown() const { return failed_shutdown_.value(); }
  uint64_t batches() const { return batch_size_.count(); }

 private:
  metrics::Histogram& batch_size_;
  metrics::Histogram& compute_seconds_;
  metrics::Histogram& queue_wait_seconds_;
  metrics::Counter& scored_kafka_;
  metrics::Counter& scored_http_;
  metrics::Counter& failed_model_;
  metrics::Counter& failed_width_;
  metrics::Counter& failed_shutdown_;
  metrics::Counter& batch_failures_;
  metrics::Counter& scored_inline_;
  metrics::Counter& shadow_rows_;
  metrics::Counter& shadow_agree_;
  metrics::Counter& shadow_disagree_;
  metrics::Counter& shadow_failures_;
  metrics::Histogram& shadow_difference_;
  metrics::Histogram& shadow_compute_seconds_;
  metrics::Counter& explained_rows_;
  metrics::Histogram& explain_compute_seconds_;
};

// Owns the scoring worker threads. start() launches them, stop() drains and joins them;
// the destructor calls stop(). Thread-safe.
class Batcher {
  struct Worker;  // a scoring thread's session and buffers (batcher.cpp)

 public:
  // `models` (at least one; the first is the default) are the models requests may name, by
  // index (ScoreRequest::model). `completion` (may be null: HTTP only) takes every finished
  // batch; `shadow_completion` (may be null) the shadow models' scores. Both must outlive the
  // batcher's stop().
  Batcher(const BatcherConfig& config, ScoringQueue& queue,
          std::vector<std::shared_ptr<Model>> models, const Clock& clock,
          metrics::Registry& registry, BatchCompletion* completion = nullptr,
          ShadowCompletion* shadow_completion = nullptr);
  // One model.
  Batcher(const BatcherConfig& config, ScoringQueue& queue, std::shared_ptr<Model> model,
          const Clock& clock, metrics::Registry& registry, BatchCompletion* completion = nullptr,
          ShadowCompletion* shadow_completion = nullptr);
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  void start();

  // Two-phase shutdown: closes the queue (no new requests), keeps scoring what is queued
  // until it is empty or `grace` has passed, then completes whatever is left with a
  // "shutting down" error and joins the workers. Idempotent; blocks until joined.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(10000));

  size_t model_count() const { return slots_.size(); }
  // Atomically replaces the version served as model `index` (another version of the same
  // model); workers switch at their next batch of it.
  void swap_model(std::shared_ptr<Model> model, size_t index = 0);
  std::shared_ptr<const ModelInfo> model_info(size_t index = 0) const;
  // Sets (null: removes) model `index`'s shadow, which scores each of its batches as well; its
  // scores go to the ShadowCompletion and never change the served result. Workers switch at
  // their next batch of it.
  void set_shadow(std::shared_ptr<Model> shadow, size_t index = 0);
  std::shared_ptr<const ModelInfo> shadow_info(size_t index = 0) const;
  // Rows scored at or above the threshold are also shown to `observer` (null: nobody), from
  // the next batch on. The observer must outlive stop().
  void observe_flagged(FlaggedObserver* observer) {
    flagged_observer_.store(observer, std::memory_order_release);
  }
  const ScoringStats& stats(size_t index = 0) const { return slots_[index]->stats; }
  // The figures of every model together.
  ScoringStats::Figures figures() const;
  int worker_count() const { return static_cast<int>(workers_.size()); }
  // For each worker, the time (ns since the batcher's clock's epoch) at which it started the
  // batch it is working on (forward pass and completions), or 0 when it is not in a batch.
  // Watchdog input: a worker busy for too long is stuck.
  std::vector<int64_t> worker_busy_since_ns() const;

  // Scoring on the caller's thread (an HTTP io thread) while the batcher is idle. A lone HTTP
  // request otherwise crosses threads twice (to a worker, and its answer back), and those two
  // wake-ups, not the forward pass, are most of its latency. Under load requests go through
  // the queue as before, so the workers keep batching them. One lane per calling thread: it
  // holds that thread's model session and buffers.
  class InlineLane {
   public:
    ~InlineLane();
    InlineLane(const InlineLane&) = delete;
    InlineLane& operator=(const InlineLane&) = delete;

   private:
    friend class Batcher;
    InlineLane();
    std::unique_ptr<Worker> worker_;
  };
  std::unique_ptr<InlineLane> make_inline_lane() const;
  // When no worker is busy, nothing is queued, the batcher is running (not stopping), the
  // rows are all of one model and that model's last forward pass took at most kInlineComputeBound
  // (1 ms; a model not yet timed, or slower, is never run on the caller's thread), scores `batch`
  // on this thread through `lane` and completes it exactly as a worker would (each request's
  // `done`, then the whole batch to the BatchCompletion: the delivery stage) and returns true.
  // Otherwise returns false and leaves `batch` untouched, to be queued. At most one caller scores
  // inline at a time; a worker may run beside it.
  bool try_score_inline(InlineLane& lane, std::vector<ScoreRequest>& batch);

 private:
  struct Served {
    std::shared_ptr<Model> model;
    std::shared_ptr<const ModelInfo> info;
    std::shared_ptr<Model> shadow;
    std::shared_ptr<const ModelInfo> shadow_info;
    uint64_t generation = 0;
  };
  // One model's place: what is served (under served_mutex_), its figures, its timing.
  struct Slot {
    Slot(metrics::Registry& registry, const std::string& name) : stats(registry, name) {}
    Served served;
    ScoringStats stats;
    // The forward pass of its last batch, microseconds; -1: not timed yet.
    std::atomic<int64_t> last_compute_us{-1};
    std::atomic<uint64_t> generation{0};  // served.generation
  };
  void worker_main(Worker& w);
  // `release_busy_when_scored` (workers): the worker stops counting as busy once the batch
  // is scored, before its callers are answered and it is delivered, so a caller answered sees
  // the batcher idle (its next request may be scored inline; an eager leader may dispatch).
  // The inline path keeps "busy" until its completion returned: stop() waits for that.
  void run_batch(Worker& w, std::vector<ScoreRequest>& batch, bool release_busy_when_scored);
  void release_busy();
  // Packs the batch's rows into w.input; how many reason codes the batch needs.
  struct Packed {
    bool any_bad_width = false;
    size_t explain_k = 0;
  };
  Packed pack(Worker& w, const std::vector<ScoreRequest>& batch) const;
  // Each request's outcome from the forward pass (w.output) or its own failure.
  void fill_outcomes(Worker& w, const std::vector<ScoreRequest>& batch,
                     const std::vector<Status>& row_status, bool any_bad_width,
                     Clock::time_point formed_at, std::chrono::microseconds compute);
  // Forward (with reason codes when a row asks for them) of the packed rows into w.output.
  Status forward(Worker& w, std::vector<ScoreRequest>& batch, size_t explain_k);
  void fill_reasons(Worker& w, std::vector<ScoreRequest>& batch);
  // Reason codes `r` wants: its own request, else the configured number for Kafka rows.
  size_t top_k_of(const ScoreRequest& r) const;
  // Scores the batch's rows again with the shadow model and hands them on.
  void run_shadow(Worker& w, size_t n);
  // Completes every request of `batch` (of any models) with the error `why`.
  void fail_all(std::vector<ScoreRequest>& batch, std::vector<ScoreOutcome>& outcomes,
                const std::string& why, const char* reason);
  // The same for rows of model `index` only.
  void fail_model(size_t index, std::vector<ScoreRequest>& batch,
                  std::vector<ScoreOutcome>& outcomes, const std::string& why, const char* reason);
  // Calls each request's `done` (HTTP) and hands the batch to the BatchCompletion (Kafka).
  void complete(std::vector<ScoreRequest>& batch, std::vector<ScoreOutcome>& outcomes,
                const std::shared_ptr<const ModelInfo>& model);
  Served served(size_t index) const;

  const BatcherConfig config_;
  ScoringQueue& queue_;
  const Clock& clock_;
  BatchCompletion* const completion_;
  ShadowCompletion* const shadow_completion_;
  std::atomic<FlaggedObserver*> flagged_observer_{nullptr};

  mutable std::mutex served_mutex_;           // guards each Slot::served
  std::vector<std::unique_ptr<Slot>> slots_;  // by model index; fixed at construction

  std::mutex former_mutex_;
  BatchFormer former_;

  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopping_{false};
  // try_score_inline only while the model's last forward took at most this.
  static constexpr std::chrono::microseconds kInlineComputeBound{1000};
  std::atomic<int64_t> drain_deadline_ns_{0};
  std::atomic<int> busy_workers_{0};
  std::mutex stop_mutex_;
};

}  // namespace vigil::scoring

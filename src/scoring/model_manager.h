// The model lifecycle: which version of the model is served, which (if any) shadows it, and
// how a new version gets in.
//
//   repository/<name>/<version>/model.pt
//        |  read every reload_interval_ms (thread "vigil-models")
//        v
//   seen --(model.pt unchanged for stable_ms)--> complete --(higher than served)--> prepare
//   prepare: model.yaml read again, inputs must match the served ones, TorchScript loaded,
//            a warm-up forward at the largest batch size must give finite scores in [0, 1]
//        |-- fails: refused (logged, counted, listed with its reason); the served version stays
//        '-- succeeds: swapped into the batcher between batches (workers switch at their next)
//
// A version being copied in is not loaded half-written: its model.pt must keep the same size
// and modification time for stable_ms (copy it in, or better, write it elsewhere and rename
// the version folder into place). A refused version is tried again only once its model.pt
// changes. Only higher versions are picked up by themselves; the repository API (load,
// unload) moves to any version, including back. A pinned model.version is never left by
// itself.
//
// The API calls run on the manager's thread, one at a time; their answers come back through
// a callback, so the HTTP io thread that asked never waits for a load.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "scoring/batcher.h"
#include "scoring/model.h"
#include "scoring/model_repository.h"
#include "scoring/scoring_config.h"

namespace vigil::scoring {

class ModelManager {
 public:
  // Loads one version's model file (TorchScript in the service; fakes in unit tests).
  using Loader = std::function<Result<std::shared_ptr<Model>>(const ModelInfo&)>;

  // What an API call came to: what was done, or why not (kNotFound: no such version;
  // kInvalidArgument: the version's files were refused; kFailedPrecondition: not allowed now,
  // e.g. unloading the only served version; kUnavailable: the manager is stopping).
  using Reply = Result<std::string>;
  using Done = std::function<void(const Reply&)>;

  // One row of the repository index (Open Inference Protocol's repository extension).
  struct VersionState {
    std::string version;
    std::string state;   // READY (served or shadow) or UNAVAILABLE
    std::string reason;  // "serving", "shadow", or why not
  };

  ModelManager(const ModelConfig& config, size_t warmup_batch_size, Loader loader,
               metrics::Registry& registry);
  ~ModelManager();  // stops
  ModelManager(const ModelManager&) = delete;
  ModelManager& operator=(const ModelManager&) = delete;

  // Loads the version to serve (model.version, else the highest one that loads; broken ones
  // are refused and the next lower tried) and model.shadow_version. Before the batcher exists.
  Status load_initial();
  std::shared_ptr<Model> served() const;
  std::shared_ptr<Model> shadow() const;

  // Swaps go to `batcher`'s model `index` from now on; then starts the watching thread.
  void start(Batcher* batcher, size_t index = 0);
  void stop();  // joins; pending API calls are answered kStopping

  const std::string& name() const { return config_.name; }
  // Reads the repository again (a few stat calls), so it is current even with the watcher off.
  std::vector<VersionState> index();

  // Serves `version` (empty: the highest one), or shadows with it when `shadow`. The model.pt
  // is taken as complete (no stability wait: the caller says it is). Serving an older version
  // is a rollback: the newer versions present are marked unloaded, so the watcher does not
  // move back to them (a version added later is picked up as usual).
  void load(const std::string& version, bool shadow, Done done);
  // Stops serving `version` (empty: the served one) and serves the highest other complete
  // version instead (kConflict when there is none); for the shadow version, ends shadowing.
  // An unloaded version is not picked up again until it is loaded.
  void unload(const std::string& version, Done done);

 private:
  struct Entry {
    VersionFile file;
    std::chrono::steady_clock::time_point stable_since{};
    std::string refused;    // why it was refused; cleared when its file changes
    bool unloaded = false;  // by request
  };

  void main();
  void poll();
  // Reads the repository into versions_; returns the versions now complete (stable).
  void scan(std::chrono::steady_clock::time_point now);
  // Loads, validates and warms `version` up; on failure records the refusal.
  Result<std::shared_ptr<Model>> prepare(int version);
  void serve(std::shared_ptr<Model> model);
  void set_shadow(std::shared_ptr<Model> model);
  Reply do_load(const std::string& version, bool shadow);
  Reply do_unload(const std::string& version);
  int served_version() const;
  int shadow_version() const;

  const ModelConfig config_;
  const size_t warmup_batch_size_;
  const Loader loader_;
  metrics::Counter& loaded_;
  metrics::Counter& refused_;
  metrics::Gauge& version_gauge_;
  metrics::Gauge& shadow_gauge_;

  mutable std::mutex mu_;  // guards everything below
  std::map<int, Entry> versions_;
  std::shared_ptr<Model> served_;
  std::shared_ptr<Model> shadow_;
  Batcher* batcher_ = nullptr;
  size_t index_ = 0;                         // the model's index in batcher_
  std::deque<std::function<void()>> calls_;  // API calls waiting for the thread
  bool stop_ = false;
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace vigil::scoring

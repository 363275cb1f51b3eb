// Recommender: serves a recommender model (tools/train_scout.py's TorchScript: its factors
// `users` [customers, dim], `items_t` [dim, items], `bias` and `popularity` [items] as buffers,
// its ids and each customer's seen items as attributes) behind POST /recommend. Requests wait
// in a bounded queue (full: refused, counted) and one worker thread, owned here, scores them in
// batches: what is queued, up to recommend.max_batch (batches form while the previous one
// runs), waiting up to recommend.max_delay_us after the oldest when that is set. Per batch: one
// matrix product in LibTorch (bias + users[rows] . items_t, an unknown customer's row replaced
// by the popularity) into buffers kept between batches; then per request its seen items set to
// -inf when it asks exclude_seen, and its top k selected in one pass, ties in item id order
// (what the model's own recommend() gives, tests/recommend).
//
// Versions. load() serves the highest <version>/model.pt of the model's folder. With a watch
// interval, a thread owned here reads the folder that often and loads a higher version once its
// model.pt has stayed the same (size and modification time) for `stable`, as the scoring
// model's watcher does (model.reload_interval_ms, model.stable_ms; while the highest new one
// is not stable yet, no lower one is loaded meanwhile); the next batch is scored
// with it (a batch is scored whole by one version, and each answer names its version). A
// version that does not load is refused (logged, counted) and the served one stays; it is
// tried again only once its model.pt changes. Only the recommender is touched: the scoring
// model and its batcher go on as they were.
//
// Threads: recommend() from any thread; `done` runs on the worker thread (or on the caller's,
// when refused) and must not block. stop() (and the destructor) answer what is still queued
// with an error and join the worker and the watcher.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "recommend/recommend_config.h"
#include "recommend/recommend_service.h"
#include "scoring/model_repository.h"

namespace vigil::recommend {

// How the recommender's folder is watched for new versions; interval 0: never (loaded once).
struct RecommenderWatch {
  std::chrono::milliseconds interval{0};
  std::chrono::milliseconds stable{2000};
};

class Recommender final : public RecommendService {
 public:
  using Watch = RecommenderWatch;

  // Loads the highest version of `config.model` under `repository`; an error names the path.
  static Result<std::unique_ptr<Recommender>> load(const std::string& repository,
                                                   const RecommendConfig& config,
                                                   metrics::Registry& registry, Watch watch = {});
  ~Recommender() override;
  Recommender(const Recommender&) = delete;
  Recommender& operator=(const Recommender&) = delete;

  // RecommendService's; false also when the queue holds recommend.queue_capacity requests.
  bool recommend(std::string customer_id, int k, bool exclude_seen, Done done) override;
  // Answers what is still queued with 503's error (shutting down) and joins the threads.
  void stop();

  const std::string& name() const override { return config_.model; }
  std::string version() const override;  // the version served now
  size_t items() const;                  // of the version served now

  struct Served;   // one loaded version (recommender.cpp)
  struct Buffers;  // the worker's, kept from batch to batch (recommender.cpp)

 private:
  struct Pending {
    std::string customer_id;
    int k;
    bool exclude_seen;
    Done done;
    std::chrono::steady_clock::time_point at;  // queued
  };
  // A version folder as the watcher last saw it.
  struct VersionEntry {
    scoring::VersionFile file;
    std::chrono::steady_clock::time_point stable_since;  // unchanged since
    std::string refused;  // why it did not load; cleared when its model.pt changes
  };
  Recommender(const RecommendConfig& config, Watch watch, std::string repository,
              std::string folder, metrics::Registry& registry);
  static Result<std::shared_ptr<const Served>> read_version(const std::string& folder, int number);
  std::shared_ptr<const Served> served() const;
  void run();
  void watch();
  void check_versions(std::chrono::steady_clock::time_point now);
  void score(const Served& model, std::vector<Pending>& batch);

  const RecommendConfig config_;
  const Watch watch_;
  const std::string repository_;
  const std::filesystem::path folder_;    // <repository>/<model>
  std::unique_ptr<Buffers> buffers_;      // the worker's
  std::map<int, VersionEntry> versions_;  // the watcher's (load() fills it first)
  metrics::Counter& answered_;
  metrics::Counter& cold_starts_;
  metrics::Counter& refused_;
  metrics::Counter& failed_;
  metrics::Counter& batches_;
  metrics::Gauge& depth_;
  metrics::Counter& loaded_;
  metrics::Counter& load_refused_;
  metrics::Gauge& version_gauge_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;            // the worker's
  std::condition_variable watch_cv_;      // the watcher's
  std::deque<Pending> queue_;             // guarded by mutex_
  bool stopping_ = false;                 // guarded by mutex_
  std::shared_ptr<const Served> served_;  // guarded by mutex_
  std::thread worker_;                    // last: started once the rest is built
  std::thread watcher_;
};

}  // namespace vigil::recommend

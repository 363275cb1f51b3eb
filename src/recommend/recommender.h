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
// Threads: recommend() from any thread; `done` runs on the worker thread (or on the caller's,
// when refused) and must not block. stop() (and the destructor) answer what is still queued
// with an error and join the worker.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "recommend/recommend_config.h"
#include "recommend/recommend_service.h"

namespace vigil::recommend {

class Recommender final : public RecommendService {
 public:
  // Loads the highest version of `config.model` under `repository`; an error names the path.
  static Result<std::unique_ptr<Recommender>> load(const std::string& repository,
                                                   const RecommendConfig& config,
                                                   metrics::Registry& registry);
  ~Recommender() override;
  Recommender(const Recommender&) = delete;
  Recommender& operator=(const Recommender&) = delete;

  // RecommendService's; false also when the queue holds recommend.queue_capacity requests.
  bool recommend(std::string customer_id, int k, bool exclude_seen, Done done) override;
  // Answers what is still queued with 503's error (shutting down) and joins the worker.
  void stop();

  const std::string& name() const override { return name_; }
  const std::string& version() const override { return version_; }
  size_t items() const { return item_ids_.size(); }

  class Impl;  // the LibTorch side (recommender.cpp)

 private:
  struct Pending {
    std::string customer_id;
    int k;
    bool exclude_seen;
    Done done;
    std::chrono::steady_clock::time_point at;  // queued
  };
  Recommender(std::unique_ptr<Impl> impl, const RecommendConfig& config,
              metrics::Registry& registry);
  void run();
  void score(std::vector<Pending>& batch);

  std::unique_ptr<Impl> impl_;
  const RecommendConfig config_;
  std::string name_;
  std::string version_;
  std::vector<std::string> item_ids_;
  std::unordered_map<std::string, int64_t> customer_rows_;
  metrics::Counter& answered_;
  metrics::Counter& cold_starts_;
  metrics::Counter& refused_;
  metrics::Counter& failed_;
  metrics::Counter& batches_;
  metrics::Gauge& depth_;

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;  // guarded by mutex_
  bool stopping_ = false;      // guarded by mutex_
  std::thread worker_;         // last: started once the rest is built
};

}  // namespace vigil::recommend

#include "recommend/recommender.h"

#include <ATen/Parallel.h>
#include <torch/script.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <utility>

#include "common/log.h"
#include "common/thread_name.h"
#include "scoring/model_repository.h"

namespace vigil::recommend {

class Recommender::Impl {
 public:
  torch::jit::script::Module module;
};

namespace {

std::vector<std::string> string_list(const torch::jit::script::Module& m, const char* name) {
  std::vector<std::string> out;
  if (!m.hasattr(name)) return out;
  for (const c10::IValue& v : m.attr(name).toListRef()) out.push_back(v.toStringRef());
  return out;
}

}  // namespace

Result<std::unique_ptr<Recommender>> Recommender::load(const std::string& repository,
                                                       const RecommendConfig& config,
                                                       metrics::Registry& registry) {
  using R = Result<std::unique_ptr<Recommender>>;
  const std::vector<int> versions = scoring::list_model_versions(repository, config.model);
  const std::string folder = (std::filesystem::path(repository) / config.model).string();
  if (versions.empty()) {
    return R::Error(StatusCode::kNotFound, "no <version>/model.pt under " + folder);
  }
  const std::string version = std::to_string(versions.back());
  const std::string path = folder + "/" + version + "/model.pt";
  auto impl = std::make_unique<Impl>();
  std::vector<std::string> customers, items;
  try {
    impl->module = torch::jit::load(path, torch::kCPU);
    impl->module.eval();
    if (!impl->module.find_method("recommend")) {
      return R::Error(path + ": no recommend(customers, k, exclude_seen) method");
    }
    customers = string_list(impl->module, "customer_ids");
    items = string_list(impl->module, "terminal_ids");
    if (items.empty()) items = string_list(impl->module, "item_ids");
  } catch (const std::exception& e) {
    return R::Error(path + ": " + e.what());
  }
  if (items.empty()) return R::Error(path + ": no terminal_ids (or item_ids) list");
  std::unique_ptr<Recommender> r(new Recommender(std::move(impl), config, registry));
  r->name_ = config.model;
  r->version_ = version;
  r->item_ids_ = std::move(items);
  r->customer_rows_.reserve(customers.size());
  for (size_t i = 0; i < customers.size(); ++i) {
    r->customer_rows_.emplace(std::move(customers[i]), static_cast<int64_t>(i));
  }
  r->worker_ = std::thread([p = r.get()] { p->run(); });
  logger("recommend")
      ->info("recommender {} version {} loaded: {} customers, {} items", r->name_, r->version_,
             r->customer_rows_.size(), r->item_ids_.size());
  return R(std::move(r));
}

Recommender::Recommender(std::unique_ptr<Impl> impl, const RecommendConfig& config,
                         metrics::Registry& registry)
    : impl_(std::move(impl)),
      config_(config),
      answered_(registry.counter("vigil_recommend_requests_total",
                                 "Recommendation requests, by outcome", {{"outcome", "ok"}})),
      cold_starts_(registry.counter("vigil_recommend_cold_starts_total",
                                    "Recommendations for an unknown customer (most popular "
                                    "items)")),
      refused_(registry.counter("vigil_recommend_requests_total",
                                "Recommendation requests, by outcome", {{"outcome", "refused"}})),
      failed_(registry.counter("vigil_recommend_requests_total",
                               "Recommendation requests, by outcome", {{"outcome", "failed"}})),
      batches_(registry.counter("vigil_recommend_batches_total",
                                "Forward passes of the recommender model")),
      depth_(registry.gauge("vigil_recommend_queue_depth",
                            "Recommendation requests waiting for the worker")) {}

Recommender::~Recommender() {
  stop();
}

bool Recommender::recommend(std::string customer_id, int k, bool exclude_seen, Done done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopping_ && queue_.size() < config_.queue_capacity) {
      queue_.push_back({std::move(customer_id), k, exclude_seen, std::move(done),
                        std::chrono::steady_clock::now()});
      depth_.set(static_cast<double>(queue_.size()));
      cv_.notify_one();
      return true;
    }
  }
  refused_.inc();
  return false;
}

void Recommender::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  std::deque<Pending> left;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    left.swap(queue_);
    depth_.set(0);
  }
  for (Pending& p : left) {
    failed_.inc();
    p.done(Result<Recommendation>::Error(StatusCode::kUnavailable, "server is shutting down"));
  }
}

void Recommender::run() {
  name_this_thread("vigil-recommend");
  at::set_num_threads(1);  // one core's worth, beside the scoring workers
  std::vector<Pending> batch;
  for (;;) {
    batch.clear();
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      // Up to max_batch, waiting at most max_delay after the oldest request.
      const auto until = queue_.front().at + config_.max_delay;
      cv_.wait_until(lock, until, [&] { return stopping_ || queue_.size() >= config_.max_batch; });
      const size_t n = std::min(queue_.size(), config_.max_batch);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      depth_.set(static_cast<double>(queue_.size()));
    }
    score(batch);
  }
}

void Recommender::score(std::vector<Pending>& batch) {
  c10::InferenceMode guard;
  for (const bool exclude : {false, true}) {
    std::vector<Pending*> group;
    int k = 1;
    for (Pending& p : batch) {
      if (p.exclude_seen != exclude) continue;
      group.push_back(&p);
      k = std::max(k, p.k);
    }
    if (group.empty()) continue;
    std::vector<int64_t> rows(group.size(), -1);
    for (size_t i = 0; i < group.size(); ++i) {
      auto it = customer_rows_.find(group[i]->customer_id);
      if (it != customer_rows_.end()) rows[i] = it->second;
    }
    std::vector<Recommendation> answers(group.size());
    std::string failure;
    try {
      const torch::Tensor customers =
          torch::from_blob(rows.data(), {static_cast<int64_t>(rows.size())}, torch::kInt64);
      const auto out = impl_->module.get_method("recommend")(
          std::vector<c10::IValue>{customers, static_cast<int64_t>(k), exclude});
      const auto tuple = out.toTuple();
      const torch::Tensor values = tuple->elements()[0].toTensor().contiguous();
      const torch::Tensor indices = tuple->elements()[1].toTensor().contiguous();
      const auto v = values.accessor<float, 2>();
      const auto ix = indices.accessor<int64_t, 2>();
      for (size_t i = 0; i < group.size(); ++i) {
        Recommendation& r = answers[i];
        r.cold_start = rows[i] < 0;
        const auto take = std::min<int64_t>(group[i]->k, values.size(1));
        for (int64_t j = 0; j < take; ++j) {
          const int64_t item = ix[static_cast<int64_t>(i)][j];
          if (item < 0 || item >= static_cast<int64_t>(item_ids_.size())) {
            failure = "item row " + std::to_string(item) + " out of range";
            break;
          }
          r.items.push_back(item_ids_[static_cast<size_t>(item)]);
          r.scores.push_back(v[static_cast<int64_t>(i)][j]);
        }
      }
    } catch (const std::exception& e) {
      failure = e.what();
    }
    batches_.inc();
    if (!failure.empty()) {
      static RateLimitedLog log{"recommend", std::chrono::milliseconds(5000)};
      log.error("recommender {} failed on a batch of {}: {}", name_, group.size(), failure);
      for (Pending* p : group) {
        failed_.inc();
        p->done(Result<Recommendation>::Error(StatusCode::kInternal,
                                              "the recommender failed: " + failure));
      }
      continue;
    }
    for (size_t i = 0; i < group.size(); ++i) {
      answered_.inc();
      if (answers[i].cold_start) cold_starts_.inc();
      group[i]->done(std::move(answers[i]));
    }
  }
}

}  // namespace vigil::recommend

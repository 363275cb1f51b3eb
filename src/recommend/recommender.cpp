#include "recommend/recommender.h"

#include <ATen/Parallel.h>
#include <torch/script.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <utility>

#include "common/log.h"
#include "common/thread_name.h"
#include "scoring/model_repository.h"

namespace vigil::recommend {

class Recommender::Impl {
 public:
  torch::jit::script::Module module;
  // Each customer's training items (CSR), for exclude_seen.
  std::vector<int64_t> seen_offsets;
  std::vector<int32_t> seen_items;
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
    if (impl->module.hasattr("seen_offsets") && impl->module.hasattr("seen_terminals")) {
      const torch::Tensor off = impl->module.attr("seen_offsets").toTensor().to(torch::kInt64);
      const torch::Tensor seen = impl->module.attr("seen_terminals").toTensor().to(torch::kInt32);
      impl->seen_offsets.assign(off.data_ptr<int64_t>(), off.data_ptr<int64_t>() + off.numel());
      impl->seen_items.assign(seen.data_ptr<int32_t>(), seen.data_ptr<int32_t>() + seen.numel());
    }
  } catch (const std::exception& e) {
    return R::Error(path + ": " + e.what());
  }
  if (items.empty()) return R::Error(path + ": no terminal_ids (or item_ids) list");
  const auto& off = impl->seen_offsets;
  const bool seen_ok =
      off.empty() || (off.size() == customers.size() + 1 && off.front() == 0 &&
                      std::is_sorted(off.begin(), off.end()) &&
                      off.back() == static_cast<int64_t>(impl->seen_items.size()) &&
                      std::all_of(impl->seen_items.begin(), impl->seen_items.end(), [&](int32_t t) {
                        return t >= 0 && static_cast<size_t>(t) < items.size();
                      }));
  if (!seen_ok) return R::Error(path + ": seen_offsets / seen_terminals do not fit the ids");
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

namespace {

// The first `k` of `row` (n scores) by score, then item id: what a stable sort of the row,
// best first, puts first. `top_values` / `top_items` are torch::topk's `kk` best, sorted
// (kk = k + 1 where the row has more than k items; any order among equal scores). Only where
// the (k+1)-th score equals the k-th (a tie across the cut) or two kept ones tie is the order
// decided again over the whole row.
void top_k(const float* row, int64_t n, int64_t k, int64_t kk, const float* top_values,
           const int64_t* top_items, std::vector<int64_t>& out_items,
           std::vector<float>& out_scores) {
  out_items.assign(top_items, top_items + k);
  bool ties = kk > k && top_values[k] == top_values[k - 1];
  for (int64_t j = 1; j < k && !ties; ++j) ties = top_values[j] == top_values[j - 1];
  if (ties) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) order[static_cast<size_t>(j)] = j;
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [row](int64_t a, int64_t b) {
      return row[a] > row[b] || (row[a] == row[b] && a < b);
    });
    out_items.assign(order.begin(), order.begin() + k);
  }
  out_scores.clear();
  for (int64_t item : out_items) out_scores.push_back(row[item]);
}

}  // namespace

void Recommender::score(std::vector<Pending>& batch) {
  c10::InferenceMode guard;
  std::vector<int64_t> rows(batch.size(), -1);
  int64_t k = 1;
  for (size_t i = 0; i < batch.size(); ++i) {
    auto it = customer_rows_.find(batch[i].customer_id);
    if (it != customer_rows_.end()) rows[i] = it->second;
    k = std::max<int64_t>(k, batch[i].k);
  }
  std::vector<Recommendation> answers(batch.size());
  std::string failure;
  try {
    // One matrix product for the whole batch: a row of scores per request.
    const torch::Tensor customers =
        torch::from_blob(rows.data(), {static_cast<int64_t>(rows.size())}, torch::kInt64);
    torch::Tensor scores = impl_->module.forward({customers}).toTensor().contiguous();
    const int64_t n = scores.size(1);
    if (scores.dim() != 2 || scores.size(0) != static_cast<int64_t>(rows.size()) ||
        n != static_cast<int64_t>(item_ids_.size())) {
      throw std::runtime_error("forward gave scores of the wrong shape");
    }
    float* data = scores.data_ptr<float>();
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!batch[i].exclude_seen || rows[i] < 0 || impl_->seen_offsets.empty()) continue;
      float* row = data + static_cast<int64_t>(i) * n;
      const auto c = static_cast<size_t>(rows[i]);
      for (int64_t s = impl_->seen_offsets[c]; s < impl_->seen_offsets[c + 1]; ++s) {
        row[impl_->seen_items[static_cast<size_t>(s)]] = -std::numeric_limits<float>::infinity();
      }
    }
    k = std::min(k, n);
    const int64_t kk = std::min(k + 1, n);  // one more: a tie across the cut shows
    const auto top = torch::topk(scores, kk, /*dim=*/1, /*largest=*/true, /*sorted=*/true);
    const torch::Tensor values = std::get<0>(top).contiguous();
    const torch::Tensor indices = std::get<1>(top).contiguous();
    std::vector<int64_t> items;
    std::vector<float> best;
    for (size_t i = 0; i < batch.size(); ++i) {
      const auto r = static_cast<int64_t>(i);
      top_k(data + r * n, n, k, kk, values.data_ptr<float>() + r * kk,
            indices.data_ptr<int64_t>() + r * kk, items, best);
      Recommendation& out = answers[i];
      out.cold_start = rows[i] < 0;
      const size_t take = std::min<size_t>(static_cast<size_t>(batch[i].k), items.size());
      for (size_t j = 0; j < take; ++j) {
        out.items.push_back(item_ids_[static_cast<size_t>(items[j])]);
        out.scores.push_back(best[j]);
      }
    }
  } catch (const std::exception& e) {
    failure = e.what();
  }
  batches_.inc();
  if (!failure.empty()) {
    static RateLimitedLog log{"recommend", std::chrono::milliseconds(5000)};
    log.error("recommender {} failed on a batch of {}: {}", name_, batch.size(), failure);
    for (Pending& p : batch) {
      failed_.inc();
      p.done(Result<Recommendation>::Error(StatusCode::kInternal,
                                           "the recommender failed: " + failure));
    }
    return;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    answered_.inc();
    if (answers[i].cold_start) cold_starts_.inc();
    batch[i].done(std::move(answers[i]));
  }
}

}  // namespace vigil::recommend

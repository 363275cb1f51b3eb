#include "recommend/recommender.h"

#include <ATen/Parallel.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <map>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "common/log.h"
#include "common/thread_name.h"
#include "scoring/model_repository.h"

namespace vigil::recommend {

// One loaded version of the model: what a batch reads. Immutable once loaded; the worker
// holds the one it scores a batch with, so a swap never changes a batch halfway.
struct Recommender::Served {
  std::string version;
  // The model's factors (buffers of its TorchScript module): a customer's scores are
  // bias + users[row] . items_t; an unknown customer's are the items' popularity.
  torch::Tensor users;       // [customers, dim] float32
  torch::Tensor items_t;     // [dim, items] float32
  torch::Tensor bias;        // [items] float32
  torch::Tensor popularity;  // [items] float32
  // Each customer's training items (CSR), for exclude_seen.
  std::vector<int64_t> seen_offsets;
  std::vector<int32_t> seen_items;
  std::vector<std::string> item_ids;
  std::unordered_map<std::string, int64_t> customer_rows;
};

// Kept from batch to batch (the worker's only): a batch of 64 over 10,000 items is 2.5 MB of
// scores, and allocating it afresh each time cost more in page faults than the product.
struct Recommender::Buffers {
  torch::Tensor gathered = torch::empty({0}, torch::kFloat32);  // [batch, dim]
  torch::Tensor scores = torch::empty({0}, torch::kFloat32);    // [batch, items]
};

namespace {

std::vector<std::string> string_list(const torch::jit::script::Module& m, const char* name) {
  std::vector<std::string> out;
  if (!m.hasattr(name)) return out;
  for (const c10::IValue& v : m.attr(name).toListRef()) out.push_back(v.toStringRef());
  return out;
}

// The module's float32 buffer `name`, contiguous, with `dims` dimensions; an error names it.
torch::Tensor factor(const torch::jit::script::Module& m, const char* name, int64_t dims) {
  if (!m.hasattr(name) || !m.attr(name).isTensor()) {
    throw std::runtime_error(std::string("no tensor attribute ") + name);
  }
  torch::Tensor t = m.attr(name).toTensor();
  if (t.dim() != dims || t.scalar_type() != torch::kFloat32) {
    throw std::runtime_error(std::string(name) + " is not a float32 tensor of " +
                             std::to_string(dims) + " dimension(s)");
  }
  return t.contiguous();
}

}  // namespace

Result<std::shared_ptr<const Recommender::Served>> Recommender::read_version(
    const std::string& folder, int number) {
  using R = Result<std::shared_ptr<const Served>>;
  const std::string path = folder + "/" + std::to_string(number) + "/model.pt";
  auto served = std::make_shared<Served>();
  served->version = std::to_string(number);
  std::vector<std::string> customers, items;
  try {
    torch::jit::script::Module module = torch::jit::load(path, torch::kCPU);
    customers = string_list(module, "customer_ids");
    items = string_list(module, "terminal_ids");
    if (items.empty()) items = string_list(module, "item_ids");
    if (items.empty()) return R::Error(path + ": no terminal_ids (or item_ids) list");
    served->users = factor(module, "users", 2);
    served->items_t = factor(module, "items_t", 2);
    served->bias = factor(module, "bias", 1);
    served->popularity = factor(module, "popularity", 1);
    const int64_t n = static_cast<int64_t>(items.size());
    if (served->users.size(0) != static_cast<int64_t>(customers.size()) ||
        served->items_t.size(0) != served->users.size(1) || served->items_t.size(1) != n ||
        served->bias.size(0) != n || served->popularity.size(0) != n) {
      return R::Error(path + ": users, items_t, bias and popularity do not fit the ids");
    }
    if (module.hasattr("seen_offsets") && module.hasattr("seen_terminals")) {
      const torch::Tensor off = module.attr("seen_offsets").toTensor().to(torch::kInt64);
      const torch::Tensor seen = module.attr("seen_terminals").toTensor().to(torch::kInt32);
      served->seen_offsets.assign(off.data_ptr<int64_t>(), off.data_ptr<int64_t>() + off.numel());
      served->seen_items.assign(seen.data_ptr<int32_t>(), seen.data_ptr<int32_t>() + seen.numel());
    }
  } catch (const std::exception& e) {
    return R::Error(path + ": " + e.what());
  }
  const auto& off = served->seen_offsets;
  const bool seen_ok =
      off.empty() ||
      (off.size() == customers.size() + 1 && off.front() == 0 &&
       std::is_sorted(off.begin(), off.end()) &&
       off.back() == static_cast<int64_t>(served->seen_items.size()) &&
       std::all_of(served->seen_items.begin(), served->seen_items.end(),
                   [&](int32_t t) { return t >= 0 && static_cast<size_t>(t) < items.size(); }));
  if (!seen_ok) return R::Error(path + ": seen_offsets / seen_terminals do not fit the ids");
  served->item_ids = std::move(items);
  served->customer_rows.reserve(customers.size());
  for (size_t i = 0; i < customers.size(); ++i) {
    served->customer_rows.emplace(std::move(customers[i]), static_cast<int64_t>(i));
  }
  return R(std::shared_ptr<const Served>(std::move(served)));
}

Result<std::unique_ptr<Recommender>> Recommender::load(const std::string& repository,
                                                       const RecommendConfig& config,
                                                       metrics::Registry& registry, Watch watch) {
  using R = Result<std::unique_ptr<Recommender>>;
  const std::string folder = (std::filesystem::path(repository) / config.model).string();
  const std::vector<scoring::VersionFile> files =
      scoring::scan_model_versions(repository, config.model);
  if (files.empty()) {
    return R::Error(StatusCode::kNotFound, "no <version>/model.pt under " + folder);
  }
  // The highest version: a broken one is an error here (at start, nothing else is served).
  const scoring::VersionFile& file = files.back();
  auto first = read_version(folder, file.version);
  if (!first.ok()) return R::Error(first.error());
  std::unique_ptr<Recommender> r(new Recommender(config, watch, repository, folder, registry));
  r->served_ = std::move(first.value());
  r->versions_[file.version] = {file, std::chrono::steady_clock::now(), ""};
  r->loaded_.inc();
  r->version_gauge_.set(file.version);
  logger("recommend")
      ->info("recommender {} version {} loaded: {} customers, {} items", config.model,
             r->served_->version, r->served_->customer_rows.size(), r->served_->item_ids.size());
  r->worker_ = std::thread([p = r.get()] { p->run(); });
  if (watch.interval.count() > 0) r->watcher_ = std::thread([p = r.get()] { p->watch(); });
  return R(std::move(r));
}

Recommender::Recommender(const RecommendConfig& config, Watch watch, std::string repository,
                         std::string folder, metrics::Registry& registry)
    : config_(config),
      watch_(watch),
      repository_(std::move(repository)),
      folder_(std::move(folder)),
      buffers_(std::make_unique<Buffers>()),
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
                            "Recommendation requests waiting for the worker")),
      loaded_(registry.counter("vigil_recommend_model_loads_total",
                               "Versions of the recommender model loaded or refused, by outcome",
                               {{"outcome", "loaded"}})),
      load_refused_(
          registry.counter("vigil_recommend_model_loads_total",
                           "Versions of the recommender model loaded or refused, by outcome",
                           {{"outcome", "refused"}})),
      version_gauge_(registry.gauge("vigil_recommend_model_version",
                                    "Version of the recommender model served")) {}

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

std::string Recommender::version() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return served_->version;
}

size_t Recommender::items() const {
  return served()->item_ids.size();
}

std::shared_ptr<const Recommender::Served> Recommender::served() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return served_;
}

void Recommender::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  watch_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  if (watcher_.joinable()) watcher_.join();
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
  std::shared_ptr<const Served> model;
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
      model = served_;  // the version this batch is scored with, whatever a swap does meanwhile
    }
    score(*model, batch);
    model.reset();  // a version swapped out meanwhile is freed now, not at the next batch
  }
}

void Recommender::watch() {
  name_this_thread("vigil-rec-watch");
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (watch_cv_.wait_for(lock, watch_.interval, [&] { return stopping_; })) return;
    }
    try {
      check_versions(std::chrono::steady_clock::now());
    } catch (const std::exception& e) {  // a folder that cannot be read: try again next time
      static RateLimitedLog log{"recommend", std::chrono::milliseconds(60000)};
      log.warn("recommender {}: cannot read {}: {}", config_.model, folder_.string(), e.what());
    }
  }
}

void Recommender::check_versions(std::chrono::steady_clock::time_point now) {
  // A version new or changed since the last look starts its stable time again (and may be
  // tried again if it was refused).
  std::map<int, VersionEntry> seen;
  for (const scoring::VersionFile& f : scoring::scan_model_versions(repository_, config_.model)) {
    auto it = versions_.find(f.version);
    seen[f.version] = it != versions_.end() && it->second.file == f
                          ? std::move(it->second)
                          : VersionEntry{f, now, std::string()};
  }
  versions_ = std::move(seen);
  const int current = std::stoi(served()->version);
  // The highest version above the served one not refused as it is, once its model.pt has
  // stayed the same for stable_ms (a lower one is not served meanwhile).
  for (auto it = versions_.rbegin(); it != versions_.rend() && it->first > current; ++it) {
    VersionEntry& e = it->second;
    if (!e.refused.empty()) continue;
    if (now - e.stable_since < watch_.stable) return;
    auto next = read_version(folder_.string(), it->first);
    if (!next.ok()) {
      e.refused = next.error();
      load_refused_.inc();
      logger("recommend")
          ->warn("recommender {} version {} refused, still serving {}: {}", config_.model,
                 it->first, current, e.refused);
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      served_ = std::move(next.value());
    }
    loaded_.inc();
    version_gauge_.set(it->first);
    logger("recommend")
        ->info("recommender {} version {} loaded (was {})", config_.model, it->first, current);
    return;
  }
}

namespace {

using Scored = std::pair<float, int64_t>;  // (score, item)

// Ranks above: a higher score, or the same score and a lower item id (a total order: the one a
// stable sort of the row, best first, gives).
struct RanksAbove {
  bool operator()(const Scored& a, const Scored& b) const {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  }
};

// The first `k` of `row` (n scores) in that order, best first, into `best`. One pass keeping
// the k best in a heap whose top is the worst kept: the items come in id order, so one scoring
// the same as the worst kept ranks below it and only a strictly higher score gets in: one
// compare per item against a threshold kept in a register. (torch::topk, which copies each row
// into pairs, took 1.0 ms for 64 rows of 10,000 on one thread, twice the matrix product, and
// orders ties as it likes.) A NaN score never gets in.
void top_k(const float* row, int64_t n, int64_t k, std::vector<Scored>& best) {
  const RanksAbove above;
  best.clear();
  int64_t j = 0;
  for (; j < n && static_cast<int64_t>(best.size()) < k; ++j) {
    if (std::isnan(row[j])) continue;
    best.emplace_back(row[j], j);
    std::push_heap(best.begin(), best.end(), above);
  }
  if (best.empty()) return;
  float worst = best.front().first;
  // Past the first few hundred items almost none gets in: a block of them is first compared
  // against the threshold at once, four at a time in vector registers (GCC's and Clang's
  // vector extensions: SSE here, NEON on Arm), and only a block where one is higher is walked
  // item by item. Measured with perf under POST /recommend at 64 connections: the item-by-item
  // walk was 13% of the process's samples.
  using Floats = float __attribute__((vector_size(16)));
  using Masks = int32_t __attribute__((vector_size(16)));
  constexpr int64_t kBlock = 16;
  while (j < n) {
    if (j + kBlock <= n) {
      const Floats threshold = {worst, worst, worst, worst};
      Masks higher = {0, 0, 0, 0};
      for (int64_t b = 0; b < kBlock; b += 4) {
        Floats x;
        std::memcpy(&x, row + j + b, sizeof x);
        higher |= x > threshold;  // NaN compares false: it never gets in
      }
      if ((higher[0] | higher[1] | higher[2] | higher[3]) == 0) {
        j += kBlock;
        continue;
      }
    }
    for (const int64_t end = std::min(n, j + kBlock); j < end; ++j) {
      const float x = row[j];
      if (!(x > worst)) continue;
      std::pop_heap(best.begin(), best.end(), above);
      best.back() = {x, j};
      std::push_heap(best.begin(), best.end(), above);
      worst = best.front().first;
    }
  }
  std::sort_heap(best.begin(), best.end(), above);
}

}  // namespace

void Recommender::score(const Served& m, std::vector<Pending>& batch) {
  c10::InferenceMode guard;
  const auto b = static_cast<int64_t>(batch.size());
  std::vector<int64_t> rows(batch.size(), -1);
  std::vector<int64_t> gather(batch.size(), 0);  // an unknown customer's row is replaced
  for (size_t i = 0; i < batch.size(); ++i) {
    auto it = m.customer_rows.find(batch[i].customer_id);
    if (it != m.customer_rows.end()) gather[i] = rows[i] = it->second;
  }
  std::vector<Recommendation> answers(batch.size());
  std::string failure;
  Buffers& buf = *buffers_;
  try {
    // One matrix product for the whole batch, a row of scores per request, into the buffers
    // kept from the last batch (resize_ keeps their storage when it is large enough).
    const int64_t n = m.items_t.size(1);
    buf.gathered.resize_({b, m.users.size(1)});
    buf.scores.resize_({b, n});
    if (m.users.size(0) > 0) {
      at::index_select_out(buf.gathered, m.users, 0,
                           torch::from_blob(gather.data(), {b}, torch::kInt64));
    } else {
      buf.gathered.zero_();  // no customers: every request is a cold start
    }
    at::addmm_out(buf.scores, m.bias, buf.gathered, m.items_t);
    float* data = buf.scores.data_ptr<float>();
    const float* popularity = m.popularity.data_ptr<float>();
    std::vector<Scored> best;
    for (size_t i = 0; i < batch.size(); ++i) {
      float* row = data + static_cast<int64_t>(i) * n;
      Recommendation& out = answers[i];
      out.version = m.version;
      out.cold_start = rows[i] < 0;
      if (out.cold_start) {
        std::copy(popularity, popularity + n, row);
      } else if (batch[i].exclude_seen && !m.seen_offsets.empty()) {
        const auto c = static_cast<size_t>(rows[i]);
        for (int64_t s = m.seen_offsets[c]; s < m.seen_offsets[c + 1]; ++s) {
          row[m.seen_items[static_cast<size_t>(s)]] = -std::numeric_limits<float>::infinity();
        }
      }
      top_k(row, n, std::min<int64_t>(batch[i].k, n), best);
      for (const Scored& item : best) {
        out.items.push_back(m.item_ids[static_cast<size_t>(item.second)]);
        out.scores.push_back(item.first);
      }
    }
  } catch (const std::exception& e) {
    failure = e.what();
  }
  batches_.inc();
  if (!failure.empty()) {
    static RateLimitedLog log{"recommend", std::chrono::milliseconds(5000)};
    log.error("recommender {} version {} failed on a batch of {}: {}", config_.model, m.version,
              batch.size(), failure);
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

#include "scoring/model_manager.h"

#include <algorithm>
#include <cmath>

#include "common/log.h"
#include "common/thread_name.h"

namespace vigil::scoring {

namespace {

int parse_version(const std::string& v) {
  if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) {
    return -1;
  }
  return std::stoi(v);
}

}  // namespace

ModelManager::ModelManager(const ModelConfig& config, size_t warmup_batch_size, Loader loader,
                           metrics::Registry& registry)
    : config_(config),
      warmup_batch_size_(std::max<size_t>(warmup_batch_size, 1)),
      loader_(std::move(loader)),
      loaded_(registry.counter("vigil_model_loads_total",
                               "Model versions loaded (served or shadow), or refused",
                               {{"result", "loaded"}, {"model", config.name}})),
      refused_(registry.counter("vigil_model_loads_total",
                                "Model versions loaded (served or shadow), or refused",
                                {{"result", "refused"}, {"model", config.name}})),
      version_gauge_(registry.gauge("vigil_model_version", "Version of the served model",
                                    {{"model", config.name}})),
      shadow_gauge_(registry.gauge("vigil_model_shadow_version",
                                   "Version of the shadow model (0 = none)",
                                   {{"model", config.name}})) {}

ModelManager::~ModelManager() {
  stop();
}

Status ModelManager::load_initial() {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    scan(now);
    // At start-up every version present counts as complete: there is nothing to fall back on.
    for (auto& [v, e] : versions_) e.stable_since = now - config_.stable;
  }
  std::vector<int> candidates;
  if (!config_.version.empty()) {
    const int pinned = parse_version(config_.version);
    if (pinned < 0 || versions_.count(pinned) == 0) {
      return Status::Error("model " + config_.name + ": version " + config_.version +
                           " has no model.pt under " + config_.repository);
    }
    candidates.push_back(pinned);
  } else {
    for (auto it = versions_.rbegin(); it != versions_.rend(); ++it) {
      if (std::to_string(it->first) != config_.shadow_version) candidates.push_back(it->first);
    }
  }
  if (candidates.empty()) {
    return Status::Error("model " + config_.name + ": no version folder with a model.pt under " +
                         config_.repository + "/" + config_.name);
  }
  std::string why;
  for (int v : candidates) {
    auto model = prepare(v);
    if (model) {
      serve(std::move(model.value()));
      break;
    }
    why += (why.empty() ? "" : "\n") + model.error();
  }
  if (!served()) return Status::Error(why);
  if (!config_.shadow_version.empty()) {
    const int sv = parse_version(config_.shadow_version);
    if (versions_.count(sv) == 0) {
      return Status::Error("model.shadow_version " + config_.shadow_version +
                           " has no model.pt under " + config_.repository + "/" + config_.name);
    }
    auto model = prepare(sv);
    if (!model) return Status::Error("shadow " + model.error());
    set_shadow(std::move(model.value()));
  }
  return Status::Ok();
}

std::shared_ptr<Model> ModelManager::served() const {
  std::lock_guard<std::mutex> lock(mu_);
  return served_;
}

std::shared_ptr<Model> ModelManager::shadow() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shadow_;
}

void ModelManager::start(Batcher* batcher, size_t index) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    batcher_ = batcher;
    index_ = index;
  }
  thread_ = std::thread([this] {
    name_this_thread("vigil-models");
    main();
  });
}

void ModelManager::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::deque<std::function<void()>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(calls_);
    batcher_ = nullptr;
  }
  for (auto& call : left) call();  // answers kStopping (stop_ is set)
}

void ModelManager::main() {
  auto next_poll = std::chrono::steady_clock::now() + config_.reload_interval;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (!calls_.empty()) {
      auto call = std::move(calls_.front());
      calls_.pop_front();
      lock.unlock();
      call();
      lock.lock();
      continue;
    }
    if (config_.reload_interval.count() > 0 && std::chrono::steady_clock::now() >= next_poll) {
      lock.unlock();
      poll();
      lock.lock();
      next_poll = std::chrono::steady_clock::now() + config_.reload_interval;
      continue;
    }
    if (config_.reload_interval.count() > 0) {
      cv_.wait_until(lock, next_poll, [this] { return stop_ || !calls_.empty(); });
    } else {
      cv_.wait(lock, [this] { return stop_ || !calls_.empty(); });
    }
  }
}

void ModelManager::scan(std::chrono::steady_clock::time_point now) {
  std::map<int, Entry> seen;
  for (const VersionFile& f : scan_model_versions(config_.repository, config_.name)) {
    auto it = versions_.find(f.version);
    if (it != versions_.end() && it->second.file == f) {
      seen[f.version] = it->second;
      continue;
    }
    Entry e;  // new, or its model.pt changed: the stability wait (and any refusal) starts over
    e.file = f;
    e.stable_since = now;
    if (it != versions_.end()) e.unloaded = it->second.unloaded;
    seen[f.version] = e;
  }
  versions_.swap(seen);
}

void ModelManager::poll() {
  const auto now = std::chrono::steady_clock::now();
  int candidate = -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    scan(now);
    if (!config_.version.empty() || !served_) return;  // pinned: never moves by itself
    const int current = std::stoi(served_->info().version);
    for (auto it = versions_.rbegin(); it != versions_.rend(); ++it) {
      const Entry& e = it->second;
      if (it->first <= current) break;
      if (!e.refused.empty() || e.unloaded || now - e.stable_since < config_.stable) continue;
      if (shadow_ && std::to_string(it->first) == shadow_->info().version) continue;
      candidate = it->first;
      break;
    }
  }
  if (candidate < 0) return;
  auto model = prepare(candidate);
  if (model) serve(std::move(model.value()));
}

Result<std::shared_ptr<Model>> ModelManager::prepare(int version) {
  using R = Result<std::shared_ptr<Model>>;
  const std::string v = std::to_string(version);
  auto refuse = [&](const std::string& why) {
    logger("models")->error("model {} version {} refused, {}: {}", config_.name, v,
                            served() ? "version " + served()->info().version + " stays served"
                                     : std::string("nothing served yet"),
                            why);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = versions_.find(version); it != versions_.end()) it->second.refused = why;
    }
    // Counted after the reason is recorded: whoever sees the count also finds the reason.
    refused_.inc();
    return R::Error("model " + config_.name + " version " + v + ": " + why);
  };

  auto info = load_model_info(config_.repository, config_.name, v);
  if (!info) return refuse(info.error());
  if (auto current = served()) {
    if (current->info().input_names != info->input_names) {
      return refuse("its model.yaml changes the input features; a restart serves it");
    }
    if (current->info().feature_spec_hash != info->feature_spec_hash) {
      return refuse("it was trained on feature spec '" + info->feature_spec_hash +
                    "', not the running '" + current->info().feature_spec_hash +
                    "'; a restart serves it");
    }
  }
  auto model = loader_(*info);
  if (!model) return refuse(model.error());

  // Warm-up at the largest batch, on the baseline (the training mean) when model.yaml has one:
  // the scores must be finite probabilities. The first passes also let TorchScript settle.
  const ModelInfo& mi = model.value()->info();
  const size_t rows = warmup_batch_size_, width = mi.width();
  std::vector<float> input(rows * width, 0.0f);
  if (mi.baseline.size() == width) {
    for (size_t r = 0; r < rows; ++r)
      std::copy(mi.baseline.begin(), mi.baseline.end(), &input[r * width]);
  }
  std::vector<float> out(rows, 0.0f);
  auto session = model.value()->new_session();
  for (int pass = 0; pass < 3; ++pass) {
    Status st = session->score(input.data(), rows, out.data());
    if (!st.ok()) return refuse("warm-up forward failed: " + st.message());
  }
  for (float s : out) {
    if (!std::isfinite(s) || s < 0.0f || s > 1.0f) {
      return refuse("warm-up scores are not probabilities (got " + std::to_string(s) + ")");
    }
  }
  loaded_.inc();
  return model;
}

void ModelManager::serve(std::shared_ptr<Model> model) {
  const ModelInfo& mi = model->info();
  Batcher* batcher = nullptr;
  size_t index = 0;
  std::string before;
  {
    std::lock_guard<std::mutex> lock(mu_);
    before = served_ ? served_->info().version : "";
    served_ = model;
    batcher = batcher_;
    index = index_;
  }
  // The gauge moves first, so whoever sees the batcher on the new version sees the gauge agree.
  try {
    version_gauge_.set(std::stod(mi.version));
  } catch (...) {
  }
  if (batcher) batcher->swap_model(model, index);
  if (before.empty()) {
    logger("models")->info("model {} version {} loaded on {} ({} inputs, threshold {})", mi.name,
                           mi.version, mi.device, mi.width(), mi.threshold);
  } else {
    logger("models")->info("now serving model {} version {} (was {})", mi.name, mi.version, before);
  }
}

void ModelManager::set_shadow(std::shared_ptr<Model> model) {
  Batcher* batcher = nullptr;
  size_t index = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shadow_ = model;
    batcher = batcher_;
    index = index_;
  }
  shadow_gauge_.set(model ? std::stod(model->info().version) : 0.0);
  if (model)
    logger("models")->info("model {} version {} shadows every batch", config_.name,
                           model->info().version);
  if (batcher) batcher->set_shadow(std::move(model), index);
}

int ModelManager::served_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return served_ ? std::stoi(served_->info().version) : -1;
}

int ModelManager::shadow_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shadow_ ? std::stoi(shadow_->info().version) : -1;
}

std::vector<ModelManager::VersionState> ModelManager::index() {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  scan(now);
  const std::string served = served_ ? served_->info().version : "";
  const std::string shadow = shadow_ ? shadow_->info().version : "";
  std::vector<VersionState> out;
  for (auto it = versions_.rbegin(); it != versions_.rend(); ++it) {
    const std::string v = std::to_string(it->first);
    const Entry& e = it->second;
    if (v == served) {
      out.push_back({v, "READY", "serving"});
    } else if (v == shadow) {
      out.push_back({v, "READY", "shadow"});
    } else if (!e.refused.empty()) {
      out.push_back({v, "UNAVAILABLE", "refused: " + e.refused});
    } else if (e.unloaded) {
      out.push_back({v, "UNAVAILABLE", "unloaded by request"});
    } else if (now - e.stable_since < config_.stable) {
      out.push_back({v, "UNAVAILABLE",
                     "model.pt changed less than " + std::to_string(config_.stable.count()) +
                         " ms ago (still being copied?)"});
    } else {
      out.push_back({v, "UNAVAILABLE", "not loaded (version " + served + " is served)"});
    }
  }
  // The served model stays in memory even if its folder was removed.
  if (!served.empty() && std::none_of(out.begin(), out.end(),
                                      [&](const VersionState& s) { return s.version == served; })) {
    out.push_back({served, "READY", "serving (its folder was removed)"});
  }
  return out;
}

void ModelManager::load(const std::string& version, bool shadow, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stop_ && thread_.joinable()) {
      calls_.push_back([this, version, shadow, done = std::move(done)] {
        done(stop_ ? Reply::Error(StatusCode::kUnavailable, "shutting down")
                   : do_load(version, shadow));
      });
      cv_.notify_all();
      return;
    }
  }
  done(Reply::Error(StatusCode::kUnavailable, "the model manager is not running"));
}

void ModelManager::unload(const std::string& version, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stop_ && thread_.joinable()) {
      calls_.push_back([this, version, done = std::move(done)] {
        done(stop_ ? Reply::Error(StatusCode::kUnavailable, "shutting down") : do_unload(version));
      });
      cv_.notify_all();
      return;
    }
  }
  done(Reply::Error(StatusCode::kUnavailable, "the model manager is not running"));
}

ModelManager::Reply ModelManager::do_load(const std::string& version, bool shadow) {
  int v = -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    scan(std::chrono::steady_clock::now());
    if (version.empty()) {
      if (versions_.empty())
        return Reply::Error(StatusCode::kNotFound, "model " + config_.name + " has no version");
      v = versions_.rbegin()->first;
    } else {
      v = parse_version(version);
      if (v < 0 || versions_.count(v) == 0) {
        return Reply::Error(StatusCode::kNotFound,
                            "model " + config_.name + " has no version '" + version + "'");
      }
    }
  }
  const std::string vs = std::to_string(v);
  if (shadow ? v == shadow_version() : v == served_version()) {
    return Reply("version " + vs + " is already " + (shadow ? "the shadow" : "served"));
  }
  if (shadow && v == served_version()) {
    return Reply::Error(StatusCode::kFailedPrecondition,
                        "version " + vs + " is served; it cannot also be its shadow");
  }
  auto model = prepare(v);  // refusals are recorded and counted there
  if (!model) return Reply::Error(StatusCode::kInvalidArgument, model.error());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = versions_.find(v); it != versions_.end()) {
      it->second.unloaded = false;
      it->second.refused.clear();
    }
    // Going back to an older version is a rollback: the newer ones present now are not picked
    // up again by themselves (a version added later still is).
    if (!shadow) {
      for (auto it = versions_.upper_bound(v); it != versions_.end(); ++it) {
        it->second.unloaded = true;
      }
    }
  }
  if (shadow) {
    set_shadow(std::move(model.value()));
    return Reply("version " + vs + " shadows version " + std::to_string(served_version()));
  }
  if (v == shadow_version()) set_shadow(nullptr);  // promoted
  serve(std::move(model.value()));
  return Reply("version " + vs + " is served");
}

ModelManager::Reply ModelManager::do_unload(const std::string& version) {
  const int served = served_version();
  const int v = version.empty() ? served : parse_version(version);
  const auto now = std::chrono::steady_clock::now();
  std::vector<int> fallbacks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    scan(now);
    const bool known =
        versions_.count(v) || v == served || (shadow_ && v == std::stoi(shadow_->info().version));
    if (v < 0 || !known) {
      return Reply::Error(StatusCode::kNotFound,
                          "model " + config_.name + " has no version '" + version + "'");
    }
    if (auto it = versions_.find(v); it != versions_.end()) it->second.unloaded = true;
    for (auto it = versions_.rbegin(); it != versions_.rend(); ++it) {
      const Entry& e = it->second;
      if (it->first != v && e.refused.empty() && !e.unloaded &&
          !(shadow_ && it->first == std::stoi(shadow_->info().version))) {
        fallbacks.push_back(it->first);
      }
    }
  }
  if (v == shadow_version()) {
    set_shadow(nullptr);
    logger("models")->info("model {} version {} no longer shadows", config_.name, v);
    return Reply("version " + std::to_string(v) + " no longer shadows");
  }
  if (v != served) return Reply("version " + std::to_string(v) + " is not loaded");
  for (int f : fallbacks) {
    auto model = prepare(f);
    if (!model) continue;
    serve(std::move(model.value()));
    return Reply("version " + std::to_string(v) + " unloaded; version " + std::to_string(f) +
                 " is served");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = versions_.find(v); it != versions_.end()) it->second.unloaded = false;
  return Reply::Error(StatusCode::kFailedPrecondition,
                      "version " + std::to_string(v) +
                          " is the only version that can be served; load another first");
}

}  // namespace vigil::scoring

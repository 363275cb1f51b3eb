#include "app/service.h"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "app/logging.h"
#include "common/files.h"
#include "common/thread_name.h"
#include "http/server.h"
#include "live/live_events.h"
#include "scoring/model_repository.h"
#include "scoring/torch_model.h"
#include "sinks/kafka_sink.h"

namespace vigil::app {

Service::Service(const config::AppConfig& config)
    : config_(config), offsets_(config.kafka.enabled ? config.kafka.all_routes().size() : 1) {}

Result<std::unique_ptr<Service>> Service::create(const config::AppConfig& config, Options options) {
  std::unique_ptr<Service> s(new Service(config));
  Status st = s->start(std::move(options));
  if (!st.ok()) {
    s->stop();
    return Result<std::unique_ptr<Service>>::Error(st.message());
  }
  return Result<std::unique_ptr<Service>>(std::move(s));
}

// Start-up order: the model (nothing else is worth starting without it), the queue, the sinks
// and the delivery stage, the workers that feed them, the side-port, then the source.
Status Service::start(Options options) {
  auto models = load_models(options.model);
  if (!models) return Status::Error(models.error());
  if (config_.kafka.enabled) {
    Status st = plan_routes(models.value());
    if (!st.ok()) return st;
  }
  queue_ = std::make_unique<scoring::ScoringQueue>(config_.scoring.queue(), SteadyClock::instance(),
                                                   registry_);
  if (config_.redis.enabled()) {
    auto redis = sinks::RedisSink::Create(config_.redis, registry_);
    if (!redis) return Status::Error(redis.error());
    redis_ = std::move(redis.value());
    redis_->start();
  }
  Status delivery = start_delivery();
  if (!delivery.ok()) return delivery;
  start_scoring(std::move(models.value()));
  // The side-port comes up before the brokers are reached: /health answers, /ready explains
  // what start-up waits for, and /predict already scores.
  if (config_.http.enabled) {
    Status st = start_http();
    if (!st.ok()) return st;
  }
  if (config_.kafka.enabled) {
    Status st = start_source(options.interrupted);
    if (!st.ok()) return st;
  }
  watchdog_ = std::make_unique<scoring::Watchdog>(*batcher_, SteadyClock::instance(),
                                                  config_.scoring.watchdog(), registry_);
  watchdog_->start();
  // The side-port's threads read it from now on (they started before it existed).
  watchdog_view_.store(watchdog_.get(), std::memory_order_release);
  return Status::Ok();
}

Status Service::plan_routes(const std::vector<std::shared_ptr<scoring::Model>>& models) {
  std::string errors;
  auto refuse = [&](const std::string& why) { errors += (errors.empty() ? "" : "\n") + why; };
  size_t with_features = 0;
  for (kafka::Route& route : config_.kafka.all_routes()) {
    RouteParts part;
    if (!route.model.empty()) {
      auto it = std::find_if(models.begin(), models.end(),
                             [&](const auto& m) { return m->info().name == route.model; });
      if (it == models.end()) {
        refuse("kafka.routes: '" + route.input_topic + "' is scored by '" + route.model +
               "', which is not a model served (model.name, model.also_serve)");
        continue;
      }
      part.model = static_cast<uint16_t>(it - models.begin());
    }
    const scoring::ModelInfo& info = models[part.model]->info();
    route.model = info.name;
    part.route = std::move(route);
    part.schema = std::make_unique<codec::FeatureSchema>(info.input_names);
    if (const std::string& path = info.feature_spec_path; !path.empty()) {
      auto spec = features::load_feature_spec(path);
      if (!spec) {
        refuse(spec.error());
        continue;
      }
      if (spec->terminal && !config_.redis.enabled()) {
        refuse(path +
               ": the model takes terminal risk features, whose state every instance shares "
               "in Redis: set redis.url");
      }
      ++with_features;
      logger("vigil")->info(
          "velocity features from {} (spec {}): records of '{}' are raw transactions keyed "
          "by '{}'",
          path, spec->hash(), part.route.input_topic, spec->entity);
      part.feature_spec = std::move(spec.value());
    }
    routes_.push_back(std::move(part));
  }
  if (with_features > 1) {
    // Their state, snapshots, shared terminal state and metrics would need a key per route.
    refuse(
        "kafka.routes: velocity features are computed for one topic per process; route the "
        "others to models of ready-made features, or run another vigil for them");
  }
  return errors.empty() ? Status::Ok() : Status::Error(errors);
}

Result<std::vector<std::shared_ptr<scoring::Model>>> Service::load_models(
    std::shared_ptr<scoring::Model> given) {
  using R = Result<std::vector<std::shared_ptr<scoring::Model>>>;
  std::vector<std::shared_ptr<scoring::Model>> served;
  if (given) {
    served.push_back(std::move(given));
  } else {
    scoring::set_torch_intra_op_threads(config_.model.intra_op_threads);
    const scoring::TorchModelOptions torch{config_.model.device, config_.model.intra_op_threads,
                                           64};
    std::vector<std::string> names{config_.model.name};
    for (const std::string& n : config_.model.also_served()) {
      if (n != "*") {
        names.push_back(n);
        continue;
      }
      for (const std::string& m : scoring::list_scoring_models(config_.model.repository)) {
        if (m != config_.model.name && m != config_.recommend.model) names.push_back(m);
      }
    }
    // Every model is loaded before any is refused: the error lists them all.
    std::string errors;
    for (const std::string& n : config_.model.pinned_or_shadowed()) {
      if (std::find(names.begin(), names.end(), n) == names.end()) {
        errors += std::string(errors.empty() ? "" : "\n") +
                  "model.also_versions/also_shadow_versions: '" + n +
                  "' is not a model served (model.also_serve)";
      }
    }
    for (const std::string& name : names) {
      const scoring::ModelConfig mc = config_.model.for_model(name);
      auto manager = std::make_unique<scoring::ModelManager>(
          mc, config_.scoring.max_batch_size,
          [torch](const scoring::ModelInfo& info) {
            return scoring::load_torch_model(info, torch);
          },
          registry_);
      Status st = manager->load_initial();
      if (!st.ok()) {
        errors += (errors.empty() ? "" : "\n") + st.message();
        continue;
      }
      served.push_back(manager->served());
      models_.push_back(std::move(manager));
    }
    if (!errors.empty()) return R::Error(errors);
    if (served.size() > 1) {
      std::string list;
      for (const auto& m : served) list += (list.empty() ? "" : ", ") + m->info().name;
      logger("vigil")->info("serving {} models: {} (the first is the default)", served.size(),
                            list);
    }
  }
  const auto& mi = served.front()->info();
  auto log = logger("vigil");
  if (config_.explain.top_k > mi.width()) {
    log->warn("explain.top_k {} is more than the model's {} inputs: every input is listed",
              config_.explain.top_k, mi.width());
  }
  if (config_.explain.top_k > 0 && mi.baseline.size() != mi.width()) {
    log->warn("explain.top_k is set but model.yaml has no baseline: scores carry no reasons");
  }
  return served;
}

// The delivery stage is the one exit for scores, streamed or HTTP; without Kafka it has no
// producer and caches HTTP scores in Redis.
Status Service::start_delivery() {
  bootstrap_ = config_.kafka.brokers;
  if (config_.kafka.enabled && config_.kafka.is_embedded()) {
    const int parts = config_.kafka.embedded.partitions;
    std::vector<kafka::TopicSpec> topics;
    auto add = [&](const std::string& t) {
      auto same = [&](const kafka::TopicSpec& e) { return e.name == t; };
      if (std::none_of(topics.begin(), topics.end(), same)) topics.push_back({t, parts});
    };
    for (const RouteParts& r : routes_) {
      add(r.route.input_topic);
      add(r.route.output_topic);
    }
    for (const std::string* t : {&config_.kafka.output_topic, &config_.kafka.dlq_topic,
                                 &config_.kafka.shadow_topic, &config_.kafka.reports_topic}) {
      add(*t);
    }
    auto cluster = kafka::EmbeddedCluster::start(config_.kafka.embedded.brokers, topics);
    if (!cluster) return Status::Error(cluster.error());
    embedded_ = std::move(cluster.value());
    bootstrap_ = embedded_->bootstrap();
    logger("vigil")->info("embedded Kafka ({} brokers, {} partitions per topic) listening at {}",
                          config_.kafka.embedded.brokers, parts, bootstrap_);
    if (!config_.kafka.embedded.bootstrap_file.empty()) {
      Status w = write_file_atomically(config_.kafka.embedded.bootstrap_file, bootstrap_ + "\n");
      if (!w.ok()) return w;
    }
  }
  delivery::DeliveryConfig dc;
  if (!routes_.empty()) dc.input_topics.clear();
  for (const RouteParts& r : routes_) dc.input_topics.push_back(r.route.input_topic);
  dc.publish_http_scores = config_.http.publish_scores;
  dc.log_features = config_.features.log;
  sinks::ProducerFactory make_producer;
  if (config_.kafka.enabled) {
    sinks::KafkaSinkConfig kc{bootstrap_,
                              config_.kafka.output_topic,
                              config_.kafka.dlq_topic,
                              config_.kafka.shadow_topic,
                              config_.kafka.producer,
                              {}};
    for (const RouteParts& r : routes_) kc.outputs.push_back(r.route.output_topic);
    make_producer = [this, kc](sinks::DeliveryListener& listener) {
      auto sink = sinks::KafkaSink::create(kc, listener, registry_);
      if (!sink) return Result<std::unique_ptr<sinks::Producer>>::Error(sink.error());
      return Result<std::unique_ptr<sinks::Producer>>(std::move(sink.value()));
    };
  }
  auto stage =
      delivery::DeliveryStage::create(dc, make_producer, redis_.get(), offsets_, registry_);
  if (!stage) return Status::Error(stage.error());
  delivery_ = std::move(stage.value());
  delivery_->start();
  return Status::Ok();
}

void Service::start_scoring(std::vector<std::shared_ptr<scoring::Model>> models) {
  batcher_ = std::make_unique<scoring::Batcher>(config_.scoring.batcher(config_.explain), *queue_,
                                                std::move(models), SteadyClock::instance(),
                                                registry_, delivery_.get(), delivery_.get());
  for (size_t i = 0; i < models_.size(); ++i) {
    batcher_->set_shadow(models_[i]->shadow(), i);
    models_[i]->start(batcher_.get(), i);
  }
  batcher_->start();
  logger("vigil")->info("scoring: {} worker(s), max batch {}, max delay {} us, queue capacity {}",
                        batcher_->worker_count(), config_.scoring.max_batch_size,
                        config_.scoring.max_delay.count(), config_.scoring.queue_capacity);
}

Status Service::start_source(const std::function<bool()>& interrupted) {
  Status st = delivery_->wait_for_brokers(config_.kafka.startup_timeout, interrupted);
  if (!st.ok()) return st;
  for (size_t i = 0; i < routes_.size(); ++i) {
    st = start_route(i);
    if (!st.ok()) return st;
  }
  consuming_.store(true, std::memory_order_release);
  return Status::Ok();
}

Status Service::start_route(size_t index) {
  RouteParts& part = routes_[index];
  kafka::KafkaConfig kc = config_.kafka;
  kc.input_topic = part.route.input_topic;
  kc.output_topic = part.route.output_topic;
  kc.group_id = part.route.group_id;
  consumers::SourceRoute route;
  route.index = static_cast<uint16_t>(index);
  route.model = part.model;
  // With kafka.routes every consumer series names its topic; without, none does (as before).
  if (routes_.size() > 1) route.labels = {{"topic", kc.input_topic}};
  auto source = consumers::KafkaSource::create(kc, bootstrap_, *queue_, *part.schema,
                                               offsets_[index], *delivery_, registry_, route);
  if (!source) return Status::Error(source.error());
  part.source = std::move(source.value());
  part.source->set_producer_in_flight([d = delivery_.get()] { return d->producer_in_flight(); });
  if (routes_.size() > 1) {
    part.source->set_tracked_in_flight([this] { return offsets_.in_flight(); });
  }
  if (part.feature_spec) {
    const features::FeatureSpec& spec = *part.feature_spec;
    const auto& fc = config_.features;
    const std::string keys = kc.group_id + ":" + kc.input_topic + ":";
    if (config_.redis.enabled() && fc.snapshot_interval.count() > 0) {
      sinks::RedisSnapshotStore::Options o;
      o.address = sinks::parse_redis_url(config_.redis.url).value();  // validated with the config
      o.command_timeout = config_.redis.command_timeout;
      o.reconnect_backoff_max = config_.redis.reconnect_backoff_max;
      o.key_prefix = fc.snapshot_key_prefix + keys;
      o.ttl_s = fc.snapshot_ttl_s;
      o.max_pending_bytes = fc.snapshot_max_pending_bytes;
      part.snapshots = std::make_unique<sinks::RedisSnapshotStore>(std::move(o), registry_);
    } else {
      logger("vigil")->warn(
          "velocity features without snapshots ({}): every assignment replays each "
          "partition's log from its start",
          config_.redis.enabled() ? "features.snapshot.interval_s is 0" : "Redis is off");
    }
    auto features = std::make_unique<features::StreamFeatures>(
        spec, config_.kafka.max_event_bytes, registry_, part.snapshots.get(), fc.snapshot_interval);
    if (spec.terminal) {
      // Checked with the routes: terminal features need Redis.
      sinks::RedisTerminalState::Options o;
      o.address = sinks::parse_redis_url(config_.redis.url).value();
      o.command_timeout = config_.redis.command_timeout;
      o.reconnect_backoff_max = config_.redis.reconnect_backoff_max;
      o.key_prefix = fc.shared_key_prefix + keys;
      o.windows = spec.terminal->windows;
      o.ttl_s = static_cast<int>((o.windows.reach_days() + 2) * 86400);
      o.refresh_interval = fc.shared_refresh;
      o.max_backlog = fc.shared_max_backlog_records;
      terminals_ = std::make_unique<sinks::RedisTerminalState>(std::move(o), registry_);
      features->set_terminal_state(terminals_.get(), fc.shared_refresh, fc.shared_max_age);
      auto reports =
          consumers::ReportsSource::create(config_.kafka, bootstrap_, *terminals_, registry_);
      if (!reports) return Status::Error(reports.error());
      reports_ = std::move(reports.value());
      reports_->start();
    }
    part.source->set_features(std::move(features));
  }
  part.source->start();
  logger("vigil")->info(
      "consuming '{}' as group '{}', scored by {}; scores to '{}', dead letters to '{}'",
      kc.input_topic, kc.group_id, part.route.model, kc.output_topic, config_.kafka.dlq_topic);
  return Status::Ok();
}

std::vector<consumers::KafkaSource*> Service::sources() {
  std::vector<consumers::KafkaSource*> all;
  for (RouteParts& r : routes_) {
    if (r.source) all.push_back(r.source.get());
  }
  return all;
}

Status Service::start_http() {
  http::HttpDeps deps;
  deps.queue = queue_.get();
  deps.batcher = batcher_.get();
  for (size_t i = 0; i < batcher_->model_count(); ++i) {
    deps.model_names.push_back(batcher_->model_info(i)->name);
  }
  deps.model_info = [this](size_t i) { return batcher_->model_info(i); };
  deps.registry = &registry_;
  deps.readiness_failures = [this] { return readiness_failures(); };
  deps.liveness_failures = [this] {
    const scoring::Watchdog* w = watchdog_view_.load(std::memory_order_acquire);
    return w ? w->liveness_failures() : std::vector<std::string>{};
  };
  deps.degradations = [this] { return degradations(); };
  if (config_.redis.enabled()) {
    auto lookup = sinks::ScoreLookup::Create(config_.redis, registry_);
    if (!lookup) return Status::Error(lookup.error());
    lookup_ = std::move(lookup.value());
    lookup_->start();
    deps.lookup = lookup_.get();
  }
  deps.shadow_info = [this](size_t i) { return batcher_->shadow_info(i); };
  for (auto& m : models_) deps.models.push_back(m.get());
  if (!config_.recommend.model.empty()) {
    // Not required to score: a recommender that cannot load leaves /recommend answering 503
    // with the reason, and the rest serves.
    // Its folder is watched for new versions as the scoring model's is.
    const recommend::Recommender::Watch watch{config_.model.reload_interval, config_.model.stable};
    auto r =
        recommend::Recommender::load(config_.model.repository, config_.recommend, registry_, watch);
    if (r) {
      recommender_ = std::move(r.value());
      deps.recommender = recommender_.get();
    } else {
      deps.recommender_missing = r.error();
      logger("vigil")->warn("recommend.model={}: {}; POST /recommend answers 503",
                            config_.recommend.model, r.error());
    }
  }
  if (config_.http.max_event_subscribers > 0) {
    // Typed figures from each component. The update thread starts once http_ is set, and
    // stop() joins it before any of them goes; the consumer comes later, through consuming_.
    live::Inputs in;
    in.consumer = [this] {
      consumers::KafkaSourceStats::Figures sum;
      if (!consuming_.load(std::memory_order_acquire)) return sum;
      for (const RouteParts& r : routes_) sum.add(r.source->stats().figures());
      return sum;
    };
    in.scoring = [this] { return batcher_->figures(); };
    in.queue = queue_.get();
    in.delivery = [this] { return delivery_->stats().figures(); };
    in.http = [this] { return http_->stats().figures(); };
    in.model = [this] { return batcher_->model_info(); };
    live_ = std::make_unique<live::LiveEvents>(config_.http, std::move(in), registry_);
    batcher_->observe_flagged(live_.get());
    deps.events = live_.get();
  }
  http_ = std::make_unique<http::HttpServer>(config_.http, std::move(deps));
  Status st = http_->start();
  if (!st.ok()) return st;
  if (live_) live_->start();
  logger("vigil")->info("HTTP side-port listening on {}:{}", config_.http.address, http_->port());
  return Status::Ok();
}

int Service::http_port() const {
  return http_ ? static_cast<int>(http_->port()) : -1;
}

std::vector<std::string> Service::degradations() const {
  std::vector<std::string> d;
  if (redis_ && !redis_->connected()) {
    d.push_back("redis: not connected; scores go to Kafka, cache writes are skipped and counted");
  }
  return d;
}

std::vector<std::string> Service::readiness_failures() const {
  // Each component says why it is not ready; the HTTP router adds its own checks (model
  // loaded, queue below its high watermark, not shutting down).
  std::vector<std::string> f;
  if (config_.kafka.enabled) {
    if (!consuming_.load(std::memory_order_acquire)) {
      f.push_back("kafka: starting, waiting for the brokers " + bootstrap_);
    } else {
      for (const RouteParts& r : routes_) {
        for (auto& reason : r.source->readiness_failures()) f.push_back(std::move(reason));
      }
    }
  }
  if (const scoring::Watchdog* w = watchdog_view_.load(std::memory_order_acquire)) {
    for (auto& reason : w->readiness_failures()) f.push_back(std::move(reason));
  }
  return f;
}

void Service::stop() {
  if (stopped_.exchange(true)) return;
  stopping_ = true;
  auto log = logger("vigil");
  const auto grace = config_.shutdown_grace;
  const auto deadline = std::chrono::steady_clock::now() + grace;
  auto left = [&] {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now()));
  };
  log->info("stopping: intake off, draining (grace {} ms)", grace.count());
  if (watchdog_) watchdog_->stop();

  for (auto& m : models_) m->stop();  // no swap during the drain
  // Phase 1: stop intake.
  if (http_) http_->begin_shutdown();
  for (RouteParts& r : routes_) {
    if (r.source) r.source->stop_intake();
  }
  // Phase 2: drain the queue through the model into the delivery stage, then flush it.
  if (batcher_) batcher_->stop(left());
  if (delivery_ && !delivery_->flush(left())) {
    log->warn("producer not flushed within the grace; undelivered records stay uncommitted");
  }
  // Phase 3: stop the delivery stage before the final commit. Its last delivery reports
  // (served by its poller, or purged) acknowledge records; a commit made before them would
  // leave delivered records uncommitted, scored again after the restart (CI once saw 652).
  if (delivery_) delivery_->stop(std::chrono::milliseconds(0));
  // Phase 4: commit what was delivered, leave the group, join.
  for (RouteParts& r : routes_) {
    if (r.source) r.source->stop();
  }
  if (reports_) reports_->stop();
  if (terminals_) terminals_->stop();  // after the source: its last counts are queued
  if (http_) http_->stop(std::min(left(), std::chrono::milliseconds(2000)));
  if (recommender_) recommender_->stop();  // after the server: answers what it still holds
  if (lookup_) lookup_->stop();
  if (live_) live_->stop();  // after the server: its streams have ended already
  if (redis_) redis_->stop(std::min(left(), std::chrono::milliseconds(2000)));
  for (RouteParts& r : routes_) {
    if (r.snapshots) r.snapshots->stop();  // after the source: nothing saves any more
  }
  http_.reset();
  for (RouteParts& r : routes_) r.source.reset();
  delivery_.reset();
  embedded_.reset();
  log->info("stopped");
}

Service::~Service() {
  stop();
}

int run_service(const config::AppConfig& config) {
  auto log = logger("vigil");
  // Signals are taken synchronously by this thread: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto stop_requested = [] {
    sigset_t pending;
    sigpending(&pending);
    return sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1;
  };
  Service::Options options;
  options.interrupted = stop_requested;
  auto service = Service::create(config, options);
  if (!service) {
    if (stop_requested()) {
      log->info("stopped during start-up: {}", service.error());
      return 0;
    }
    log->error("cannot start: {}", service.error());
    return 1;
  }
  log->info("vigil is running; SIGTERM or Ctrl-C stops it gracefully");
  int sig = 0;
  while (sig == 0) {
    timespec ts{0, 200 * 1000 * 1000};
    sig = sigtimedwait(&signals, nullptr, &ts);
    if (sig < 0) sig = 0;
  }
  log->info("received {}, shutting down (a second signal exits at once)",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
  std::atomic<bool> done{false};
  std::thread second_signal([&] {
    while (!done) {
      timespec ts{0, 100 * 1000 * 1000};
      if (sigtimedwait(&signals, nullptr, &ts) > 0) {
        std::fprintf(stderr, "vigil: second signal, exiting now\n");
        std::_Exit(130);
      }
    }
  });
  (*service)->stop();
  done = true;
  second_signal.join();
  return 0;
}

}  // namespace vigil::app

// Service: the streaming service wired together — model, scoring queue and workers, the
// embedded or external Kafka, the delivery stage (Kafka producer) and the Redis sink, the
// Kafka source with its offset tracker, and (when enabled) the HTTP side-port. Start order follows
// the data flow backwards (sinks before sources); stop() goes in reverse, in two phases bounded by
// shutdown_grace_ms:
//
//   1. stop intake: HTTP answers 503, the consumer pauses and takes nothing more
//   2. drain: the workers score what is queued; the producer and Redis flush
//   3. commit the delivered offsets, leave the group, join every thread
//
// Used by main (run_service) and by the integration tests, which run it in-process.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "codec/event_decoder.h"
#include "common/metrics.h"
#include "config/app_config.h"
#include "consumers/kafka_source.h"
#include "consumers/offset_tracker.h"
#include "consumers/reports_source.h"
#include "consumers/route_offsets.h"
#include "delivery/delivery_stage.h"
#include "kafka/embedded_cluster.h"
#include "recommend/recommender.h"
#include "scoring/batcher.h"
#include "scoring/model_manager.h"
#include "scoring/watchdog.h"
#include "sinks/redis_sink.h"
#include "sinks/redis_snapshot_store.h"
#include "sinks/redis_terminal_state.h"
#include "sinks/score_lookup.h"

namespace vigil::http {
class HttpServer;
}  // namespace vigil::http
namespace vigil::live {
class LiveEvents;
}  // namespace vigil::live

namespace vigil::app {

class Service {
 public:
  struct Options {
    std::shared_ptr<scoring::Model> model;  // use this model instead of loading one (tests)
    // Polled while start-up waits for the brokers: true gives up (a stop signal arrived).
    std::function<bool()> interrupted;
  };
  static Result<std::unique_ptr<Service>> create(const config::AppConfig& config,
                                                 Options options = {});
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Graceful two-phase stop, bounded by shutdown_grace_ms. Idempotent.
  void stop();

  // Checks that fail readiness, empty when ready.
  std::vector<std::string> readiness_failures() const;
  // Degraded but still ready (Redis down: scores still flow to Kafka), reported by /ready.
  std::vector<std::string> degradations() const;

  const std::string& bootstrap() const { return bootstrap_; }
  int http_port() const;
  metrics::Registry& registry() { return registry_; }
  scoring::Batcher& batcher() { return *batcher_; }
  scoring::ScoringQueue& queue() { return *queue_; }
  // The source of kafka.input_topic (route 0); null without Kafka. sources(): every route's.
  consumers::KafkaSource* source() { return routes_.empty() ? nullptr : routes_[0].source.get(); }
  std::vector<consumers::KafkaSource*> sources();
  delivery::DeliveryStage* delivery() { return delivery_.get(); }
  // The offsets of route `route` (0: kafka.input_topic).
  const consumers::OffsetTracker& offsets(size_t route = 0) const { return offsets_[route]; }
  sinks::RedisSink* redis() { return redis_.get(); }
  kafka::EmbeddedCluster* embedded() { return embedded_.get(); }

 private:
  explicit Service(const config::AppConfig& config);
  Status start(Options options);
  // The models to serve: model.name first (or the one given), then model.also_serve's.
  Result<std::vector<std::shared_ptr<scoring::Model>>> load_models(
      std::shared_ptr<scoring::Model> given);
  Status start_delivery();  // embedded cluster (if so configured) and the delivery stage
  void start_scoring(std::vector<std::shared_ptr<scoring::Model>> models);
  Status start_http();
  Status start_source(const std::function<bool()>& interrupted);
  // routes_ from kafka.routes and the models served (`models`, the batcher's order); refuses a
  // route whose model is not served, and velocity features on more than one route.
  Status plan_routes(const std::vector<std::shared_ptr<scoring::Model>>& models);
  Status start_route(size_t index);

  config::AppConfig config_;
  metrics::Registry registry_;
  // The live view (GET /, /v1/events); the batcher shows it high scores, so it outlives it.
  std::unique_ptr<live::LiveEvents> live_;
  // One per model served, in the batcher's order (model.name first); none when a model was
  // injected (tests).
  std::vector<std::unique_ptr<scoring::ModelManager>> models_;
  std::unique_ptr<scoring::ScoringQueue> queue_;
  std::unique_ptr<scoring::Batcher> batcher_;
  std::unique_ptr<kafka::EmbeddedCluster> embedded_;
  std::string bootstrap_;
  std::unique_ptr<sinks::RedisSink> redis_;
  std::unique_ptr<sinks::ScoreLookup> lookup_;  // GET /v1/scores/{id}; with Redis and HTTP
  // One tracker per route: acknowledged by delivery_, read by the route's source.
  consumers::RouteOffsets offsets_;
  std::unique_ptr<delivery::DeliveryStage> delivery_;
  // The shared terminal state (a features.yaml with `terminal`) and the fraud reports it is
  // fed from: outlive the source.
  std::unique_ptr<sinks::RedisTerminalState> terminals_;
  std::unique_ptr<consumers::ReportsSource> reports_;
  // One per consumed topic: kafka.input_topic (scored by model.name), then kafka.routes'.
  // Planned before the side-port starts; the sources are set once the brokers answer.
  struct RouteParts {
    kafka::Route route;
    uint16_t model = 0;  // the batcher's model that scores it
    std::unique_ptr<codec::FeatureSchema> schema;
    // The model's features.yaml, when it scores raw transactions (src/features).
    std::optional<features::FeatureSpec> feature_spec;
    // Feature-state snapshots (Redis, a model with features.yaml): outlive the source.
    std::unique_ptr<sinks::RedisSnapshotStore> snapshots;
    std::unique_ptr<consumers::KafkaSource> source;
  };
  std::vector<RouteParts> routes_;
  // Set once every route's source consumes; readiness (HTTP threads) reads the sources only
  // then, because the side-port is up while start-up still waits for the brokers.
  std::atomic<bool> consuming_{false};
  std::unique_ptr<http::HttpServer> http_;
  // POST /recommend's model (recommend.model); outlives http_, whose requests it answers.
  std::unique_ptr<recommend::Recommender> recommender_;

  std::unique_ptr<scoring::Watchdog> watchdog_;
  // watchdog_ as the side-port's io threads see it: null until it started (they start first).
  std::atomic<const scoring::Watchdog*> watchdog_view_{nullptr};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
};

// mode=serve: runs the Service until SIGTERM/SIGINT; a second signal exits at once.
int run_service(const config::AppConfig& config);

}  // namespace vigil::app

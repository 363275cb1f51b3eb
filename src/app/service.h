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
  consumers::KafkaSource* source() { return source_.get(); }
  delivery::DeliveryStage* delivery() { return delivery_.get(); }
  const consumers::OffsetTracker& offsets() const { return tracker_; }
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

  config::AppConfig config_;
  metrics::Registry registry_;
  // The live view (GET /, /v1/events); the batcher shows it high scores, so it outlives it.
  std::unique_ptr<live::LiveEvents> live_;
  std::unique_ptr<codec::FeatureSchema> schema_;
  // The served model's features.yaml, when it scores raw transactions (src/features).
  std::optional<features::FeatureSpec> feature_spec_;
  // One per model served, in the batcher's order (model.name first); none when a model was
  // injected (tests).
  std::vector<std::unique_ptr<scoring::ModelManager>> models_;
  std::unique_ptr<scoring::ScoringQueue> queue_;
  std::unique_ptr<scoring::Batcher> batcher_;
  std::unique_ptr<kafka::EmbeddedCluster> embedded_;
  std::string bootstrap_;
  std::unique_ptr<sinks::RedisSink> redis_;
  std::unique_ptr<sinks::ScoreLookup> lookup_;  // GET /v1/scores/{id}; with Redis and HTTP
  consumers::OffsetTracker tracker_;            // acknowledged by delivery_, read by source_
  std::unique_ptr<delivery::DeliveryStage> delivery_;
  // Feature-state snapshots (Redis, a model with features.yaml): outlives the source.
  std::unique_ptr<sinks::RedisSnapshotStore> snapshots_;
  // The shared terminal state (a features.yaml with `terminal`) and the fraud reports it is
  // fed from: outlive the source.
  std::unique_ptr<sinks::RedisTerminalState> terminals_;
  std::unique_ptr<consumers::ReportsSource> reports_;
  std::unique_ptr<consumers::KafkaSource> source_;
  // source_ once it is consuming; readiness (HTTP threads) reads this, not source_, because
  // the side-port is up while start-up still waits for the brokers.
  std::atomic<consumers::KafkaSource*> consuming_{nullptr};
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

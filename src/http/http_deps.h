// What the HTTP side-port borrows from the rest of the process. Kept free of Boost and
// simdjson so that src/app can include it (through server.h) cheaply.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "scoring/model.h"
#include "scoring/scoring_queue.h"

namespace vigil::scoring {
class Batcher;
class ModelManager;
}  // namespace vigil::scoring
namespace vigil::sinks {
class ScoreLookup;
}
namespace vigil::recommend {
class RecommendService;
}

namespace vigil::http {

class EventStreams;

// Every pointer is borrowed: the owner keeps them alive until HttpServer::stop() has returned
// AND the batcher has completed every request (completions of HTTP rows may arrive after the
// server stopped; they then touch `queue`, never the server).
struct HttpDeps {
  scoring::ScoringQueue* queue = nullptr;  // HTTP rows go in with Priority::kHigh
  // The batcher behind `queue`: while it is idle, each io thread scores the rows it read in
  // one pass of its loop itself (Batcher::try_score_inline). Null: every row is queued.
  scoring::Batcher* batcher = nullptr;
  // The models served, by their index in the batcher (ScoreRequest::model): the first is the
  // default one (/predict without ?model=; the Kafka stream's). Empty: one model, named as
  // model_info(0) says.
  std::vector<std::string> model_names;
  // The version of model `index` currently served; null while none is loaded. Called on io
  // threads.
  std::function<std::shared_ptr<const scoring::ModelInfo>(size_t index)> model_info;
  metrics::Registry* registry = nullptr;
  // Reasons the process is not ready ("kafka: no partitions assigned", ...); empty = ready.
  // The router adds its own checks (model loaded, queue below its high watermark, not
  // shutting down), so this only needs the other components'. Optional; called on io threads.
  std::function<std::vector<std::string>()> readiness_failures;
  // Reasons the process should be restarted (a scoring worker hung past
  // scoring.watchdog_liveness_ms); empty = live. /health and /v2/health/live answer 503 while
  // any holds. Optional; called on io threads.
  std::function<std::vector<std::string>()> liveness_failures;
  // Degradations that do not make the process unready but are reported by /ready (e.g.
  // "redis: not connected": Redis is a cache, scoring goes on without it). Optional.
  std::function<std::vector<std::string>()> degradations;
  // Model `index`'s shadow, null when none. Optional; called on io threads.
  std::function<std::shared_ptr<const scoring::ModelInfo>(size_t index)> shadow_info;
  // The model lifecycles behind /v2/repository/..., by index as model_names; empty: those
  // routes answer 404.
  std::vector<scoring::ModelManager*> models;
  // Score lookups from Redis behind GET /v1/scores/{id}; null (no Redis): that route answers 503.
  sinks::ScoreLookup* lookup = nullptr;
  // The live view behind GET / and GET /v1/events (src/live); null: those routes answer 404.
  EventStreams* events = nullptr;
  // The recommender behind POST /recommend. Null with `recommender_missing` empty:
  // recommend.model is empty and the route answers 404; null with it set: the route answers
  // 503 with that reason (the configured model could not be loaded).
  recommend::RecommendService* recommender = nullptr;
  std::string recommender_missing;
};

}  // namespace vigil::http

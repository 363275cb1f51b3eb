// ScoreRequest: one set of features waiting to be scored, from a Kafka record or an HTTP
// instance. The origin-specific context (partition/offset and raw record, or the HTTP call
// waiting for its response) lives in the completion callback, so the scoring engine does not
// know about Kafka or HTTP.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/feature_vector.h"
#include "common/status.h"
#include "scoring/model.h"

namespace vigil::scoring {

enum class Origin { kKafka, kHttp };

// Queue priority: HTTP callers wait synchronously, so their requests go first.
enum class Priority { kHigh, kNormal };

struct ScoreRequest;

// The result handed to a request's completion, exactly once per request.
struct ScoreOutcome {
  Status status;           // not ok: the request was not scored, and why
  bool retryable = false;  // not scored only because of shutdown: retry later
  float score = 0.0f;
  bool is_fraud = false;
  std::shared_ptr<const ModelInfo> model;   // the model that scored it (null if not scored)
  std::chrono::microseconds queue_wait{0};  // enqueue -> batch formed
  std::chrono::microseconds compute{0};     // the batch's forward pass
  size_t batch_size = 0;
};

// Called once per request on a scoring worker thread (or on the thread that shuts the
// batcher down). Must not block for long: hand the result on to a sink or a connection.
using Completion = std::function<void(ScoreRequest&, const ScoreOutcome&)>;

struct ScoreRequest {
  std::string id;          // transaction id (may be empty for anonymous HTTP rows)
  FeatureVector features;  // in the model's input order
  Origin origin = Origin::kKafka;
  Clock::time_point enqueued_at{};       // set by ScoringQueue::try_push
  std::optional<int64_t> event_time_ms;  // upstream event timestamp, when known
  Completion done;
};

}  // namespace vigil::scoring

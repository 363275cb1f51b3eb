// ScoreRequest: one set of features waiting to be scored, from a Kafka record or an HTTP
// instance. An HTTP request carries its completion callback (the call waiting for its
// response). A Kafka request carries no callback: its SourceRecord travels with it, and the
// worker hands each finished batch, whole, to the BatchCompletion (the delivery stage), so a
// record costs no std::function and no shared state on the hot path.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/feature_vector.h"
#include "common/inline_string.h"
#include "common/status.h"
#include "scoring/model.h"

struct rd_kafka_message_s;  // librdkafka's message (not used here, only carried)

namespace vigil::scoring {

enum class Origin { kKafka, kHttp };

// Queue priority: HTTP callers wait synchronously, so their requests go first.
enum class Priority { kHigh, kNormal };

struct ScoreRequest;

// A consumed record's place: what its final outcome is reported against.
struct RecordPosition {
  int32_t partition = -1;
  // Which of the consumer's routes (input topics, kafka.routes) it came from: 0 for
  // kafka.input_topic. Picks the record's offset tracker and output topic.
  uint16_t route = 0;
  int64_t offset = -1;
  uint64_t generation = 0;  // the partition's assignment generation when it was consumed
};

// Calls `run(route, begin, count)` for each run of consecutive items of one route among
// `items[0, n)`, in order; `route_of(item)` reads an item's route. Offsets are acknowledged, and
// scores produced, a run at a time: a batch of one model holds the records of every route
// that model scores, usually of one.
template <typename T, typename RouteOf, typename Run>
void for_each_route_run(T* items, size_t n, RouteOf&& route_of, Run&& run) {
  for (size_t start = 0; start < n;) {
    const uint16_t route = route_of(items[start]);
    size_t end = start + 1;
    while (end < n && route_of(items[end]) == route) ++end;
    run(route, items + start, end - start);
    start = end;
  }
}

// The consumed message, owned and move-only: destroyed (with the function its creator gave,
// rd_kafka_message_destroy for the consumer) when the handle is reset or goes out of scope.
class RecordHandle {
 public:
  using Destroy = void (*)(rd_kafka_message_s*);
  RecordHandle() = default;
  RecordHandle(rd_kafka_message_s* message, Destroy destroy) noexcept
      : message_(message), destroy_(destroy) {}
  RecordHandle(RecordHandle&& o) noexcept
      : message_(std::exchange(o.message_, nullptr)), destroy_(o.destroy_) {}
  RecordHandle& operator=(RecordHandle&& o) noexcept {
    if (this != &o) {
      reset();
      message_ = std::exchange(o.message_, nullptr);
      destroy_ = o.destroy_;
    }
    return *this;
  }
  RecordHandle(const RecordHandle&) = delete;
  RecordHandle& operator=(const RecordHandle&) = delete;
  ~RecordHandle() { reset(); }

  void reset() noexcept {
    if (message_ != nullptr) destroy_(std::exchange(message_, nullptr));
  }
  rd_kafka_message_s* get() const { return message_; }
  explicit operator bool() const { return message_ != nullptr; }

 private:
  rd_kafka_message_s* message_ = nullptr;
  Destroy destroy_ = nullptr;
};

// Where a Kafka request came from, opaque to scoring. The consumer fills it; the delivery
// stage reads it, takes `record` (the consumed message, kept for the dead-letter topic) and
// reports the record's final outcome against its position.
struct SourceRecord : RecordPosition {
  SourceRecord() = default;
  SourceRecord(const RecordPosition& position, RecordHandle message)
      : RecordPosition(position), record(std::move(message)) {}
  RecordHandle record;  // null once taken (or for HTTP rows)
};

// The result handed to a request's completion, exactly once per request.
// One reason code: an input and its contribution to the score, gradient x (input - baseline).
struct Reason {
  uint32_t input = 0;  // index into ModelInfo::input_names
  float contribution = 0.0f;
};

struct ScoreOutcome {
  Status status;           // not ok: the request was not scored, and why
  bool retryable = false;  // not scored only because of shutdown: retry later
  float score = 0.0f;
  bool is_fraud = false;
  std::shared_ptr<const ModelInfo> model;   // the model that scored it (null if not scored)
  std::chrono::microseconds queue_wait{0};  // enqueue -> batch formed
  std::chrono::microseconds compute{0};     // the batch's forward pass
  size_t batch_size = 0;
  // The inputs that raised the score most, largest contribution first (ties: lower input
  // index); empty unless the request asked for reason codes.
  std::vector<Reason> reasons;
};

// Called once per request on a scoring worker thread (or on the thread that shuts the
// batcher down). Must not block for long: hand the result on to a sink or a connection.
using Completion = std::function<void(ScoreRequest&, const ScoreOutcome&)>;

struct ScoreRequest {
  InlineString id;         // transaction id (may be empty for anonymous HTTP rows)
  FeatureVector features;  // in the model's input order
  Origin origin = Origin::kKafka;
  Clock::time_point enqueued_at{};       // set by ScoringQueue::try_push
  std::optional<int64_t> event_time_ms;  // upstream event timestamp, when known
  Completion done;                       // HTTP: called with the outcome; Kafka: empty
  SourceRecord source;                   // Kafka: the record scored
  uint16_t explain_top_k = 0;            // reason codes wanted (HTTP asks; Kafka: the config)
  uint16_t model = 0;  // which of the batcher's models scores it (0: the default model)
  // Velocity features (src/features): `features` were computed by vigil from the entity's
  // history, which may have been partial (see features/entity_windows.h).
  bool features_computed = false;
  bool history_partial = false;
};

// Takes every finished batch from the scoring workers, once per batch, on the worker's thread:
// `outcomes[i]` is the outcome of `batch[i]` (the `model` field is left empty; `model` is the
// model that scored the batch). Requests with a `done` callback (HTTP) were already answered;
// they come along so that every score leaves by one exit. The implementation owns what it
// takes from the others (their SourceRecord). Must not block for long. The delivery stage
// implements it; tests record.
class BatchCompletion {
 public:
  virtual ~BatchCompletion() = default;
  virtual void complete(std::vector<ScoreRequest>& batch, const std::vector<ScoreOutcome>& outcomes,
                        const ModelInfo& model) = 0;
};

// Sees every row scored at or above its model's threshold (`is_fraud`), on the worker thread,
// right after the row's batch was completed: the feed of the live view. Must not block, and
// should not even wait for a lock (drop instead): it runs on the scoring path.
class FlaggedObserver {
 public:
  virtual ~FlaggedObserver() = default;
  virtual void flagged(const ScoreRequest& request, const ScoreOutcome& outcome,
                       const ModelInfo& model) = 0;
};

// One row a shadow model scored alongside the served one.
struct ShadowRow {
  InlineString id;  // transaction id (rows without one are compared but not published)
  float score = 0.0f;
  float shadow_score = 0.0f;
  std::optional<int64_t> event_time_ms;
};

// Takes the shadow model's scores of each batch, after the batch's primary results were
// completed (the shadow forward runs off the primary's delivery path). On the worker thread.
class ShadowCompletion {
 public:
  virtual ~ShadowCompletion() = default;
  virtual void shadow_scored(const std::vector<ShadowRow>& rows, const ModelInfo& primary,
                             const ModelInfo& shadow) = 0;
};

}  // namespace vigil::scoring

// One HTTP scoring request's instances in flight (ScoringCall), the Respond wrapper that answers
// at most once (OnceRespond), and submit(), which queues a call's rows. Internal to src/http.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/json_text.h"
#include "http/inference_request.h"
#include "http/responses.h"
#include "scoring/scoring_queue.h"

namespace vigil::http {

// Calls the wrapped Respond at most once, so that the catch-all in handle() cannot answer a
// request a second time.
class OnceRespond {
 public:
  explicit OnceRespond(Respond r) : state_(std::make_shared<State>(std::move(r))) {}
  bool answered() const { return state_->done.load(); }
  Respond as_respond() const {
    return [s = state_](Response res) {
      if (!s->done.exchange(true)) s->respond(std::move(res));
    };
  }

 private:
  struct State {
    explicit State(Respond r) : respond(std::move(r)) {}
    Respond respond;
    std::atomic<bool> done{false};
  };
  std::shared_ptr<State> state_;
};

// One HTTP request's instances in flight. Owned jointly by its ScoreRequests' completions (and
// the submitting thread until it returns), so it outlives the connection when it must. Answers
// exactly once: with every score when the last instance completes, or earlier with a 503 when
// not all instances could be queued.
class ScoringCall {
 public:
  enum class Kind { kPredict, kInfer };

  ScoringCall(Kind kind, size_t n, Respond respond, const scoring::ScoringQueue* queue)
      : kind_(kind),
        scores_(n, 0.0f),
        fraud_(n, 0),
        models_(n),
        remaining_(n),
        respond_(std::move(respond)),
        queue_(queue) {}

  std::vector<std::string> transaction_ids;  // kPredict: one per instance (may be empty)
  std::optional<std::string> infer_id;       // kInfer: echoed "id"

  // Reason codes wanted per instance (0 = none); set before the instances are submitted.
  void explain(uint16_t top_k) {
    top_k_ = top_k;
    reasons_.assign(scores_.size(), {});
  }
  uint16_t top_k() const { return top_k_; }
  // The model that scores its instances (its index in the batcher); set before they are
  // submitted.
  void score_with(uint16_t model) { model_index_ = model; }
  uint16_t model_index() const { return model_index_; }

  // Runs on a scoring worker thread, once per instance. The score itself leaves vigil (Redis,
  // the output topic) by the delivery stage, which gets the whole batch after this.
  void complete(size_t i, const scoring::ScoreOutcome& o) {
    if (o.status.ok()) {
      scores_[i] = o.score;
      fraud_[i] = o.is_fraud ? 1 : 0;
      models_[i] = o.model;  // each slot written by its own completion only
      if (top_k_ > 0) reasons_[i] = o.reasons;
    } else {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) {
        if (queue_->closed()) {
          error_ = HttpError{503, "server is shutting down"};
        } else {
          error_ = HttpError{500, where(i) + " could not be scored: " + o.status.message()};
        }
      }
    }
    // acq_rel: the last completion sees every other completion's writes.
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) finish();
  }

  // Answers `answer` now; the `not_queued` instances that never entered the queue will not
  // complete, and those that did complete without effect on the answer.
  void abandon(size_t not_queued, Response answer) {
    if (!answered_.exchange(true)) respond_(std::move(answer));
    if (remaining_.fetch_sub(not_queued, std::memory_order_acq_rel) == not_queued) finish();
  }

 private:
  std::string where(size_t i) const {
    return kind_ == Kind::kPredict ? "instances[" + std::to_string(i) + "]"
                                   : "inputs[0] row " + std::to_string(i);
  }

  void finish() {
    if (answered_.exchange(true)) return;
    if (error_) {
      respond_(error_response(error_->status, error_->message));
      return;
    }
    model_ = models_.front();
    for (const auto& m : models_) split_ = split_ || m->version != model_->version;
    if (split_ && kind_ == Kind::kInfer) {
      // One output tensor has one model version: a request split across versions by a swap
      // is refused rather than answered with a version that did not score every row.
      respond_(error_response(503,
                              "the model version changed while the request was scored; "
                              "retry"));
      return;
    }
    respond_(make_response(200, kind_ == Kind::kPredict ? predict_body() : infer_body()));
  }

  std::string predict_body() const {
    std::string out;
    out.reserve(64 + scores_.size() * 48);
    out += "{\"predictions\":[";
    for (size_t i = 0; i < scores_.size(); ++i) {
      out += i ? ",{" : "{";
      if (!transaction_ids[i].empty()) {
        out += "\"transaction_id\":";
        append_json_string(out, transaction_ids[i]);
        out += ',';
      }
      out += "\"score\":";
      append_float(out, scores_[i]);
      out += fraud_[i] ? ",\"is_fraud\":true" : ",\"is_fraud\":false";
      if (split_) {
        // A model swap split this request: each prediction names the version that scored it.
        out += ",\"model_version\":";
        append_json_string(out, models_[i]->version);
      }
      if (top_k_ > 0) {
        out += ",\"reasons\":[";
        for (size_t j = 0; j < reasons_[i].size(); ++j) {
          out += j ? ",{\"feature\":" : "{\"feature\":";
          append_json_string(out, models_[i]->input_names[reasons_[i][j].input]);
          out += ",\"contribution\":";
          append_float(out, reasons_[i][j].contribution);
          out += '}';
        }
        out += ']';
      }
      out += '}';
    }
    out += "],";
    append_model(out);
    out += '}';
    return out;
  }

  std::string infer_body() const {
    std::string out;
    out.reserve(128 + scores_.size() * 12);
    out += '{';
    append_model(out);
    if (infer_id) {
      out += ",\"id\":";
      append_json_string(out, *infer_id);
    }
    out += ",\"outputs\":[{\"name\":";
    append_json_string(out, model_->output_name);
    out += ",\"datatype\":\"FP32\",\"shape\":[" + std::to_string(scores_.size()) + "],\"data\":[";
    for (size_t i = 0; i < scores_.size(); ++i) {
      if (i) out += ',';
      append_float(out, scores_[i]);
    }
    out += "]}]}";
    return out;
  }

  void append_model(std::string& out) const {
    out += "\"model_name\":";
    append_json_string(out, model_->name);
    out += ",\"model_version\":";
    append_json_string(out, model_->version);
  }

  const Kind kind_;
  uint16_t top_k_ = 0;
  uint16_t model_index_ = 0;
  std::vector<std::vector<scoring::Reason>> reasons_;  // per instance, when top_k_ > 0
  std::vector<float> scores_;
  std::vector<uint8_t> fraud_;
  // The model that scored each instance (a swap may split a request), and instance 0's.
  std::vector<std::shared_ptr<const scoring::ModelInfo>> models_;
  std::shared_ptr<const scoring::ModelInfo> model_;
  bool split_ = false;  // instances scored by different versions
  std::atomic<size_t> remaining_;
  std::atomic<bool> answered_{false};
  std::mutex error_mutex_;
  std::optional<HttpError> error_;  // the first failure
  Respond respond_;
  const scoring::ScoringQueue* const queue_;
};

// The request for instance `i` of `call` (its row, its transaction id when given).
scoring::ScoreRequest make_request(const std::shared_ptr<ScoringCall>& call,
                                   const std::vector<float>& row, const std::string* id, size_t i);
// The 503 a call gets when the queue refuses one of its rows (full, or closed).
Response push_refusal(scoring::ScoringQueue::PushResult pushed);

// Queues one ScoreRequest per row; on the first rejection answers 503 for the whole call.
void submit(const std::shared_ptr<ScoringCall>& call, std::vector<std::vector<float>>& rows,
            const std::vector<std::string>* ids, scoring::ScoringQueue& queue);

}  // namespace vigil::http

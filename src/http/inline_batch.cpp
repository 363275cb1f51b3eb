#include "http/inline_batch.h"

#include <utility>

namespace vigil::http {

InlineBatch::InlineBatch(scoring::Batcher& batcher, scoring::ScoringQueue& queue,
                         std::function<void(std::function<void()>)> post)
    : batcher_(batcher), queue_(queue), post_(std::move(post)), lane_(batcher.make_inline_lane()) {}

void InlineBatch::add(const std::shared_ptr<ScoringCall>& call,
                      std::vector<std::vector<float>>& rows, const std::vector<std::string>* ids) {
  spans_.push_back(Span{call, pending_.size(), rows.size()});
  for (size_t i = 0; i < rows.size(); ++i) {
    pending_.push_back(make_request(call, rows[i], ids != nullptr ? &(*ids)[i] : nullptr, i));
  }
  if (!std::exchange(flush_posted_, true)) post_([this] { flush(); });
}

void InlineBatch::flush() {
  flush_posted_ = false;
  if (pending_.empty()) return;
  // The answers of an inline batch are given, and written, during try_score_inline: a
  // connection may then parse its next request at once and add() it here. It goes into the
  // emptied pending_ (and a new flush), not into the rows being scored.
  scoring_.swap(pending_);
  scoring_spans_.swap(spans_);
  if (!batcher_.try_score_inline(*lane_, scoring_)) queue_all();
  scoring_.clear();
  scoring_spans_.clear();
}

void InlineBatch::queue_all() {
  for (const Span& span : scoring_spans_) {
    for (size_t i = 0; i < span.size; ++i) {
      const auto pushed = queue_.try_push(scoring_[span.begin + i], scoring::Priority::kHigh);
      if (pushed != scoring::ScoringQueue::PushResult::kOk) {
        span.call->abandon(span.size - i, push_refusal(pushed));
        break;
      }
    }
  }
}

}  // namespace vigil::http

#include "http/scoring_call.h"

namespace vigil::http {

void submit(const std::shared_ptr<ScoringCall>& call, std::vector<std::vector<float>>& rows,
            const std::vector<std::string>* ids, scoring::ScoringQueue& queue) {
  const size_t n = rows.size();
  for (size_t i = 0; i < n; ++i) {
    scoring::ScoreRequest r;
    if (ids != nullptr) r.id = (*ids)[i];
    r.features = rows[i];  // copied into the request's inline storage
    r.origin = scoring::Origin::kHttp;
    r.explain_top_k = call->top_k();
    r.done = [call, i](scoring::ScoreRequest&, const scoring::ScoreOutcome& o) {
      call->complete(i, o);
    };
    const auto pushed = queue.try_push(r, scoring::Priority::kHigh);
    if (pushed != scoring::ScoringQueue::PushResult::kOk) {
      call->abandon(n - i, error_response(503, pushed == scoring::ScoringQueue::PushResult::kFull
                                                   ? "scoring queue is full, retry later"
                                                   : "server is shutting down"));
      return;
    }
  }
}

}  // namespace vigil::http

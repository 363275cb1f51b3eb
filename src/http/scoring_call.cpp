#include "http/scoring_call.h"

namespace vigil::http {

scoring::ScoreRequest make_request(const std::shared_ptr<ScoringCall>& call,
                                   const std::vector<float>& row, const std::string* id, size_t i) {
  scoring::ScoreRequest r;
  if (id != nullptr) r.id = *id;
  r.features = row;  // copied into the request's inline storage
  r.origin = scoring::Origin::kHttp;
  r.explain_top_k = call->top_k();
  r.model = call->model_index();
  r.done = [call, i](scoring::ScoreRequest&, const scoring::ScoreOutcome& o) {
    call->complete(i, o);
  };
  return r;
}

Response push_refusal(scoring::ScoringQueue::PushResult pushed) {
  return error_response(503, pushed == scoring::ScoringQueue::PushResult::kFull
                                 ? "scoring queue is full, retry later"
                                 : "server is shutting down");
}

void submit(const std::shared_ptr<ScoringCall>& call, std::vector<std::vector<float>>& rows,
            const std::vector<std::string>* ids, scoring::ScoringQueue& queue) {
  const size_t n = rows.size();
  for (size_t i = 0; i < n; ++i) {
    scoring::ScoreRequest r = make_request(call, rows[i], ids != nullptr ? &(*ids)[i] : nullptr, i);
    const auto pushed = queue.try_push(r, scoring::Priority::kHigh);
    if (pushed != scoring::ScoringQueue::PushResult::kOk) {
      call->abandon(n - i, push_refusal(pushed));
      return;
    }
  }
}

}  // namespace vigil::http

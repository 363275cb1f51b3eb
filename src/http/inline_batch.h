// InlineBatch: the scoring rows one io thread reads in one pass of its event loop, scored
// together on that thread when the batcher is idle (scoring::Batcher::try_score_inline: one
// forward, no hand-off to a worker and back), else queued as usual (the workers then batch
// them with everything else). Internal to src/http; one per io thread, used on it only.
//
// The first rows of a pass post flush() to the io thread's loop, so it runs after the reads
// that completed in the same pass: concurrent requests share one forward, while a lone
// request is scored at once. A call whose rows do not fit the queue is answered 503, as
// submit() does.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/scoring_call.h"
#include "scoring/batcher.h"
#include "scoring/scoring_queue.h"

namespace vigil::http {

class InlineBatch {
 public:
  // `post` runs a function later on this io thread (after what is ready now).
  InlineBatch(scoring::Batcher& batcher, scoring::ScoringQueue& queue,
              std::function<void(std::function<void()>)> post);

  // Takes one call's rows (and transaction ids, when given), as submit() would queue them.
  void add(const std::shared_ptr<ScoringCall>& call, std::vector<std::vector<float>>& rows,
           const std::vector<std::string>* ids);
  // Scores what was added inline, or queues it; run through `post`.
  void flush();

 private:
  struct Span {  // one call's requests in pending_ (scoring_)
    std::shared_ptr<ScoringCall> call;
    size_t begin = 0, size = 0;
  };
  void queue_all();

  scoring::Batcher& batcher_;
  scoring::ScoringQueue& queue_;
  const std::function<void(std::function<void()>)> post_;
  const std::unique_ptr<scoring::Batcher::InlineLane> lane_;
  std::vector<scoring::ScoreRequest> pending_;  // added since the last flush
  std::vector<Span> spans_;
  std::vector<scoring::ScoreRequest> scoring_;  // the flush's rows, being scored or queued
  std::vector<Span> scoring_spans_;
  bool flush_posted_ = false;
};

}  // namespace vigil::http

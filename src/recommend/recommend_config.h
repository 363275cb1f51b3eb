// The recommender's settings (POST /recommend, docs/scout.md).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace vigil::recommend {

struct RecommendConfig {
  std::string model = "scout";  // a folder of model.repository; empty: /recommend off
  size_t max_batch = 64;
  std::chrono::microseconds max_delay{0};
  size_t queue_capacity = 1024;

  std::vector<std::string> validate() const {
    std::vector<std::string> errors;
    if (max_batch < 1 || max_batch > 4096) errors.push_back("recommend.max_batch must be 1..4096");
    if (max_delay.count() < 0) errors.push_back("recommend.max_delay_us must be >= 0");
    if (queue_capacity < max_batch) {
      errors.push_back("recommend.queue_capacity must be >= recommend.max_batch");
    }
    return errors;
  }

  template <typename V>
  void fields(V& v) {
    v("model", model, "",
      "recommender model served by POST /recommend: a folder of model.repository holding "
      "<version>/model.pt (the highest is served; a higher one is picked up as "
      "model.reload_interval_ms "
      "and model.stable_ms say; tools/train_scout.py writes one). "
      "Empty: /recommend answers 404. A folder that is not there: /recommend answers 503 "
      "saying so, and scoring goes on");
    v("max_batch", max_batch, "requests",
      "recommendation requests per batch (one matrix product) at most");
    v("max_delay_us", max_delay, "us",
      "a batch waits this long after its oldest request for more, at most; 0 = it takes what "
      "is queued at once (under load, batches form while the previous one runs)");
    v("queue_capacity", queue_capacity, "requests",
      "recommendation requests waiting at most; beyond, 503 + Retry-After");
  }
};

}  // namespace vigil::recommend

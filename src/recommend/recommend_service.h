// The seam between the HTTP side-port and the recommender: POST /recommend asks a
// RecommendService (recommender.h serves a TorchScript model behind it; tests may put a fake
// one), and gets its answer through a callback. Free of LibTorch.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace vigil::recommend {

struct Recommendation {
  std::vector<std::string> items;  // best first, ties in item id order
  std::vector<float> scores;
  bool cold_start = false;  // an unknown customer: the most popular items
  std::string version;      // the model version that answered
};

// The largest k a request may ask.
inline constexpr int kMaxK = 100;

class RecommendService {
 public:
  using Done = std::function<void(Result<Recommendation>)>;
  virtual ~RecommendService() = default;

  // Queues one request for the top `k` items of `customer_id` (k in 1..kMaxK, checked by the
  // caller); with `exclude_seen`, none the customer visited in the model's training data.
  // False when it cannot be queued (full, or stopping): `done` is not called then. Otherwise
  // `done` is called exactly once, on the service's thread; it must not block.
  virtual bool recommend(std::string customer_id, int k, bool exclude_seen, Done done) = 0;
  virtual const std::string& name() const = 0;
  virtual std::string version() const = 0;  // the version served now
};

}  // namespace vigil::recommend

// The service's velocity-feature settings. What is computed is the model's features.yaml
// (feature_spec.h), not configuration: a model is trained on one spec.
#pragma once

#include <string>
#include <vector>

namespace vigil::features {

struct FeaturesConfig {
  bool log = true;  // scores of raw transactions carry their features

  std::vector<std::string> validate() const { return {}; }

  template <typename V>
  void fields(V& v) {
    v("log", log, "",
      "scores of raw transactions (a model with a features.yaml) carry the velocity features "
      "they were computed with, the spec hash and whether the history was complete");
  }
};

}  // namespace vigil::features

// The service's velocity-feature settings. What is computed is the model's features.yaml
// (feature_spec.h), not configuration: a model is trained on one spec.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace vigil::features {

struct FeaturesConfig {
  bool log = true;  // scores of raw transactions carry their features
  // Snapshots of each partition's state in Redis (redis.url); 0 s turns them off.
  std::chrono::seconds snapshot_interval{30};
  int snapshot_ttl_s = 7 * 86400;
  std::string snapshot_key_prefix = "vigil:features:";
  size_t snapshot_max_pending_bytes = 64u << 20;

  std::vector<std::string> validate() const {
    std::vector<std::string> errors;
    if (snapshot_interval.count() < 0)
      errors.push_back("features.snapshot.interval_s must be >= 0");
    if (snapshot_ttl_s <= 0 || snapshot_ttl_s < 4 * snapshot_interval.count()) {
      errors.push_back("features.snapshot.ttl_s must be > 0 and at least 4 snapshot intervals");
    }
    if (snapshot_key_prefix.empty())
      errors.push_back("features.snapshot.key_prefix must not be empty");
    if (snapshot_max_pending_bytes < (1u << 20)) {
      errors.push_back("features.snapshot.max_pending_bytes must be >= 1048576");
    }
    return errors;
  }

  template <typename V>
  void fields(V& v) {
    v("log", log, "",
      "scores of raw transactions (a model with a features.yaml) carry the velocity features "
      "they were computed with, the spec hash and whether the history was complete");
    v("snapshot.interval_s", snapshot_interval, "s",
      "a snapshot round of each partition's feature state to Redis (redis.url) starts at most "
      "this often, one shard at a time between records; on assignment the state is loaded "
      "from it and only the log after it is replayed. 0 = no snapshots: the whole log is "
      "replayed");
    v("snapshot.ttl_s", snapshot_ttl_s, "s", "TTL of each snapshot chunk in Redis");
    v("snapshot.key_prefix", snapshot_key_prefix, "",
      "key prefix of snapshot chunks: <prefix><group>:<topic>:<partition>:<shard>:<slot>");
    v("snapshot.max_pending_bytes", snapshot_max_pending_bytes, "bytes",
      "snapshot chunks waiting for Redis (once reached, the round waits; one chunk may go "
      "beyond)");
  }
};

}  // namespace vigil::features

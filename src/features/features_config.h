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
  // Terminal risk features (a features.yaml with `terminal`): the state every instance
  // shares in Redis, read through a local copy (docs/terminal-risk.md).
  std::chrono::milliseconds shared_refresh{1000};
  std::chrono::milliseconds shared_max_age{60000};
  std::string shared_key_prefix = "vigil:term:";
  size_t shared_max_backlog_records = 1'000'000;

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
    if (shared_refresh.count() < 10) errors.push_back("features.shared.refresh_ms must be >= 10");
    if (shared_max_age < 2 * shared_refresh) {
      errors.push_back(
          "features.shared.max_age_ms must be at least twice features.shared.refresh_ms");
    }
    if (shared_key_prefix.empty()) errors.push_back("features.shared.key_prefix must not be empty");
    if (shared_max_backlog_records < 1000) {
      errors.push_back("features.shared.max_backlog_records must be >= 1000");
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
    v("shared.refresh_ms", shared_refresh, "ms",
      "terminal risk features: how often the local copy of the shared terminal state is read "
      "from Redis. A report counts for transactions of the days after it was made, once read "
      "and this long more");
    v("shared.max_age_ms", shared_max_age, "ms",
      "terminal risk features: a local copy older than this (Redis unreachable) is not used: "
      "scores say \"history\": \"partial\" and /ready says why");
    v("shared.key_prefix", shared_key_prefix, "",
      "key prefix of the shared terminal state: <prefix><group>:<topic>:tx:<day>, ...");
    v("shared.max_backlog_records", shared_max_backlog_records, "records",
      "transactions waiting to be counted in the shared terminal state at most; at it the "
      "consumer pauses its partitions until half are written");
  }
};

}  // namespace vigil::features

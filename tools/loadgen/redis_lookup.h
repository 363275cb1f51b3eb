// Reads scores back from vigil's Redis cache, to compare them with the scores topic.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace vigil::loadgen {

struct RedisReading {
  std::string transaction_id;
  std::optional<std::string> value;  // empty when the key does not exist
};

// GETs `<key_prefix><id>` for each of `ids` from the Redis at `url` (redis://...), with a 1 s
// connect and command timeout. vigil's Redis sink writes asynchronously, possibly a moment
// after the score reached the topic, so a missing key is asked again every 100 ms for up to
// `settle` in all. Fails (naming the cause) when Redis cannot be reached or answers an error.
Result<std::vector<RedisReading>> read_scores_from_redis(const std::string& url,
                                                         const std::string& key_prefix,
                                                         const std::vector<std::string>& ids,
                                                         std::chrono::milliseconds settle);

}  // namespace vigil::loadgen

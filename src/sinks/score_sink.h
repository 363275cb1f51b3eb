// The sink seam for best-effort score consumers that keep their own accounting (the Redis
// cache; a recording sink in tests). publish() never blocks for long: when the sink cannot
// keep up it counts what it skipped instead. The Kafka sink is not behind this interface:
// its deliveries drive offset commits, so it takes a delivery callback (see KafkaSink).
#pragma once

#include "sinks/score_record.h"

namespace vigil::sinks {

class ScoreSink {
 public:
  virtual ~ScoreSink() = default;
  // Thread-safe. Returns false when the record was not accepted (counted by the sink).
  virtual bool publish(const ScoreRecord& record) = 0;
};

}  // namespace vigil::sinks

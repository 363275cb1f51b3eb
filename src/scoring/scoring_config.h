// Configuration of the model and the scoring engine (keys model.* and scoring.*).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "scoring/batcher.h"
#include "scoring/scoring_queue.h"

namespace vigil::scoring {

struct ModelConfig {
  std::string repository = "models";             // model repository folder
  std::string name = "fraud_mlp";                // model served
  std::string version;                           // version folder to serve; empty = the highest
  std::string device = "auto";                   // cpu | cuda | cuda:N | auto
  int intra_op_threads = 1;                      // LibTorch intra-op threads per forward
  std::chrono::milliseconds reload_interval{0};  // poll for new versions; 0 = off

  std::vector<std::string> validate() const;
};

struct ScoringConfig {
  size_t max_batch_size = 256;
  std::chrono::microseconds max_delay{2000};
  int workers = 0;  // 0 = one per core
  size_t queue_capacity = 65536;
  double high_watermark = 0.8;
  double low_watermark = 0.5;
  std::chrono::milliseconds watchdog_stall{10000};  // a worker busy this long is stuck
  bool eager_when_idle = true;  // flush a partial batch at once when no worker is busy

  BatcherConfig batcher() const { return {max_batch_size, max_delay, workers, eager_when_idle}; }
  QueueConfig queue() const { return {queue_capacity, high_watermark, low_watermark}; }
  std::vector<std::string> validate() const;
};

}  // namespace vigil::scoring

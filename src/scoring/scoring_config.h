// Configuration of the model and the scoring engine (keys model.* and scoring.*).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "scoring/batcher.h"
#include "scoring/scoring_queue.h"

namespace vigil::scoring {

struct ModelConfig {
  std::string repository = "models";  // model repository folder
  std::string name = "fraud_mlp";     // model served
  std::string version;                // version folder to serve; empty = the highest
  std::string device = "auto";        // cpu | cuda | cuda:N | auto
  int intra_op_threads = 1;           // LibTorch intra-op threads per forward
  // Watching the repository: how often it is read (0 = never), and how long a version's
  // model.pt must stay unchanged (size and modification time) before it is loaded.
  std::chrono::milliseconds reload_interval{2000};
  std::chrono::milliseconds stable{2000};
  std::string shadow_version;  // a second version scoring every batch too; empty = none

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
  size_t explain_top_k = 0;     // reason codes on every streamed score (0 = none)

  BatcherConfig batcher() const {
    return {max_batch_size, max_delay, workers, eager_when_idle, explain_top_k};
  }
  QueueConfig queue() const { return {queue_capacity, high_watermark, low_watermark}; }
  std::vector<std::string> validate() const;
};

}  // namespace vigil::scoring

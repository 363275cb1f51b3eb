// Configuration of the model and the scoring engine (keys model.* and scoring.*).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/config_fields.h"
#include "scoring/batcher.h"
#include "scoring/scoring_queue.h"
#include "scoring/watchdog.h"

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
  // More models served beside `name`, comma-separated; "*" = every scoring model in the
  // repository. Each follows its highest version, without a shadow.
  std::string also_serve;
  // Version pins and shadow versions of those models, "name=version,..." (model.name's are
  // `version` and `shadow_version`).
  std::string also_versions;
  std::string also_shadow_versions;

  std::vector<std::string> validate() const;
  // The names in also_serve ("*" is left for the repository to expand), without `name`.
  std::vector<std::string> also_served() const;
  // This config for model `other` of also_serve: its name, and its own pin and shadow.
  ModelConfig for_model(const std::string& other) const;
  // The models also_versions and also_shadow_versions name.
  std::vector<std::string> pinned_or_shadowed() const;

  template <typename V>
  void fields(V& v) {
    v("repository", repository, "", "model repository folder (<name>/<version>/model.pt)");
    v("name", name, "", "model served");
    v("version", version, "", "version to serve and stay on; empty = the highest, followed");
    v("device", device, "", "cpu, cuda, cuda:N or auto (CUDA when LibTorch sees a GPU)");
    v("intra_op_threads", intra_op_threads, "threads",
      "LibTorch threads per forward pass (workers scale across cores)");
    v("reload_interval_ms", reload_interval, "ms",
      "how often the repository is read for new versions (0 = never)");
    v("stable_ms", stable, "ms",
      "a new version's model.pt must stay unchanged this long before it is loaded");
    v("shadow_version", shadow_version, "",
      "a second version that scores every batch too, published to kafka.shadow_topic; empty = "
      "none");
    v("also_serve", also_serve, "",
      "more models served beside model.name, comma-separated, or * for every scoring model in "
      "the repository; each follows its highest version; ask for one with /predict?model= or "
      "/v2/models/{name}");
    v("also_versions", also_versions, "",
      "versions to serve and stay on for models of also_serve, name=version,...; the others "
      "follow their highest");
    v("also_shadow_versions", also_shadow_versions, "",
      "shadow versions for models of also_serve, name=version,... (as shadow_version)");
  }
};

struct ExplainConfig {
  size_t top_k = 0;  // reason codes on every streamed score

  std::vector<std::string> validate() const;

  template <typename V>
  void fields(V& v) {
    v("top_k", top_k, "inputs",
      "reason codes (top contributing inputs) on every streamed score; 0 = none; clamped to "
      "the model's inputs");
  }
};

struct ScoringConfig {
  size_t max_batch_size = 256;
  std::chrono::microseconds max_delay{2000};
  int workers = 0;  // 0 = one per core
  size_t queue_capacity = 65536;
  double high_watermark = 0.8;
  double low_watermark = 0.5;
  std::chrono::milliseconds watchdog_stall{10000};  // a worker busy this long is stuck
  // A worker busy this long is hung: liveness fails and the process is restarted. Six times
  // the stall bound, itself far above the slowest batch expected.
  std::chrono::milliseconds watchdog_liveness{60000};
  bool eager_when_idle = true;  // flush a partial batch at once when no worker is busy

  BatcherConfig batcher(const ExplainConfig& explain) const {
    return {max_batch_size, max_delay, workers, eager_when_idle, explain.top_k};
  }
  QueueConfig queue() const { return {queue_capacity, high_watermark, low_watermark}; }
  WatchdogLimits watchdog() const { return {watchdog_stall, watchdog_liveness}; }
  std::vector<std::string> validate() const;

  template <typename V>
  void fields(V& v) {
    v("max_batch_size", max_batch_size, "rows", "rows per forward pass at most");
    v("max_delay_us", max_delay, "us",
      "longest the oldest waiting request waits for its batch to fill");
    v("eager_when_idle", eager_when_idle, "",
      "flush a partial batch at once when no worker is busy (low latency at low load)");
    v("workers", workers, "threads", "scoring worker threads (0 = one per core)");
    v("queue_capacity", queue_capacity, "requests", "requests the scoring queue holds at most");
    v("high_watermark", high_watermark, "fraction",
      "queue fill at which Kafka partitions are paused");
    v("low_watermark", low_watermark, "fraction", "queue fill below which they resume");
    v("watchdog_stall_ms", watchdog_stall, "ms",
      "a scoring worker busy this long on one batch fails readiness");
    v("watchdog_liveness_ms", watchdog_liveness, "ms",
      "a scoring worker busy this long on one batch fails liveness (/health), so the process is "
      "restarted; >= watchdog_stall_ms");
  }
};

}  // namespace vigil::scoring

// The model seam: a scoring model that turns rows of float features into fraud scores.
// Real implementation: TorchModel (torch_model.cpp, the only file that includes LibTorch).
// Unit tests use a fake. A Model is shared by all workers; each worker creates its own
// ModelSession (per-worker state: the OpenMP thread count of its thread).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace vigil::scoring {

// What a caller needs to know about the served model (from model.yaml and the repository).
struct ModelInfo {
  std::string name;
  std::string version;
  std::vector<std::string> input_names;  // feature order the model expects
  std::string output_name = "score";
  float threshold = 0.5f;  // score >= threshold => is_fraud
  std::string description;
  std::string path;            // model file
  std::string device = "cpu";  // device actually used
  int64_t loaded_at_ms = 0;    // wall clock
  // Training mean of each input (model.yaml `baseline`), the reference point of reason codes;
  // empty when model.yaml has none (then reason codes are unavailable).
  std::vector<float> baseline;
  std::string metadata_text;  // model.yaml as read when this version was loaded
  // A model of raw transactions: its features.yaml (the velocity features vigil computes in
  // the stream, src/features), whose hash model.yaml records. Both empty for a model of
  // ready-made features.
  std::string feature_spec_path;
  std::string feature_spec_hash;
  size_t width() const { return input_names.size(); }
};

// One worker's handle on the model. Not thread-safe: use from one thread at a time.
class ModelSession {
 public:
  virtual ~ModelSession() = default;
  // Scores `rows` rows of `width` floats laid out contiguously (row-major) into `out`
  // (`rows` floats). Returns an error (never throws) when the forward pass fails.
  virtual Status score(const float* features, size_t rows, float* out) = 0;
  // Scores like score() and also attributes each score to the inputs: contributions[r * width
  // + i] = d score_r / d x_ri * (x_ri - baseline_i), the gradients of the whole batch from
  // one backward pass. `baseline` has `width` floats. Models that cannot differentiate
  // return an error.
  virtual Status explain(const float* features, size_t rows, const float* baseline, float* out,
                         float* contributions) {
    (void)features, (void)rows, (void)baseline, (void)out, (void)contributions;
    return Status::Error("this model cannot explain its scores");
  }
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelInfo& info() const = 0;
  // Creates a session for one worker thread; call it on that thread (per-thread runtime
  // settings such as OpenMP's thread count are applied there). Thread-safe.
  virtual std::unique_ptr<ModelSession> new_session() = 0;
};

}  // namespace vigil::scoring

// The model seam: a scoring model that turns rows of float features into fraud scores.
// Real implementation: TorchModel (torch_model.cpp, the only file that includes LibTorch).
// Unit tests use a fake. A Model is shared by all workers; each worker creates its own
// ModelSession (which owns per-worker state: scratch tensors, on GPU a CUDA stream).
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
  size_t width() const { return input_names.size(); }
};

// One worker's handle on the model. Not thread-safe: use from one thread at a time.
class ModelSession {
 public:
  virtual ~ModelSession() = default;
  // Scores `rows` rows of `width` floats laid out contiguously (row-major) into `out`
  // (`rows` floats). Returns an error (never throws) when the forward pass fails.
  virtual Status score(const float* features, size_t rows, float* out) = 0;
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

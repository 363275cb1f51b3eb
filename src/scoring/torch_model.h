// LibTorch TorchScript implementation of the Model seam. This header deliberately does not
// include torch headers; only torch_model.cpp does.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "scoring/model.h"

namespace vigil::scoring {

struct TorchModelOptions {
  std::string device = "auto";    // cpu | cuda | cuda:N | auto
  int intra_op_threads = 1;       // LibTorch intra-op threads (process-wide setting)
  size_t warmup_batch_size = 64;  // rows in the warm-up forward
};

// Loads a TorchScript file, validates it against `info` (input width, output shape, finite
// output), warms it up, and returns the model. `info.device` is overwritten with the device
// used. Any LibTorch exception becomes an error naming the file.
// Loads `info.path` on the configured device and checks it with a forward on zeros. Shared:
// the batcher's workers and the model manager hold it.
Result<std::shared_ptr<Model>> load_torch_model(ModelInfo info, const TorchModelOptions& options);

// Process-wide LibTorch threading: intra-op threads per forward (1 = each worker uses one core).
void set_torch_intra_op_threads(int threads);

// Whether LibTorch was built with CUDA and sees a device (for `auto` and for start-up checks).
bool torch_cuda_available();

}  // namespace vigil::scoring

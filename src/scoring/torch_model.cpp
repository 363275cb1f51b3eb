#include "scoring/torch_model.h"

#include <ATen/Parallel.h>
#include <torch/script.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <utility>

#if __has_include(<torch/cuda.h>)
#include <torch/cuda.h>
#define VIGIL_HAS_TORCH_CUDA_H 1
#endif

namespace vigil::scoring {
namespace {

// Inference mode appeared in LibTorch 1.9; it is cheaper than NoGradGuard where it exists.
struct InferenceGuard {
  c10::InferenceMode mode;
};

Result<torch::Device> resolve_device(const std::string& requested) {
  if (requested == "cpu") return torch::Device(torch::kCPU);
  const bool cuda = torch_cuda_available();
  if (requested == "auto")
    return cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (requested.rfind("cuda", 0) == 0) {
    if (!cuda) {
      return Result<torch::Device>::Error(
          "model.device=" + requested +
          " but no CUDA device is usable (LibTorch built without CUDA, or no GPU visible); "
          "use model.device=cpu or auto");
    }
    try {
      torch::Device d(requested);
      return d;
    } catch (const std::exception& e) {
      return Result<torch::Device>::Error("model.device=" + requested + ": " + e.what());
    }
  }
  return Result<torch::Device>::Error("model.device must be cpu, cuda, cuda:N or auto, got '" +
                                      requested + "'");
}

class TorchSession final : public ModelSession {
 public:
  // Created on the worker thread that will use it (Batcher does so), which matters: OpenMP's
  // thread count is a per-thread setting, so a worker that did not set it would run every
  // GEMM on a team of OpenMP threads spinning against the other workers.
  TorchSession(torch::jit::script::Module& module, torch::Device device, size_t width,
               int intra_op_threads)
      : module_(module), device_(device), width_(width) {
    if (intra_op_threads > 0) at::set_num_threads(intra_op_threads);
  }

  Status score(const float* features, size_t rows, float* out) override {
    try {
      InferenceGuard guard;
      // from_blob borrows the caller's contiguous buffer: no copy on CPU.
      auto input = torch::from_blob(const_cast<float*>(features),
                                    {static_cast<int64_t>(rows), static_cast<int64_t>(width_)},
                                    torch::kFloat32);
      if (device_.is_cuda()) input = input.to(device_, /*non_blocking=*/false);
      std::vector<torch::jit::IValue> args{input};
      torch::Tensor y = module_.forward(args).toTensor();
      if (y.dim() == 2 && y.size(1) == 1) y = y.squeeze(1);
      if (y.dim() != 1 || y.size(0) != static_cast<int64_t>(rows)) {
        return Status::Error("model output has shape " + shape_of(y) + ", expected [" +
                             std::to_string(rows) + "]");
      }
      y = y.to(torch::kCPU, torch::kFloat32).contiguous();
      std::memcpy(out, y.data_ptr<float>(), rows * sizeof(float));
      return Status::Ok();
    } catch (const std::exception& e) {
      return Status::Error(std::string("model forward failed: ") + first_line(e.what()));
    }
  }

  Status explain(const float* features, size_t rows, const float* baseline, float* out,
                 float* contributions) override {
    try {
      // Gradients need autograd: no inference mode here.
      torch::AutoGradMode grad(true);
      const int64_t r = static_cast<int64_t>(rows), w = static_cast<int64_t>(width_);
      auto x = torch::from_blob(const_cast<float*>(features), {r, w}, torch::kFloat32)
                   .to(device_, torch::kFloat32, /*non_blocking=*/false, /*copy=*/true)
                   .requires_grad_(true);
      std::vector<torch::jit::IValue> args{x};
      torch::Tensor y = module_.forward(args).toTensor();
      if (y.dim() == 2 && y.size(1) == 1) y = y.squeeze(1);
      if (y.dim() != 1 || y.size(0) != r) {
        return Status::Error("model output has shape " + shape_of(y) + ", expected [" +
                             std::to_string(rows) + "]");
      }
      // Rows are independent, so one backward pass of the sum gives every row's gradient.
      y.sum().backward();
      auto base =
          torch::from_blob(const_cast<float*>(baseline), {1, w}, torch::kFloat32).to(device_);
      torch::Tensor c = (x.grad() * (x.detach() - base)).to(torch::kCPU).contiguous();
      torch::Tensor scores = y.detach().to(torch::kCPU, torch::kFloat32).contiguous();
      std::memcpy(out, scores.data_ptr<float>(), rows * sizeof(float));
      std::memcpy(contributions, c.data_ptr<float>(), rows * width_ * sizeof(float));
      return Status::Ok();
    } catch (const std::exception& e) {
      return Status::Error(std::string("model explain failed: ") + first_line(e.what()));
    }
  }

  static std::string shape_of(const torch::Tensor& t) {
    std::string s = "[";
    for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "," : "") + std::to_string(t.size(i));
    return s + "]";
  }
  // TorchScript interpreter errors start with a generic line and a traceback; the cause
  // ("RuntimeError: ...") is the last line. Other errors say it on the first line.
  static std::string first_line(const std::string& s) {
    std::string line = s.substr(0, s.find('\n'));
    if (line.find("TorchScript interpreter") != std::string::npos) {
      size_t end = s.find_last_not_of(" \n");
      if (end != std::string::npos) {
        size_t start = s.rfind('\n', end);
        line = s.substr(start == std::string::npos ? 0 : start + 1,
                        end - (start == std::string::npos ? 0 : start + 1) + 1);
      }
    }
    return line.size() > 400 ? line.substr(0, 400) : line;
  }

 private:
  torch::jit::script::Module& module_;
  torch::Device device_;
  size_t width_;
};

class TorchModel final : public Model {
 public:
  TorchModel(ModelInfo info, torch::jit::script::Module module, torch::Device device,
             int intra_op_threads)
      : info_(std::move(info)),
        module_(module),  // a handle: copies share the module
        device_(device),
        intra_op_threads_(intra_op_threads) {}

  const ModelInfo& info() const override { return info_; }
  std::unique_ptr<ModelSession> new_session() override {
    return std::make_unique<TorchSession>(module_, device_, info_.width(), intra_op_threads_);
  }

 private:
  ModelInfo info_;
  torch::jit::script::Module module_;  // forward() is safe to call from several threads
  torch::Device device_;
  int intra_op_threads_;
};

}  // namespace

void set_torch_intra_op_threads(int threads) {
  if (threads > 0) at::set_num_threads(threads);
}

bool torch_cuda_available() {
#ifdef VIGIL_HAS_TORCH_CUDA_H
  try {
    return torch::cuda::is_available();
  } catch (...) {
    return false;
  }
#else
  return false;
#endif
}

Result<std::shared_ptr<Model>> load_torch_model(ModelInfo info, const TorchModelOptions& options) {
  using R = Result<std::shared_ptr<Model>>;
  auto device = resolve_device(options.device);
  if (!device) return R::Error(device.error());
  if (info.width() == 0) return R::Error("model " + info.name + ": no input features declared");

  torch::jit::script::Module module;
  try {
    module = torch::jit::load(info.path, *device);
    module.eval();
  } catch (const std::exception& e) {
    return R::Error("cannot load TorchScript model '" + info.path +
                    "': " + TorchSession::first_line(e.what()));
  }
  // Frozen for serving: parameters inlined as constants and the graph simplified. The same
  // scores (bit for bit on the shipped models), gradients with respect to the input still flow
  // (explain), and less interpreter work per forward: fraud_mlp's one-row forward took 9.3 us
  // instead of 11.3 (64 rows: 17.4 instead of 19.1; 256: the same). A module freezing refuses
  // (one that changes its own attributes in forward, say) is served as loaded.
  try {
    module = torch::jit::freeze(module);
  } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): served unfrozen
  }
  info.device = device->str();
  info.loaded_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  auto model = std::make_shared<TorchModel>(std::move(info), std::move(module), *device,
                                            options.intra_op_threads);

  // Validate and warm up: a forward on zeros must give one finite score per row.
  const size_t rows = std::max<size_t>(options.warmup_batch_size, 1);
  std::vector<float> zeros(rows * model->info().width(), 0.0f);
  std::vector<float> out(rows, 0.0f);
  auto session = model->new_session();
  for (int i = 0; i < 3; ++i) {
    Status st = session->score(zeros.data(), rows, out.data());
    if (!st.ok()) {
      return R::Error("model '" + model->info().path + "' does not accept " +
                      std::to_string(model->info().width()) +
                      " input features as declared: " + st.message());
    }
  }
  for (float v : out) {
    if (!std::isfinite(v)) {
      return R::Error("model '" + model->info().path + "' gives non-finite scores on zeros");
    }
  }
  return R(std::shared_ptr<Model>(std::move(model)));
}

}  // namespace vigil::scoring

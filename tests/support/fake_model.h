// A fake scoring model for unit tests (no LibTorch): score = sigmoid(bias + sum of features *
// 0.1); the bias (0 unless set) moves the scores across the threshold.
// Optional per-forward delay (a slow model), and a poison value: a row whose first feature
// equals `poison` makes the forward pass fail, like a model that throws on some input.
#pragma once

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "scoring/model.h"

namespace vigil::testing {

struct FakeModelOptions {
  size_t width = 30;
  std::chrono::microseconds delay{0};                      // per forward pass
  float poison = std::numeric_limits<float>::quiet_NaN();  // NaN = no poison
  float threshold = 0.5f;
  double bias = 0.0;  // added to the logit
  std::string name = "fake";
  std::string version = "1";
  bool explains = false;  // a baseline of zeros in its info and a linear attribution
  // Named inputs (width = their count) instead of f0..f<width-1>; a model of raw transactions
  // also names its features.yaml and the spec hash (ModelInfo).
  std::vector<std::string> input_names;
  std::string feature_spec_path;
  std::string feature_spec_hash;
};

inline float fake_score(const float* row, size_t width, double bias = 0.0) {
  double s = bias;
  for (size_t i = 0; i < width; ++i) s += row[i] * 0.1;
  return static_cast<float>(1.0 / (1.0 + std::exp(-s)));
}

class FakeModel final : public scoring::Model {
 public:
  explicit FakeModel(FakeModelOptions o = {}) : options_(o) {
    info_.name = o.name;
    info_.version = o.version;
    if (!o.input_names.empty()) {
      options_.width = o.input_names.size();
      info_.input_names = o.input_names;
    } else {
      for (size_t i = 0; i < o.width; ++i) info_.input_names.push_back("f" + std::to_string(i));
    }
    info_.feature_spec_path = o.feature_spec_path;
    info_.feature_spec_hash = o.feature_spec_hash;
    info_.threshold = o.threshold;
    info_.output_name = "score";
    info_.metadata_text = "name: " + o.name + "\nthreshold: 0.5\n";
    if (o.explains) info_.baseline.assign(options_.width, 0.0f);
  }
  const scoring::ModelInfo& info() const override { return info_; }
  std::unique_ptr<scoring::ModelSession> new_session() override {
    return std::make_unique<Session>(*this);
  }
  // Forward passes run so far and the largest batch seen (all sessions).
  uint64_t forwards() const { return forwards_.load(); }
  size_t max_batch_seen() const { return max_batch_.load(); }
  uint64_t rows_scored() const { return rows_.load(); }

 private:
  class Session final : public scoring::ModelSession {
   public:
    explicit Session(FakeModel& m) : m_(m) {}
    Status score(const float* features, size_t rows, float* out) override {
      m_.forwards_.fetch_add(1);
      size_t prev = m_.max_batch_.load();
      while (rows > prev && !m_.max_batch_.compare_exchange_weak(prev, rows)) {
      }
      if (m_.options_.delay.count() > 0) std::this_thread::sleep_for(m_.options_.delay);
      const size_t w = m_.options_.width;
      for (size_t r = 0; r < rows; ++r) {
        if (features[r * w] == m_.options_.poison) return Status::Error("poison row");
        out[r] = fake_score(features + r * w, w, m_.options_.bias);
      }
      m_.rows_.fetch_add(rows);
      return Status::Ok();
    }
    // The contribution of input i is 0.1 * (x_i - baseline_i): the logit's, exact for it.
    Status explain(const float* features, size_t rows, const float* baseline, float* out,
                   float* contributions) override {
      if (!m_.options_.explains)
        return ModelSession::explain(features, rows, baseline, out, contributions);
      const size_t w = m_.options_.width;
      for (size_t i = 0; i < rows * w; ++i) {
        contributions[i] = 0.1f * (features[i] - baseline[i % w]);
      }
      return score(features, rows, out);
    }

   private:
    FakeModel& m_;
  };

  FakeModelOptions options_;
  scoring::ModelInfo info_;
  std::atomic<uint64_t> forwards_{0};
  std::atomic<size_t> max_batch_{0};
  std::atomic<uint64_t> rows_{0};
};

}  // namespace vigil::testing

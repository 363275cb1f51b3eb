// Shared pieces of the HTTP tests: a real ScoringQueue + Batcher with a fake model, a recording
// score sink, and request helpers for the Router.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "http/http_deps.h"
#include "http/router.h"
#include "scoring/batcher.h"
#include "support/fake_model.h"
#include "support/wait.h"

namespace vigil::http::test {

namespace bhttp = boost::beast::http;

// An HTTP row as it reached the batcher's completion (the delivery stage in vigil): the scores
// that leave vigil, keyed by transaction id.
struct CompletedRow {
  std::string transaction_id;
  float score = 0.0f;
  std::string model_name;
  std::string model_version;
  size_t reasons = 0;
};

// Records the HTTP rows with a transaction id that were scored, as the delivery stage would
// cache and publish them.
class RecordingCompletion final : public scoring::BatchCompletion {
 public:
  void complete(std::vector<scoring::ScoreRequest>& batch,
                const std::vector<scoring::ScoreOutcome>& outcomes,
                const scoring::ModelInfo& model) override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < batch.size(); ++i) {
      const scoring::ScoreRequest& r = batch[i];
      if (r.origin != scoring::Origin::kHttp || r.id.empty() || !outcomes[i].status.ok()) continue;
      rows_.push_back({std::string(r.id.view()), outcomes[i].score, model.name, model.version,
                       outcomes[i].reasons.size()});
    }
  }
  std::vector<CompletedRow> records() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return rows_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<CompletedRow> rows_;
};

struct StackOptions {
  testing::FakeModelOptions model;
  std::vector<testing::FakeModelOptions> more_models;  // served beside it, asked for by name
  scoring::QueueConfig queue{1024, 0.8, 0.5};
  scoring::BatcherConfig batcher{64, std::chrono::microseconds(200), 2};
};

// The scoring engine the HTTP routes feed, with a fake model. Stops the batcher (draining)
// on destruction.
struct ScoringStack {
  explicit ScoringStack(StackOptions o = {})
      : queue(o.queue, SteadyClock::instance(), registry),
        model(std::make_shared<testing::FakeModel>(o.model)),
        batcher(o.batcher, queue, with_more(model, o.more_models), SteadyClock::instance(),
                registry, &sink) {
    batcher.start();
  }
  static std::vector<std::shared_ptr<scoring::Model>> with_more(
      std::shared_ptr<scoring::Model> first, const std::vector<testing::FakeModelOptions>& more) {
    std::vector<std::shared_ptr<scoring::Model>> models{std::move(first)};
    for (const auto& o : more) models.push_back(std::make_shared<testing::FakeModel>(o));
    return models;
  }
  ~ScoringStack() { batcher.stop(std::chrono::milliseconds(5000)); }

  HttpDeps deps() {
    HttpDeps d;
    d.queue = &queue;
    d.batcher = &batcher;  // the server scores inline while the batcher is idle, as deployed
    d.registry = &registry;
    if (batcher.model_count() > 1) {
      for (size_t i = 0; i < batcher.model_count(); ++i) {
        d.model_names.push_back(batcher.model_info(i)->name);
      }
    }
    d.model_info = [this](size_t i) -> std::shared_ptr<const scoring::ModelInfo> {
      if (!model_loaded) return nullptr;
      return batcher.model_info(i);
    };
    d.readiness_failures = [this] {
      std::lock_guard<std::mutex> lock(mutex);
      return extra_failures;
    };
    return d;
  }

  void set_failures(std::vector<std::string> f) {
    std::lock_guard<std::mutex> lock(mutex);
    extra_failures = std::move(f);
  }

  metrics::Registry registry;
  RecordingCompletion sink;  // before the batcher, which completes into it until it stops
  scoring::ScoringQueue queue;
  std::shared_ptr<testing::FakeModel> model;
  scoring::Batcher batcher;
  std::atomic<bool> model_loaded{true};
  std::mutex mutex;
  std::vector<std::string> extra_failures;
};

inline Request make_request(bhttp::verb method, const std::string& target,
                            const std::string& body = {},
                            const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  Request req{method, target, 11};
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  return req;
}

// Calls the router and waits (up to 10 s) for its answer, from whichever thread it comes.
inline Response call(Router& router, bhttp::verb method, const std::string& target,
                     const std::string& body = {},
                     const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  auto promise = std::make_shared<std::promise<Response>>();
  auto future = promise->get_future();
  auto calls = std::make_shared<std::atomic<int>>(0);
  router.handle(make_request(method, target, body, headers), [promise, calls](Response r) {
    if (calls->fetch_add(1) == 0) promise->set_value(std::move(r));
  });
  if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "no answer to " << target << " within 10 s";
    Response none;
    none.result(0u);
    return none;
  }
  return future.get();
}

inline boost::json::value parse_json(const std::string& body) {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  EXPECT_FALSE(ec) << "not JSON: " << body;
  return v;
}

inline std::string error_of(const Response& r) {
  auto v = parse_json(r.body());
  if (!v.is_object() || !v.as_object().contains("error"))
    return "<no error field: " + r.body() + ">";
  return std::string(v.at("error").as_string());
}

// A row of `width` features: row[i] = base + i * 0.01.
inline std::vector<float> row_values(float base, size_t width = 30) {
  std::vector<float> r(width);
  for (size_t i = 0; i < width; ++i) r[i] = base + static_cast<float>(i) * 0.01f;
  return r;
}

inline std::string array_instance(const std::vector<float>& row) {
  std::string s = "[";
  for (size_t i = 0; i < row.size(); ++i) s += (i ? "," : "") + std::to_string(row[i]);
  return s + "]";
}

// {"transaction_id": id (if any), "f0": .., "f1": .., ...} for the fake model's feature names.
inline std::string named_instance(const std::vector<float>& row, const std::string& id = {}) {
  std::string s = "{";
  if (!id.empty()) s += "\"transaction_id\":\"" + id + "\",";
  for (size_t i = 0; i < row.size(); ++i) {
    s += (i ? ",\"f" : "\"f") + std::to_string(i) + "\":" + std::to_string(row[i]);
  }
  return s + "}";
}

// The values std::to_string printed, as the server will parse them.
inline std::vector<float> as_sent(const std::vector<float>& row) {
  std::vector<float> r;
  for (float v : row) r.push_back(std::stof(std::to_string(v)));
  return r;
}

inline float expected_score(const std::vector<float>& row) {
  auto sent = as_sent(row);
  return testing::fake_score(sent.data(), sent.size());
}

}  // namespace vigil::http::test

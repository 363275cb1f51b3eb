// Metric primitives and the one registry every component registers into.
//
// The primitives are lock-free on the hot path (atomics only); registration takes a mutex
// and happens at construction time. Components wrap these in their own stats struct with
// verbs (`stats.batch_scored(n, elapsed)`), so business code never touches metric names.
// Exposition in the Prometheus text format lives in src/http (it uses prometheus-cpp's
// serializer), which keeps this header free of third-party dependencies: src/scoring must
// build with LibTorch alone on GPU hosts.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace vigil::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double d) {
    double cur = value_.load(std::memory_order_relaxed);
    while (!value_.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
    }
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Fixed upper bounds (le), cumulative only at snapshot time.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<uint64_t> cumulative_counts;  // one per bound, then +Inf
    uint64_t count = 0;
    double sum = 0.0;
    // Adds another snapshot of a histogram with the same bounds (series of one family); one
    // with other bounds is ignored.
    void add(const Snapshot& other);
  };
  Snapshot snapshot() const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

  // Non-atomic accumulator for one thread's batch of observations, merged with one atomic
  // add per bucket: hot paths observe per row without paying atomics per row.
  class Local {
   public:
    explicit Local(const Histogram& h) : bounds_(&h.bounds_), counts_(h.bounds_.size() + 1) {}
    void observe(double v);
    void clear();

   private:
    friend class Histogram;
    const std::vector<double>* bounds_;
    std::vector<uint64_t> counts_;
    uint64_t count_ = 0;
    double sum_ = 0.0;
  };
  void merge(const Local& local);

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1 (+Inf)
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

// Bucket helpers: latency in seconds from 50 us to ~13 s; sizes in powers of two.
std::vector<double> latency_buckets_seconds();
std::vector<double> exponential_buckets(double start, double factor, int count);

enum class Type { kCounter, kGauge, kHistogram };

struct SeriesSnapshot {
  Labels labels;
  double value = 0.0;             // counter or gauge
  Histogram::Snapshot histogram;  // histogram only
};

struct FamilySnapshot {
  std::string name;
  std::string help;
  Type type = Type::kCounter;
  std::vector<SeriesSnapshot> series;
};

// Owns every metric of the process. References returned by the accessors stay valid for
// the registry's lifetime. Asking twice for the same name and labels returns the same metric.
// Thread-safe.
class Registry {
 public:
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help,
                       const std::vector<double>& upper_bounds, const Labels& labels = {});
  // A gauge computed at collection time (queue depth, consumer lag). `fn` must stay callable
  // until remove_callbacks(owner) is called or the registry is destroyed.
  void gauge_callback(const std::string& name, const std::string& help, const Labels& labels,
                      const void* owner, std::function<double()> fn);
  void remove_callbacks(const void* owner);

  std::vector<FamilySnapshot> collect() const;

 private:
  struct Series {
    Labels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> callback;
    const void* owner = nullptr;
  };
  struct Family {
    std::string name;
    std::string help;
    Type type;
    std::vector<std::unique_ptr<Series>> series;
  };
  Series& series_for(const std::string& name, const std::string& help, Type type,
                     const Labels& labels);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family>> families_;
};

}  // namespace vigil::metrics

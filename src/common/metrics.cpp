#include "common/metrics.h"

#include <algorithm>
#include <cmath>

#include "common/status.h"

namespace vigil::metrics {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  VIGIL_CHECK(std::is_sorted(bounds_.begin(), bounds_.end()));
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double v) {
  const size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double cur = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

void Histogram::Local::observe(double v) {
  const size_t i =
      static_cast<size_t>(std::lower_bound(bounds_->begin(), bounds_->end(), v) - bounds_->begin());
  ++counts_[i];
  ++count_;
  sum_ += v;
}

void Histogram::Local::clear() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  sum_ = 0.0;
}

void Histogram::merge(const Local& local) {
  if (local.count_ == 0) return;
  for (size_t i = 0; i < local.counts_.size(); ++i) {
    if (local.counts_[i]) buckets_[i].fetch_add(local.counts_[i], std::memory_order_relaxed);
  }
  count_.fetch_add(local.count_, std::memory_order_relaxed);
  double cur = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(cur, cur + local.sum_, std::memory_order_relaxed)) {
  }
}

void Histogram::Snapshot::add(const Snapshot& other) {
  if (upper_bounds.empty() && cumulative_counts.empty()) {
    *this = other;
    return;
  }
  if (other.upper_bounds != upper_bounds) return;
  for (size_t i = 0; i < cumulative_counts.size(); ++i) {
    cumulative_counts[i] += other.cumulative_counts[i];
  }
  count += other.count;
  sum += other.sum;
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.upper_bounds = bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative_counts.push_back(running);
  }
  // count is derived from the buckets so that +Inf == count always holds in one scrape.
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> exponential_buckets(double start, double factor, int count) {
  std::vector<double> b;
  double v = start;
  for (int i = 0; i < count; ++i, v *= factor) b.push_back(v);
  return b;
}

std::vector<double> latency_buckets_seconds() {
  return exponential_buckets(50e-6, 2.0, 19);
}

Registry::Series& Registry::series_for(const std::string& name, const std::string& help, Type type,
                                       const Labels& labels) {
  auto fit = std::find_if(families_.begin(), families_.end(),
                          [&](const auto& f) { return f->name == name; });
  if (fit == families_.end()) {
    families_.push_back(std::make_unique<Family>(Family{name, help, type, {}}));
    fit = families_.end() - 1;
  }
  Family& family = **fit;
  VIGIL_CHECK(family.type == type);  // one name, one type
  for (auto& s : family.series) {
    if (s->labels == labels && !s->callback) return *s;
  }
  family.series.push_back(std::make_unique<Series>());
  family.series.back()->labels = labels;
  return *family.series.back();
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  Series& s = series_for(name, help, Type::kCounter, labels);
  if (!s.counter) s.counter = std::make_unique<Counter>();
  return *s.counter;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  Series& s = series_for(name, help, Type::kGauge, labels);
  if (!s.gauge) s.gauge = std::make_unique<Gauge>();
  return *s.gauge;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help,
                               const std::vector<double>& upper_bounds, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  Series& s = series_for(name, help, Type::kHistogram, labels);
  if (!s.histogram) s.histogram = std::make_unique<Histogram>(upper_bounds);
  return *s.histogram;
}

void Registry::gauge_callback(const std::string& name, const std::string& help,
                              const Labels& labels, const void* owner, std::function<double()> fn) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto fit = std::find_if(families_.begin(), families_.end(),
                          [&](const auto& f) { return f->name == name; });
  if (fit == families_.end()) {
    families_.push_back(std::make_unique<Family>(Family{name, help, Type::kGauge, {}}));
    fit = families_.end() - 1;
  }
  VIGIL_CHECK((*fit)->type == Type::kGauge);
  auto s = std::make_unique<Series>();
  s->labels = labels;
  s->callback = std::move(fn);
  s->owner = owner;
  (*fit)->series.push_back(std::move(s));
}

void Registry::remove_callbacks(const void* owner) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& f : families_) {
    auto& v = f->series;
    v.erase(std::remove_if(v.begin(), v.end(),
                           [&](const auto& s) { return s->callback && s->owner == owner; }),
            v.end());
  }
}

std::vector<FamilySnapshot> Registry::collect() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<FamilySnapshot> out;
  out.reserve(families_.size());
  for (const auto& f : families_) {
    FamilySnapshot fs{f->name, f->help, f->type, {}};
    for (const auto& s : f->series) {
      SeriesSnapshot ss;
      ss.labels = s->labels;
      if (s->counter) ss.value = static_cast<double>(s->counter->value());
      if (s->gauge) ss.value = s->gauge->value();
      if (s->callback) ss.value = s->callback();
      if (s->histogram) ss.histogram = s->histogram->snapshot();
      fs.series.push_back(std::move(ss));
    }
    if (!fs.series.empty()) out.push_back(std::move(fs));
  }
  return out;
}

}  // namespace vigil::metrics

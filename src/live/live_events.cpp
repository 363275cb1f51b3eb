#include "live/live_events.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <utility>

#include "common/clock.h"
#include "common/json_text.h"
#include "common/thread_name.h"
#include "live/live_page.h"

namespace vigil::live {

namespace {

using steady = std::chrono::steady_clock;

// A number with at most `digits` decimals (rates, milliseconds); null when not finite.
void append_fixed(std::string& out, double v, int digits) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, digits);
  out.append(buf, r.ptr);
}

// ,"key":value for each figure (`digits` decimals).
struct Figure {
  const char* key;
  double value;
  int digits;
};
void append_figures(std::string& out, std::initializer_list<Figure> figures) {
  for (const Figure& f : figures) {
    out += ",\"";
    out += f.key;
    out += "\":";
    append_fixed(out, f.value, f.digits);
  }
}
// ,"key":{"a":..,"b":..}
void append_object(std::string& out, const char* key, std::initializer_list<Figure> figures) {
  out += ",\"";
  out += key;
  out += "\":{";
  const size_t at = out.size();
  append_figures(out, figures);
  out.erase(at, 1);  // the first figure's comma
  out += '}';
}

std::string frame(std::string_view event, std::string_view data) {
  std::string f;
  f.reserve(event.size() + data.size() + 16);
  f += "event: ";
  f += event;
  f += "\ndata: ";
  f += data;
  f += "\n\n";
  return f;
}

// Bucket counts (not cumulative) of one histogram summed over its series.
struct Buckets {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;  // per bound, then +Inf
  uint64_t count = 0;
  double sum = 0.0;

  Buckets() = default;
  explicit Buckets(const metrics::Histogram::Snapshot& s) { add(s); }

  void add(const metrics::Histogram::Snapshot& s) {
    if (s.upper_bounds.empty()) return;
    if (bounds.empty()) {
      bounds = s.upper_bounds;
      counts.assign(s.cumulative_counts.size(), 0);
    }
    if (s.upper_bounds != bounds) return;  // same family, same bounds: never happens
    uint64_t below = 0;
    for (size_t i = 0; i < s.cumulative_counts.size(); ++i) {
      counts[i] += s.cumulative_counts[i] - below;
      below = s.cumulative_counts[i];
    }
    count += s.count;
    sum += s.sum;
  }

  // This minus an earlier reading of the same histogram.
  Buckets since(const Buckets& before) const {
    Buckets d = *this;
    if (before.counts.size() != counts.size()) return d;
    for (size_t i = 0; i < counts.size(); ++i) {
      d.counts[i] = counts[i] >= before.counts[i] ? counts[i] - before.counts[i] : 0;
    }
    d.count = count >= before.count ? count - before.count : 0;
    d.sum = sum - before.sum;
    return d;
  }

  // The q-quantile, interpolated linearly within its bucket (as Prometheus'
  // histogram_quantile does); NaN without observations.
  double quantile(double q) const {
    if (count == 0 || bounds.empty()) return std::nan("");
    const double rank = q * static_cast<double>(count);
    uint64_t below = 0;
    for (size_t i = 0; i < counts.size(); ++i) {
      if (static_cast<double>(below + counts[i]) >= rank && counts[i] > 0) {
        if (i == bounds.size()) return bounds.back();  // +Inf bucket: its lower bound
        const double lo = i == 0 ? 0.0 : bounds[i - 1];
        const double within = (rank - static_cast<double>(below)) / static_cast<double>(counts[i]);
        return lo + (bounds[i] - lo) * std::clamp(within, 0.0, 1.0);
      }
      below += counts[i];
    }
    return bounds.back();
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Subscriber

bool LiveEvents::Subscriber::take(std::string& out) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (dropped_ > 0) {
    out = frame("dropped", R"({"dropped":)" + std::to_string(dropped_) +
                               R"(,"why":"this stream reads slower than updates come; the )"
                               R"(oldest were dropped"})");
    dropped_ = 0;
    return true;
  }
  if (!frames_.empty()) {
    out = *frames_.front();
    frames_.pop_front();
    return true;
  }
  if (!last_frame_.empty()) {
    out = std::move(last_frame_);
    last_frame_.clear();
    return true;
  }
  waiting_ = true;
  return false;
}

bool LiveEvents::Subscriber::finished() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return ended_ && frames_.empty() && last_frame_.empty() && dropped_ == 0;
}

void LiveEvents::Subscriber::end(const std::string& why) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (ended_) return;
    ended_ = true;
    std::string data = R"({"why":)";
    append_json_string(data, why);
    data += '}';
    last_frame_ = frame("end", data);
    wake = std::exchange(waiting_, false);
  }
  if (wake) wake_();
}

void LiveEvents::Subscriber::post(std::shared_ptr<const std::string> f,
                                  metrics::Counter& dropped_total) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (ended_) return;
    if (frames_.size() >= kMailboxMessages) {
      frames_.pop_front();
      ++dropped_;
      dropped_total.inc();
    }
    frames_.push_back(std::move(f));
    wake = std::exchange(waiting_, false);
  }
  if (wake) wake_();
}

// ---------------------------------------------------------------------------------------------
// LiveEvents

// The inputs' totals at one update, for the next one's rates and intervals.
struct LiveEvents::Previous {
  steady::time_point at;
  uint64_t consumed = 0;
  uint64_t scored_kafka = 0;
  uint64_t scored_http = 0;
  uint64_t http_requests = 0;
  std::map<std::string, uint64_t> dead_letters;  // by reason
  Buckets end_to_end;
  Buckets http_duration;
  Buckets batch_size;
};

LiveEvents::LiveEvents(const http::HttpConfig& config, Inputs inputs, metrics::Registry& registry)
    : config_(config),
      inputs_(std::move(inputs)),
      subscriber_gauge_(
          registry.gauge("vigil_http_event_subscribers", "Open /v1/events streams (live view)")),
      updates_dropped_(registry.counter(
          "vigil_http_event_updates_dropped_total",
          "Live-view updates a slow /v1/events subscriber lost (it is told how many)")),
      high_scores_dropped_(
          registry.counter("vigil_live_high_scores_dropped_total",
                           "High scores left out of the live view's feed (a worker found "
                           "the feed busy and did not wait)")) {}

LiveEvents::~LiveEvents() {
  stop();
}

void LiveEvents::start() {
  std::lock_guard<std::mutex> lock(run_mutex_);
  if (running_ || thread_.joinable()) return;
  running_ = true;
  thread_ = std::thread([this] { run(); });
}

void LiveEvents::stop() {
  {
    std::lock_guard<std::mutex> lock(run_mutex_);
    running_ = false;
  }
  run_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::vector<std::shared_ptr<Subscriber>> ending;
  {
    std::lock_guard<std::mutex> lock(subscribers_mutex_);
    stopped_ = true;
    ending.swap(subscribers_);
    subscriber_gauge_.set(0);
  }
  for (auto& s : ending) s->end("vigil is shutting down");
}

void LiveEvents::run() {
  name_this_thread("vigil-live");
  std::unique_lock<std::mutex> lock(run_mutex_);
  while (running_) {
    lock.unlock();
    publish_update();
    lock.lock();
    run_cv_.wait_for(lock, config_.events_interval, [this] { return !running_; });
  }
}

std::shared_ptr<http::EventFeed> LiveEvents::subscribe(std::function<void()> wake) {
  auto s = std::make_shared<Subscriber>(std::move(wake));
  std::lock_guard<std::mutex> lock(subscribers_mutex_);
  if (stopped_ || subscribers_.size() >= config_.max_event_subscribers) return nullptr;
  {
    std::lock_guard<std::mutex> slock(s->mutex_);
    // EventSource reconnects after `retry` ms; then the latest update, so the page is never
    // blank for a whole interval.
    auto hello = std::make_shared<std::string>("retry: 2000\n\n");
    s->frames_.push_back(std::move(hello));
    if (latest_) s->frames_.push_back(latest_);
  }
  subscribers_.push_back(s);
  subscriber_gauge_.set(static_cast<double>(subscribers_.size()));
  return s;
}

void LiveEvents::unsubscribe(const std::shared_ptr<http::EventFeed>& subscriber) {
  std::lock_guard<std::mutex> lock(subscribers_mutex_);
  subscribers_.erase(std::remove_if(subscribers_.begin(), subscribers_.end(),
                                    [&](const auto& s) { return s.get() == subscriber.get(); }),
                     subscribers_.end());
  subscriber_gauge_.set(static_cast<double>(subscribers_.size()));
}

std::string_view LiveEvents::page() const {
  return live_page_html();
}

size_t LiveEvents::subscribers() const {
  std::lock_guard<std::mutex> lock(subscribers_mutex_);
  return subscribers_.size();
}

void LiveEvents::flagged(const scoring::ScoreRequest& request, const scoring::ScoreOutcome& outcome,
                         const scoring::ModelInfo& model) {
  high_scores_total_.fetch_add(1, std::memory_order_relaxed);
  std::unique_lock<std::mutex> lock(high_mutex_, std::try_to_lock);
  if (!lock.owns_lock()) {
    high_scores_dropped_.inc();
    return;
  }
  if (high_scores_.size() >= kHighScoresShown) high_scores_.pop_back();
  HighScore h;
  h.transaction_id.assign(request.id.view());
  h.score = outcome.score;
  h.model_version = model.version;
  h.http = request.origin == scoring::Origin::kHttp;
  h.scored_at_ms = wall_clock_ms();
  high_scores_.push_front(std::move(h));
}

std::string LiveEvents::publish_update() {
  std::string update = build_update();
  auto f = std::make_shared<const std::string>(frame("stats", update));
  std::vector<std::shared_ptr<Subscriber>> to;
  {
    std::lock_guard<std::mutex> lock(subscribers_mutex_);
    latest_ = f;
    to = subscribers_;
  }
  for (auto& s : to) s->post(f, updates_dropped_);
  return update;
}

void LiveEvents::append_high_scores(std::string& out) {
  std::deque<HighScore> shown;
  uint64_t total = 0;
  {
    std::lock_guard<std::mutex> lock(high_mutex_);
    shown = high_scores_;
  }
  total = high_scores_total_.load(std::memory_order_relaxed);
  out += R"(,"high_scores_total":)";
  append_number(out, total);
  out += R"(,"high_scores":[)";
  for (size_t i = 0; i < shown.size(); ++i) {
    const HighScore& h = shown[i];
    if (i > 0) out += ',';
    out += R"({"transaction_id":)";
    append_json_string(out, h.transaction_id);
    out += R"(,"score":)";
    append_number(out, h.score);
    out += R"(,"model_version":)";
    append_json_string(out, h.model_version);
    out += R"(,"origin":)";
    out += h.http ? R"("http")" : R"("kafka")";
    out += R"(,"scored_at_ms":)";
    append_number(out, h.scored_at_ms);
    out += '}';
  }
  out += ']';
}

// One update from the inputs and the previous update's totals.
std::string LiveEvents::build_update() {
  std::lock_guard<std::mutex> build_lock(build_mutex_);
  const steady::time_point now = steady::now();
  auto current = std::make_unique<Previous>();
  current->at = now;
  consumers::KafkaSourceStats::Figures consumer;
  if (inputs_.consumer) consumer = inputs_.consumer();
  current->consumed = consumer.consumed;
  if (inputs_.scoring) {
    const scoring::ScoringStats::Figures scoring = inputs_.scoring();
    current->scored_kafka = scoring.scored_kafka;
    current->scored_http = scoring.scored_http;
    current->batch_size = Buckets(scoring.batch_size);
  }
  if (inputs_.delivery) {
    delivery::DeliveryStats::Figures delivery = inputs_.delivery();
    current->end_to_end = Buckets(delivery.end_to_end);
    current->dead_letters = std::move(delivery.dead_letters);
  }
  if (inputs_.http) {
    const http::HttpStats::Figures http = inputs_.http();
    current->http_requests = http.requests;
    current->http_duration = Buckets(http.duration);
  }

  const Previous* before = previous_.get();
  const double seconds = before ? std::chrono::duration<double>(now - before->at).count() : 0.0;
  auto rate = [&](uint64_t Previous::*total) {
    if (before == nullptr || seconds <= 0.0) return 0.0;
    const uint64_t is = (*current).*total;
    const uint64_t was = (*before).*total;
    return is > was ? static_cast<double>(is - was) / seconds : 0.0;
  };
  auto interval = [&](Buckets Previous::*histogram) {
    const Buckets& is = (*current).*histogram;
    return before == nullptr ? is : is.since((*before).*histogram);
  };
  auto latency = [&](std::string& out, const char* name, const Buckets& b) {
    out += '"';
    out += name;
    out += R"(":{"p50":)";
    append_fixed(out, b.quantile(0.5) * 1000.0, 3);
    out += R"(,"p99":)";
    append_fixed(out, b.quantile(0.99) * 1000.0, 3);
    out += R"(,"count":)";
    append_number(out, b.count);
    out += '}';
  };

  std::string out;
  out.reserve(2048);
  out += R"({"at_ms":)";
  append_number(out, wall_clock_ms());
  const double scored_kafka = rate(&Previous::scored_kafka);
  const double scored_http = rate(&Previous::scored_http);
  append_figures(out, {{"interval_s", seconds, 3},
                       {"events_in_per_s", rate(&Previous::consumed), 1},
                       {"scored_per_s", scored_kafka + scored_http, 1},
                       {"scored_kafka_per_s", scored_kafka, 1},
                       {"scored_http_per_s", scored_http, 1},
                       {"http_requests_per_s", rate(&Previous::http_requests), 1},
                       {"scored_total",
                        static_cast<double>(current->scored_kafka + current->scored_http), 0}});
  out += ',';
  latency(out, "end_to_end_ms", interval(&Previous::end_to_end));
  out += ',';
  latency(out, "http_ms", interval(&Previous::http_duration));
  const Buckets batches = interval(&Previous::batch_size);
  const double mean_batch = batches.count ? batches.sum / static_cast<double>(batches.count) : 0.0;
  append_object(
      out, "batch_size",
      {{"mean", mean_batch, 1}, {"p99", batches.count ? batches.quantile(0.99) : 0.0, 0}});
  const scoring::ScoringQueue* queue = inputs_.queue;
  append_object(out, "queue",
                {{"depth", queue ? static_cast<double>(queue->depth()) : 0.0, 0},
                 {"capacity", queue ? static_cast<double>(queue->capacity()) : 0.0, 0}});
  append_object(out, "partitions",
                {{"assigned", consumer.assigned_partitions, 0},
                 {"paused", consumer.paused_partitions, 0},
                 {"held", consumer.held_partitions, 0}});
  append_figures(out, {{"consumer_lag", static_cast<double>(consumer.lag), 0}});
  out += R"(,"dead_letters_per_s":{)";
  uint64_t dead_letters_total = 0;
  bool first = true;
  for (const auto& [reason, total] : current->dead_letters) {
    dead_letters_total += total;
    if (!first) out += ',';
    first = false;
    append_json_string(out, reason);
    out += ':';
    double per_s = 0.0;
    if (before != nullptr && seconds > 0.0) {
      const auto was = before->dead_letters.find(reason);
      const uint64_t from = was == before->dead_letters.end() ? 0 : was->second;
      per_s = total > from ? static_cast<double>(total - from) / seconds : 0.0;
    }
    append_fixed(out, per_s, 1);
  }
  out += R"(},"dead_letters_total":)";
  append_number(out, dead_letters_total);
  out += R"(,"model":)";
  if (auto info = inputs_.model ? inputs_.model() : nullptr) {
    out += R"({"name":)";
    append_json_string(out, info->name);
    out += R"(,"version":)";
    append_json_string(out, info->version);
    out += R"(,"device":)";
    append_json_string(out, info->device);
    out += R"(,"threshold":)";
    append_number(out, info->threshold);
    out += '}';
  } else {
    out += "null";
  }
  out += R"(,"subscribers":)";
  append_number(out, subscribers());
  append_high_scores(out);
  out += '}';
  previous_ = std::move(current);
  return out;
}

}  // namespace vigil::live

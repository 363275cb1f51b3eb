// LiveEvents: what the live view (GET /, GET /v1/events) shows, as server-sent events. The
// HTTP edge serves it through http::EventStreams and never reads what it says.
//
//   Inputs ──read once per http.events_interval_ms──► one "stats" update (JSON):
//     rates over the interval (events in, scored, HTTP requests, dead letters by reason),
//     latency percentiles of the interval (end to end, HTTP), batch size, queue depth,
//     partitions (assigned, paused, held), consumer lag, the model served, and the latest
//     high scores. The inputs are the components' own typed figures (KafkaSourceStats,
//     ScoringStats, ScoringQueue, DeliveryStats, HttpStats), never metric names.
//   scoring workers ──flagged(row)──► a ring of the latest rows scored at or above the
//     threshold (try_lock: a worker never waits; a row that finds the lock taken is left out
//     of the shown list, never out of scoring nor out of high_scores_total, an atomic count)
//   each update ──► every subscriber's mailbox (bounded: a subscriber that reads slower than
//     updates come loses the oldest, and its next message says how many it lost)
//
// Subscribers are the server's /v1/events connections, at most http.max_event_subscribers.
// A subscriber is woken through its callback when its mailbox gets a message after it found
// it empty; the callback must not block (the server posts to the connection's strand).
//
// Threads: start() launches the update thread, stop() ends every subscription (each gets an
// "end" message) and joins it. Everything else is thread-safe.
//
// Metrics: vigil_http_event_subscribers, vigil_http_event_updates_dropped_total (updates a
// slow subscriber lost), vigil_live_high_scores_dropped_total (flagged rows the feed skipped).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "consumers/kafka_source.h"
#include "delivery/delivery_stage.h"
#include "http/event_streams.h"
#include "http/http_config.h"
#include "http/http_stats.h"
#include "scoring/batcher.h"
#include "scoring/model.h"
#include "scoring/request.h"
#include "scoring/scoring_queue.h"

namespace vigil::live {

// What an update reads, each from the component that owns it. Any may be left empty (that
// component is off: no Kafka, no side-port); its figures are then 0 or left out. Called on the
// update thread.
struct Inputs {
  std::function<consumers::KafkaSourceStats::Figures()> consumer;
  std::function<scoring::ScoringStats::Figures()> scoring;
  const scoring::ScoringQueue* queue = nullptr;
  std::function<delivery::DeliveryStats::Figures()> delivery;
  std::function<http::HttpStats::Figures()> http;
  std::function<std::shared_ptr<const scoring::ModelInfo>()> model;  // null: none loaded
};

class LiveEvents final : public http::EventStreams, public scoring::FlaggedObserver {
 public:
  static constexpr size_t kMailboxMessages = 8;  // per subscriber, then the oldest is dropped
  static constexpr size_t kHighScoresShown = 20;

  // One /v1/events stream. Its messages are complete SSE frames ("event: ...\ndata: ...\n\n").
  class Subscriber final : public http::EventFeed {
   public:
    explicit Subscriber(std::function<void()> wake) : wake_(std::move(wake)) {}
    // Moves the next frame into `out`; false when there is none (the next post wakes the
    // subscriber). When updates were dropped, a "dropped" frame saying how many comes first.
    bool take(std::string& out) override;
    // True once the stream is over (stop(), or end()) and its last frame was taken.
    bool finished() const override;
    // Ends this stream with a last "end" frame (never dropped) saying why.
    void end(const std::string& why) override;

   private:
    friend class LiveEvents;
    void post(std::shared_ptr<const std::string> frame, metrics::Counter& dropped_total);

    const std::function<void()> wake_;
    mutable std::mutex mutex_;
    std::deque<std::shared_ptr<const std::string>> frames_;
    std::string last_frame_;  // the "end" frame, taken after the others
    uint64_t dropped_ = 0;
    bool waiting_ = true;  // found the mailbox empty: the next post wakes it
    bool ended_ = false;
  };

  // `registry` takes the live view's own metrics (subscribers, drops); it is not read.
  LiveEvents(const http::HttpConfig& config, Inputs inputs, metrics::Registry& registry);
  ~LiveEvents() override;  // stop()
  LiveEvents(const LiveEvents&) = delete;
  LiveEvents& operator=(const LiveEvents&) = delete;

  void start();
  // Ends every subscription and joins the update thread. Idempotent.
  void stop();

  // A new stream, which gets the latest update at once; null when http.max_event_subscribers
  // are open already (or the live view is off, or stopped).
  std::shared_ptr<http::EventFeed> subscribe(std::function<void()> wake) override;
  void unsubscribe(const std::shared_ptr<http::EventFeed>& subscriber) override;
  size_t subscribers() const;
  // The page (live_page.cpp).
  std::string_view page() const override;

  // scoring::FlaggedObserver (scoring workers).
  void flagged(const scoring::ScoreRequest& request, const scoring::ScoreOutcome& outcome,
               const scoring::ModelInfo& model) override;

  // Builds and sends one update now (the update thread calls it every interval; tests call it
  // directly). Returns the update's JSON.
  std::string publish_update();

 private:
  struct HighScore {
    std::string transaction_id;
    float score = 0.0f;
    std::string model_version;
    bool http = false;
    int64_t scored_at_ms = 0;
  };
  struct Previous;  // the counters and histograms of the last update, for rates and deltas

  void run();
  std::string build_update();
  void append_high_scores(std::string& out);

  const http::HttpConfig config_;
  const Inputs inputs_;
  metrics::Gauge& subscriber_gauge_;
  metrics::Counter& updates_dropped_;
  metrics::Counter& high_scores_dropped_;

  mutable std::mutex subscribers_mutex_;
  std::vector<std::shared_ptr<Subscriber>> subscribers_;
  std::shared_ptr<const std::string> latest_;  // the last update frame, for new subscribers
  bool stopped_ = false;

  std::mutex high_mutex_;  // try_lock only, on the workers
  std::deque<HighScore> high_scores_;
  // Every flagged row, counted even when the list above was busy and skipped it: the total
  // stays exact while the shown list is best-effort.
  std::atomic<uint64_t> high_scores_total_{0};

  std::mutex build_mutex_;  // one update at a time
  std::unique_ptr<Previous> previous_;

  std::mutex run_mutex_;
  std::condition_variable run_cv_;
  bool running_ = false;
  std::thread thread_;
};

}  // namespace vigil::live

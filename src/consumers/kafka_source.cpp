#include "consumers/kafka_source.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <thread>

#include "common/clock.h"
#include "common/log.h"
#include "common/rate_limit.h"
#include "common/thread_name.h"

namespace vigil::consumers {

namespace {

constexpr int kBatchSize = 500;
constexpr int kPollTimeoutMs = 100;
// The poll's wait while records are staged (waiting for room in the scoring queue).
constexpr int kStagedPollTimeoutMs = 1;
// How long a revoke waits for records of the revoked partitions to be delivered before
// committing what it has (the rest is re-consumed by the next owner: at-least-once).
constexpr std::chrono::milliseconds kRevokeDrainBound{5000};

// How often the lag gauges are refreshed (also while partitions are paused).
constexpr std::chrono::milliseconds kLagInterval{1000};
// A synchronous commit (revoke, stop) is tried this many times, this far apart.
constexpr int kSyncCommitAttempts = 3;
constexpr std::chrono::milliseconds kSyncCommitRetryDelay{200};
// stop_intake() waits at most this long for the consumer thread to take note.
constexpr std::chrono::milliseconds kIntakeStopBound{2000};

// A broker round trip for a paused partition's high watermark is bounded by this.
constexpr int kWatermarkQueryTimeoutMs = 200;
// Reading a newly assigned partition's committed offset and log start or end (inside the
// rebalance callback) is bounded by this.
constexpr int kAssignLookupTimeoutMs = 10000;

// The record's Kafka timestamp, INT64_MIN when it has none.
int64_t record_time_ms(const rd_kafka_message_t* m) {
  rd_kafka_timestamp_type_t type;
  const int64_t ts = rd_kafka_message_timestamp(m, &type);
  return ts >= 0 ? ts : INT64_MIN;
}

RateLimitedLog& consumer_error_log() {
  static RateLimitedLog log{"kafka", std::chrono::milliseconds(5000)};
  return log;
}

RateLimitedLog& commit_log() {
  static RateLimitedLog log{"kafka", std::chrono::milliseconds(5000)};
  return log;
}

RateLimitedLog& untracked_log() {
  static RateLimitedLog log{"kafka", std::chrono::milliseconds(5000)};
  return log;
}

metrics::Labels with(metrics::Labels labels, const std::string& name, const std::string& value) {
  labels.emplace_back(name, value);
  return labels;
}

}  // namespace

KafkaSourceStats::KafkaSourceStats(metrics::Registry& r, metrics::Labels l)
    : registry(r),
      labels(std::move(l)),
      consumed_(
          r.counter("vigil_kafka_consumed_total", "Records consumed from the input topic", labels)),
      pauses_(r.counter("vigil_kafka_pauses_total",
                        "Times the consumer paused its partitions (queue above high watermark)",
                        labels)),
      prefetch_wakes_(r.counter("vigil_kafka_prefetch_wakes_total",
                                "Times the consumer woke librdkafka's fetchers once its prefetch "
                                "queue, having come near its bound, had drained to half",
                                labels)),
      commits_(r.counter("vigil_kafka_commits_total", "Offset commits issued", labels)),
      commit_failures_(
          r.counter("vigil_kafka_commit_failures_total", "Offset commits that failed", labels)),
      rebalances_(r.counter("vigil_kafka_rebalances_total", "Rebalance events handled", labels)),
      paused_partitions_(
          r.gauge("vigil_kafka_paused_partitions", "Partitions currently paused", labels)),
      assigned_partitions_(r.gauge("vigil_kafka_assigned_partitions",
                                   "Partitions currently assigned to this instance", labels)),
      held_partitions_(r.gauge("vigil_kafka_held_partitions",
                               "Partitions paused on a record without an outcome (its "
                               "dead-letter write failed)",
                               labels)),
      offset_regressions_(r.counter("vigil_kafka_offset_regressions_total",
                                    "Times a partition was consumed from below its last tracked "
                                    "offset (an offset reset moved the position back) and "
                                    "tracked again from there",
                                    labels)),
      assignments_lost_(r.counter("vigil_kafka_assignments_lost_total",
                                  "Times this member lost its partitions without a clean revoke "
                                  "(session timed out, or evicted for not polling)",
                                  labels)),
      untracked_(r.counter("vigil_kafka_untracked_total",
                           "Records returned after their partition was revoked, left to the "
                           "partition's new owner",
                           labels)) {
  for (auto e : {codec::DecodeError::kMalformedJson, codec::DecodeError::kTooLarge,
                 codec::DecodeError::kBadTransactionId, codec::DecodeError::kMissingFeature,
                 codec::DecodeError::kUnknownFeature, codec::DecodeError::kDuplicateFeature,
                 codec::DecodeError::kWrongType, codec::DecodeError::kNonFinite,
                 codec::DecodeError::kWrongCount, codec::DecodeError::kMissingField,
                 codec::DecodeError::kOutOfRange}) {
    rejected_[e] = &r.counter("vigil_kafka_rejected_total",
                              "Records that could not be decoded, by reason (each goes to the "
                              "dead-letter topic)",
                              with(labels, "reason", codec::to_string(e)));
  }
}

void KafkaSourceStats::rejected(codec::DecodeError reason) {
  rejected_.at(reason)->inc();
}

void KafkaSourceStats::lost(const char* reason, uint64_t n) {
  // Rare (a corrupt batch and the like): the family is looked up each time.
  registry
      .counter("vigil_kafka_records_lost_total",
               "Records never scored because the client could not read them, by reason: "
               "offset_out_of_range (removed by retention before they were read; counted from "
               "the offset reset), or the error of a record returned at a known offset (a "
               "corrupt batch, ...; dead-lettered without its value)",
               with(labels, "reason", reason))
      .inc(n);
}

void KafkaSourceStats::lag(PartitionId p, int64_t records) {
  auto it = lag_.find(p);
  if (it == lag_.end()) {
    it = lag_.emplace(p, std::make_unique<std::atomic<int64_t>>(0)).first;
    const std::atomic<int64_t>* value = it->second.get();
    registry.gauge_callback("vigil_kafka_consumer_lag",
                            "Records in the partition without a final outcome yet",
                            with(labels, "partition", std::to_string(p)), value,
                            [value] { return static_cast<double>(value->load()); });
  }
  lag_total_.fetch_add(records - it->second->exchange(records), std::memory_order_relaxed);
}

void KafkaSourceStats::lag_removed(PartitionId p) {
  auto it = lag_.find(p);
  if (it == lag_.end()) return;
  registry.remove_callbacks(it->second.get());
  lag_total_.fetch_sub(it->second->load(), std::memory_order_relaxed);
  lag_.erase(it);
}

KafkaSourceStats::Figures KafkaSourceStats::figures() const {
  Figures f;
  f.consumed = consumed_.value();
  f.assigned_partitions = assigned_partitions_.value();
  f.paused_partitions = paused_partitions_.value();
  f.held_partitions = held_partitions_.value();
  f.lag = lag_total_.load(std::memory_order_relaxed);
  return f;
}

std::optional<OffsetReset> parse_offset_reset(std::string_view line) {
  const auto number_after = [&](std::string_view key, size_t from, size_t& end) -> int64_t {
    const size_t at = line.find(key, from);
    if (at == std::string_view::npos) return -1;
    size_t i = at + key.size();
    int64_t v = 0;
    bool any = false;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9') {
      v = v * 10 + (line[i++] - '0');
      any = true;
    }
    end = i;
    return any ? v : -1;
  };
  const size_t marker = line.find("]: offset reset (at offset ");
  if (marker == std::string_view::npos) return std::nullopt;
  OffsetReset r;
  const size_t open = line.rfind('[', marker);
  if (open == std::string_view::npos) return std::nullopt;
  size_t end = 0;
  r.partition = static_cast<int32_t>(number_after("[", open, end));
  r.from = number_after("(at offset ", marker, end);
  const size_t to = line.find(") to ", end);
  if (r.from < 0 || to == std::string_view::npos) return std::nullopt;
  const size_t colon = line.find(": ", to);
  const std::string_view target =
      line.substr(to, colon == std::string_view::npos ? std::string_view::npos : colon - to);
  const size_t last = target.rfind("offset ");
  if (last == std::string_view::npos) return std::nullopt;
  r.to = number_after("offset ", to + last, end);
  if (r.to < 0 || r.partition < 0) return std::nullopt;
  if (colon != std::string_view::npos) r.why = std::string(line.substr(colon + 2));
  return r;
}

void KafkaSource::log_cb(const rd_kafka_t* rk, int level, const char* facility, const char* line) {
  const spdlog::level::level_enum lvl = level <= 3   ? spdlog::level::err
                                        : level == 4 ? spdlog::level::warn
                                        : level <= 6 ? spdlog::level::info
                                                     : spdlog::level::debug;
  logger("rdkafka")->log(lvl, "{}: {}", facility, line);
  auto* self = static_cast<KafkaSource*>(rd_kafka_opaque(rk));
  if (self == nullptr || std::strcmp(facility, "OFFSET") != 0) return;
  const std::optional<OffsetReset> reset = parse_offset_reset(line);
  if (!reset || reset->to <= reset->from) return;
  const int64_t n = reset->to - reset->from;
  self->stats_.lost("offset_out_of_range", static_cast<uint64_t>(n));
  logger("kafka")->error(
      "partition {}: offsets {}..{} ({} records) were never read: removed before this consumer "
      "got to them ({}); counted in vigil_kafka_records_lost_total",
      reset->partition, reset->from, reset->to - 1, n, reset->why);
}

Result<std::unique_ptr<KafkaSource>> KafkaSource::create(
    const kafka::KafkaConfig& config, const std::string& bootstrap, scoring::ScoringQueue& queue,
    const codec::FeatureSchema& schema, OffsetTracker& tracker,
    delivery::DeadLetterSink& dead_letters, metrics::Registry& registry, SourceRoute route) {
  using R = Result<std::unique_ptr<KafkaSource>>;
  std::vector<std::pair<std::string, std::string>> props = {
      {"bootstrap.servers", bootstrap},
      {"group.id", config.group_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"partition.assignment.strategy", "range"},
      {"enable.partition.eof", "false"},
      // A real broker answers a fetch as soon as data arrives; the mock cluster holds an
      // empty fetch for the whole wait even when data arrives meanwhile, so on the embedded
      // cluster the wait is added to the latency of the next record.
      {"fetch.wait.max.ms", config.is_embedded() ? "1" : "100"},
      {"socket.nagle.disable", "true"},  // fetch and commit requests are latency-bound
      {"log_level", "4"},
  };
  for (const auto& kv : config.consumer) props.push_back(kv);
  auto conf = kafka::make_conf(props);
  if (!conf) return R::Error(conf.error());
  auto conf_number = [&](const char* name, double fallback) {
    char value[64];
    size_t size = sizeof value;
    if (rd_kafka_conf_get(conf->get(), name, value, &size) != RD_KAFKA_CONF_OK) return fallback;
    return std::atof(value);
  };
  const double prefetch_records = conf_number("queued.min.messages", 100000);
  const double prefetch_bytes = conf_number("queued.max.messages.kbytes", 65536) * 1024;
  rd_kafka_conf_set_rebalance_cb(conf->get(), &KafkaSource::rebalance_cb);
  rd_kafka_conf_set_log_cb(conf->get(), &KafkaSource::log_cb);
  std::unique_ptr<KafkaSource> src(
      new KafkaSource(config, queue, schema, tracker, dead_letters, registry, std::move(route)));
  rd_kafka_conf_set_opaque(conf->get(), src.get());  // rebalance_cb finds the source by it
  auto rk = kafka::make_client(RD_KAFKA_CONSUMER, std::move(conf.value()));
  if (!rk) return R::Error(rk.error());
  src->rk_ = std::move(rk.value());
  src->prefetch_max_records_ = static_cast<size_t>(prefetch_records);
  src->prefetch_max_bytes_ = prefetch_bytes;
  rd_kafka_poll_set_consumer(src->rk_.get());
  src->queue_handle_ = rd_kafka_queue_get_consumer(src->rk_.get());
  return R(std::move(src));
}

KafkaSource::KafkaSource(const kafka::KafkaConfig& config, scoring::ScoringQueue& queue,
                         const codec::FeatureSchema& schema, OffsetTracker& tracker,
                         delivery::DeadLetterSink& dead_letters, metrics::Registry& registry,
                         SourceRoute route)
    : config_(config),
      route_(std::move(route)),
      queue_(queue),
      decoder_(schema, config.max_event_bytes),
      tracker_(tracker),
      dead_letters_(dead_letters),
      stats_(registry, route_.labels) {}

KafkaSource::~KafkaSource() {
  if (rk_) stop();
  if (queue_handle_) rd_kafka_queue_destroy(queue_handle_);
  rk_.reset();  // before the members its callbacks (log_cb) use are destroyed
}

std::vector<std::string> KafkaSource::readiness_failures() const {
  std::vector<std::string> f;
  // With kafka.routes each reason names its topic. A route other than kafka.input_topic's
  // without partitions is not a reason: with more replicas than that topic has partitions,
  // the others would never be ready (nor take HTTP traffic).
  const std::string who = route_.labels.empty() ? "kafka" : "kafka " + config_.input_topic;
  if (!has_assignment() && route_.index == 0) f.push_back(who + ": no partitions assigned");
  for (const auto& h : tracker_.held()) {
    f.push_back(who + ": partition " + std::to_string(h.partition) + " held at offset " +
                std::to_string(h.offset) + ": " + h.why);
  }
  if (features_) {
    for (auto& note : features_->readiness_notes()) f.push_back(std::move(note));
  }
  return f;
}

void KafkaSource::rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t* partitions, void*) {
  auto* self = static_cast<KafkaSource*>(rd_kafka_opaque(rk));
  if (self) {
    self->on_rebalance(err, partitions);
  } else {
    rd_kafka_assign(rk, nullptr);
  }
}

void KafkaSource::commit_result_cb(rd_kafka_t*, rd_kafka_resp_err_t err,
                                   rd_kafka_topic_partition_list_t* offsets, void* opaque) {
  auto* self = static_cast<KafkaSource*>(opaque);
  rd_kafka_resp_err_t first = err;
  if (first == RD_KAFKA_RESP_ERR_NO_ERROR && offsets != nullptr) {
    for (int i = 0; i < offsets->cnt; ++i) {
      if (offsets->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        first = offsets->elems[i].err;
        break;
      }
    }
  }
  if (first == RD_KAFKA_RESP_ERR_NO_ERROR || first == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
  self->stats_.commit_failures_.inc();
  // The next periodic commit carries the same offsets again (or later ones).
  if (offsets != nullptr) {
    for (int i = 0; i < offsets->cnt; ++i) self->last_committed_.erase(offsets->elems[i].partition);
  }
  commit_log().warn("asynchronous offset commit failed: {}", rd_kafka_err2str(first));
}

void KafkaSource::start() {
  if (running_.exchange(true)) return;
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, config_.input_topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_.get(), topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    logger("kafka")->error("cannot subscribe to '{}': {}", config_.input_topic,
                           rd_kafka_err2str(err));
  }
  last_commit_ = std::chrono::steady_clock::now();
  thread_ = std::thread([this] {
    name_this_thread("vigil-consumer");
    run();
  });
}

void KafkaSource::on_rebalance(rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t* partitions) {
  stats_.rebalances_.inc();
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (int i = 0; i < partitions->cnt; ++i) tracker_.assign(partitions->elems[i].partition);
    const kafka::PartitionList committed = resolve_start_offsets(partitions);
    if (features_) plan_feature_replay(partitions, committed.get());
    rd_kafka_assign(rk_.get(), partitions);
    assigned_ = partitions->cnt;
    stats_.assigned_partitions_.set(partitions->cnt);
    // Partitions come unpaused: the revoke below resumed what this member had paused.
    if (paused_ || !intake_) {
      std::vector<PartitionId> all;
      for (int i = 0; i < partitions->cnt; ++i) all.push_back(partitions->elems[i].partition);
      pause_partitions(all);
    }
    logger("kafka")->info("assigned {} partition(s) of '{}'", partitions->cnt, config_.input_topic);
    return;
  }
  assigned_ = 0;  // readiness reflects the loss at once, not after the drain below
  std::vector<PartitionId> revoked;
  for (int i = 0; i < partitions->cnt; ++i) revoked.push_back(partitions->elems[i].partition);
  // A lost assignment (session timed out, e.g. brokers unreachable) is no longer ours: its
  // offsets cannot be committed, so neither drain nor commit.
  const bool lost = rd_kafka_assignment_lost(rk_.get());
  if (lost) {
    stats_.assignments_lost_.inc();
    logger("kafka")->warn(
        "assignment lost (session timeout or max.poll.interval.ms exceeded); uncommitted records "
        "will be consumed again by the partitions' next owner");
  }
  // Records of these partitions still waiting for room in the scoring queue are not scored
  // here: left uncommitted, consumed again by the partitions' next owner.
  const std::map<PartitionId, size_t> dropped = drop_staged(revoked);
  if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && !lost) {
    // Let records of these partitions that are already being scored finish, so the next
    // owner does not score them again; bounded, then commit what was delivered.
    // When stop() leaves the group, the pipeline is already drained: nothing more will come.
    // Once intake stopped (shutting down) records without an outcome stay without one: no wait.
    const auto deadline =
        std::chrono::steady_clock::now() +
        (running_.load() && intake_.load() ? kRevokeDrainBound : std::chrono::milliseconds(0));
    auto busy = [&] {
      for (auto p : revoked) {
        auto it = dropped.find(p);
        if (tracker_.in_flight(p) > (it == dropped.end() ? 0 : it->second)) return true;
      }
      return false;
    };
    while (busy() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (busy() && running_.load())
      logger("kafka")->warn(
          "revoke: records still in flight after {} ms; they may be scored "
          "again by the next owner",
          kRevokeDrainBound.count());
    const rd_kafka_resp_err_t err = commit(/*sync=*/true, &revoked);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      logger("kafka")->info("revoke: committed partition@offset {}", describe_committable(revoked));
    } else if (err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
      logger("kafka")->error(
          "revoke: commit of {} failed: {}; those records will be consumed "
          "again by the next owner",
          describe_committable(revoked), rd_kafka_err2str(err));
    }
  } else {
    logger("kafka")->warn("rebalance error: {}", rd_kafka_err2str(err));
  }
  for (auto p : revoked) {
    tracker_.revoke(p);
    last_committed_.erase(p);
    stats_.lag_removed(p);
    if (features_) features_->revoke(p);
  }
  held_paused_.clear();
  stats_.held_partitions_.set(0);
  rd_kafka_assign(rk_.get(), nullptr);
  // librdkafka keeps a partition's pause across unassign and assign: resumed now (its fetcher
  // is stopped), a partition given back later starts unpaused, and is paused again only if
  // it must be (a held record of it was left uncommitted and is consumed again). Not while
  // the consumer closes: no partition comes back to this handle, and a resume (synchronous in
  // librdkafka, waiting without a bound for the partition's reply) once never returned there
  // (CI 14, TSan, kafka_source_test).
  if (running_.load()) {
    resume_partitions(revoked);
  } else {
    for (PartitionId p : revoked) paused_by_us_.erase(p);
    stats_.paused_partitions_.set(static_cast<double>(paused_by_us_.size()));
  }
  assigned_ = 0;
  stats_.assigned_partitions_.set(0);
  logger("kafka")->info("revoked {} partition(s)", revoked.size());
  // Records of the revoked partitions that the consume call serving this callback still
  // returns are dropped untracked (see handle()).
}

void KafkaSource::run() {
  rd_kafka_message_t* msgs[kBatchSize];
  staged_.reserve(kBatchSize);
  tokens_.reserve(kBatchSize);
  while (running_.load(std::memory_order_acquire)) {
    if (!intake_.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> lock(intake_mutex_);
      if (!intake_stopped_) {
        intake_stopped_ = true;
        intake_cv_.notify_all();
      }
    }
    // rd_kafka_consume_batch_queue waits for a full batch or the whole timeout, which would
    // add its timeout to every record's latency at low rates: block for the first record
    // only, then take whatever else has already arrived.
    // Records that did not fit in the queue last time go first; while some wait, the
    // partitions are paused and the poll below only serves the group (and returns soon).
    enqueue_staged();
    size_t n = 0;
    const int timeout_ms =
        staged_.empty() && !snapshot_due_ ? kPollTimeoutMs : kStagedPollTimeoutMs;
    if (rd_kafka_message_t* first = rd_kafka_consume_queue(queue_handle_, timeout_ms)) {
      msgs[0] = first;
      const ssize_t more = rd_kafka_consume_batch_queue(queue_handle_, 0, msgs + 1, kBatchSize - 1);
      n = 1 + static_cast<size_t>(std::max<ssize_t>(more, 0));
      watch_prefetch_gate(msgs, n);
    }
    if (n > 0) {
      if (intake_.load(std::memory_order_acquire)) {
        handle(msgs, n);
      } else {
        // After stop_intake, records are left untracked: not committed, consumed again later.
        for (size_t i = 0; i < n; ++i) rd_kafka_message_destroy(msgs[i]);
      }
    }
    update_backpressure();
    update_holds();
    const auto now = std::chrono::steady_clock::now();
    if (now - last_commit_ >= config_.commit_interval) commit(/*sync=*/false);
    if (now - last_lag_ >= kLagInterval) refresh_lag();
    if (features_) {
      snapshot_due_ = features_->snapshot_tick(now, [this](int32_t p) {
        auto it = last_committed_.find(p);
        return it == last_committed_.end() ? int64_t{-1} : it->second;
      });
    }
  }
}

void KafkaSource::hint_features(rd_kafka_message_t* const* msgs, size_t n, size_t i) {
  constexpr size_t kAhead = features::StreamFeatures::kPrefetchAhead;
  auto hint = [&](const rd_kafka_message_t* m) {
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->key != nullptr) {
      features_->prefetch(m->partition,
                          std::string_view(static_cast<const char*>(m->key), m->key_len));
    }
  };
  if (i == 0) {
    for (size_t j = 0; j < std::min(n, kAhead); ++j) hint(msgs[j]);
  }
  if (i + kAhead < n) hint(msgs[i + kAhead]);
}

void KafkaSource::handle(rd_kafka_message_t** msgs, size_t n) {
  // Track every record of the call under one lock, in order. Records replayed for velocity
  // features are applied here: their keys are hinted ahead (see StreamFeatures::prefetch).
  tokens_.clear();
  size_t kept = 0;
  const bool replay_hints = features_ && features_->replaying_any();
  for (size_t i = 0; i < n; ++i) {
    if (replay_hints) hint_features(msgs, n, i);
    rd_kafka_message_t* m = msgs[i];
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      rd_kafka_message_destroy(m);
      continue;
    }
    if (features_ && m->rkt != nullptr && m->offset >= 0 &&
        features_->replaying(m->partition, m->offset)) {
      // Below the committed offset: it rebuilds the history only (scored before). A record
      // that cannot be read was dead-lettered the first time: skipped, never tracked (the
      // committed offset must not move back to it).
      if (!m->err) {
        features_->replay(m->partition, m->offset,
                          std::string_view(static_cast<const char*>(m->payload), m->len),
                          record_time_ms(m));
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    if (m->err) {
      // A record the client could not read and skips (a corrupt message or batch) names its
      // offset: it is dead-lettered like an undecodable record, so the commit that passes it
      // leaves a trace. Any other error (a partition-level fetch error carries the next offset
      // to fetch, which is fetched again) only says so.
      if ((m->err == RD_KAFKA_RESP_ERR__BAD_MSG || m->err == RD_KAFKA_RESP_ERR__BAD_COMPRESSION) &&
          m->rkt != nullptr && m->partition >= 0 && m->offset >= 0) {
        stats_.lost(rd_kafka_err2name(m->err));
        consumer_error_log().warn("partition {} offset {}: consumer error: {}; dead-lettered",
                                  m->partition, m->offset, rd_kafka_message_errstr(m));
      } else {
        consumer_error_log().warn("consumer error: {}", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        continue;
      }
    }
    msgs[kept++] = m;
    AckToken t;
    t.partition = m->partition;
    t.offset = m->offset;
    t.route = route_.index;
    tokens_.push_back(t);
  }
  if (kept == 0) return;
  size_t regressions = 0;
  const size_t tracked = tracker_.track(tokens_.data(), kept, &regressions);
  if (regressions > 0) {
    stats_.offset_regressions_.inc(regressions);
    untracked_log().warn(
        "{} partition(s) consumed from below their last tracked offset (an "
        "offset reset moved the position back); tracked again from there",
        regressions);
  }
  if (tracked < kept) {
    // Records of a partition revoked while they were on their way (the rebalance was served
    // inside the consume call that returned them): not ours, not tracked; the partition's
    // new owner consumes them from the committed offset.
    size_t k = 0;
    for (size_t i = 0; i < kept; ++i) {
      if (tokens_[i].generation == 0) {
        untracked_log().warn(
            "partition {} offset {}: not tracked (partition not assigned now); "
            "left to its owner",
            tokens_[i].partition, tokens_[i].offset);
        stats_.untracked(1);
        rd_kafka_message_destroy(msgs[i]);
        continue;
      }
      msgs[k] = msgs[i];
      tokens_[k] = tokens_[i];
      ++k;
    }
    kept = k;
    if (kept == 0) return;
  }
  stats_.consumed(kept);

  // Decode each record straight into a request's storage, after any still waiting for room
  // in the queue; the request carries the record.
  const size_t base = staged_.size();
  staged_.resize(base + kept);
  size_t ready = base;
  for (size_t i = 0; i < kept; ++i) {
    if (features_) hint_features(msgs, kept, i);
    rd_kafka_message_t* m = msgs[i];
    scoring::ScoreRequest& req = staged_[ready];
    scoring::SourceRecord source(tokens_[i], scoring::RecordHandle(m, &rd_kafka_message_destroy));
    if (m->err) {
      const char* why = rd_kafka_message_errstr(m);
      dead_letters_.dead_letter(std::move(source), "consume_error", why);
      continue;
    }
    const std::string_view payload(static_cast<const char*>(m->payload), m->payload ? m->len : 0);
    codec::DecodeStatus st;
    if (m->payload == nullptr) {
      st = codec::DecodeStatus::Error(codec::DecodeError::kMalformedJson, "empty record");
    } else if (features_) {
      st = features_->compute(m->partition, m->offset, payload, record_time_ms(m), req.id,
                              req.features, req.event_time_ms, req.history_partial);
      req.features_computed = true;
    } else {
      st = decoder_.decode(payload, req.id, req.features, req.event_time_ms);
    }
    if (!st.ok()) {
      stats_.rejected(st.code);
      dead_letters_.dead_letter(std::move(source), codec::to_string(st.code),
                                std::move(st.message));
      continue;
    }
    req.origin = scoring::Origin::kKafka;
    req.model = route_.model;
    req.source = std::move(source);
    if (!req.event_time_ms) {
      if (const int64_t ts = record_time_ms(m); ts != INT64_MIN) req.event_time_ms = ts;
    }
    ++ready;
  }
  staged_.resize(ready);
  enqueue_staged();
}

void KafkaSource::enqueue_staged() {
  if (staged_.empty()) return;
  if (intake_.load() && running_.load()) {
    // The watermarks pause us well before the queue is full; reaching it means racing HTTP
    // traffic for the last slots. What does not fit stays staged, in order, and the thread
    // goes back to polling (partitions paused meanwhile, see update_backpressure): it never
    // blocks here, so rebalances and the group session are served while the queue is full.
    bool closed = false;
    const size_t done =
        queue_.try_push_bulk(staged_.data(), staged_.size(), scoring::Priority::kNormal, closed);
    staged_.erase(staged_.begin(), staged_.begin() + static_cast<std::ptrdiff_t>(done));
    if (!closed && intake_.load() && running_.load()) return;
  }
  // Shutting down: nothing more goes downstream; not acknowledged, consumed again later.
  staged_.clear();  // destroys their records
}

std::map<PartitionId, size_t> KafkaSource::drop_staged(const std::vector<PartitionId>& revoked) {
  std::map<PartitionId, size_t> dropped;
  size_t k = 0;
  for (size_t i = 0; i < staged_.size(); ++i) {
    scoring::ScoreRequest& r = staged_[i];
    if (std::find(revoked.begin(), revoked.end(), r.source.partition) != revoked.end()) {
      r.source.record.reset();
      ++dropped[r.source.partition];
      continue;
    }
    if (k != i) staged_[k] = std::move(r);
    ++k;
  }
  staged_.resize(k);
  return dropped;
}

void KafkaSource::update_backpressure() {
  // Records consumed and not yet delivered: the scoring queue, the workers and the producer
  // together. Bounding it keeps a slow or unreachable broker from filling the producer's
  // queue (where scoring workers would wait) or memory.
  // The producer's own count covers scores of partitions revoked since (no longer tracked).
  const size_t in_flight =
      std::max(tracked_in_flight_ ? tracked_in_flight_() : tracker_.in_flight(),
               producer_in_flight_ ? producer_in_flight_() : size_t{0});
  // The shared terminal state's writes waiting for Redis count too (velocity features).
  const bool over = !staged_.empty() || queue_.above_high_watermark() ||
                    in_flight >= config_.max_in_flight_records ||
                    (features_ && features_->shared_backlogged(false));
  const bool under = queue_.below_low_watermark() &&
                     in_flight <= config_.max_in_flight_records / 2 &&
                     !(features_ && features_->shared_backlogged(true));
  const bool want_paused = !intake_.load() || over || (paused_.load() && !under);
  if (want_paused == paused_.load()) return;
  rd_kafka_topic_partition_list_t* assignment = nullptr;
  if (rd_kafka_assignment(rk_.get(), &assignment) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  kafka::PartitionList list(assignment);
  std::vector<PartitionId> parts;
  for (int i = 0; i < list->cnt; ++i) {
    const PartitionId p = list->elems[i].partition;
    // Held partitions stay paused when the others resume.
    if (want_paused || std::find(held_paused_.begin(), held_paused_.end(), p) == held_paused_.end())
      parts.push_back(p);
  }
  if (want_paused) {
    pause_partitions(parts);
    stats_.paused();
    logger("kafka")->debug("paused {} partition(s): queue depth {}", parts.size(), queue_.depth());
  } else {
    resume_partitions(parts);
    wake_fetchers(parts);
    logger("kafka")->debug("resumed {} partition(s): queue depth {}", parts.size(), queue_.depth());
  }
  paused_ = want_paused;
}

kafka::PartitionList KafkaSource::resolve_start_offsets(
    rd_kafka_topic_partition_list_t* partitions) {
  kafka::PartitionList committed(rd_kafka_topic_partition_list_copy(partitions));
  const rd_kafka_resp_err_t cerr =
      rd_kafka_committed(rk_.get(), committed.get(), kAssignLookupTimeoutMs);
  if (cerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
    logger("kafka")->warn(
        "cannot read the committed offsets of {} newly assigned partition(s) ({}); librdkafka "
        "looks them up",
        partitions->cnt, rd_kafka_err2str(cerr));
    return nullptr;
  }
  const ResetPolicy policy = reset_policy();
  if (policy == ResetPolicy::kError) return committed;
  std::vector<PartitionId> unset;
  for (int i = 0; i < committed->cnt; ++i) {
    const rd_kafka_topic_partition_t& c = committed->elems[i];
    if (c.err == RD_KAFKA_RESP_ERR_NO_ERROR && c.offset < 0) unset.push_back(c.partition);
  }
  if (unset.empty()) return committed;
  const kafka::PartitionList starts = list_offsets(
      unset, policy == ResetPolicy::kLatest ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING,
      kAssignLookupTimeoutMs);
  for (int i = 0; i < starts->cnt; ++i) {
    const rd_kafka_topic_partition_t& l = starts->elems[i];
    if (l.err != RD_KAFKA_RESP_ERR_NO_ERROR || l.offset < 0) {
      logger("kafka")->warn(
          "partition {}: cannot read where auto.offset.reset starts it ({}); librdkafka looks "
          "it up",
          l.partition, rd_kafka_err2str(l.err));
      continue;
    }
    rd_kafka_topic_partition_list_find(partitions, l.topic, l.partition)->offset = l.offset;
  }
  return committed;
}

kafka::PartitionList KafkaSource::list_offsets(const std::vector<PartitionId>& parts, int64_t which,
                                               int timeout_ms) {
  kafka::PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(parts.size())));
  for (PartitionId p : parts) {
    // ListOffsets reads a timestamp of -2 as "the log's start" and -1 as "its end".
    rd_kafka_topic_partition_list_add(list.get(), config_.input_topic.c_str(), p)->offset = which;
  }
  const rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk_.get(), list.get(), timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < list->cnt; ++i) list->elems[i].err = err;
  }
  return list;
}

KafkaSource::ResetPolicy KafkaSource::reset_policy() const {
  ResetPolicy policy = ResetPolicy::kEarliest;  // vigil's default (create())
  for (const auto& [k, v] : config_.consumer) {
    if (k != "auto.offset.reset") continue;
    policy = v == "latest" || v == "largest" || v == "end" ? ResetPolicy::kLatest
             : v == "error"                                ? ResetPolicy::kError
                                                           : ResetPolicy::kEarliest;
  }
  return policy;
}

void KafkaSource::plan_feature_replay(rd_kafka_topic_partition_list_t* partitions,
                                      const rd_kafka_topic_partition_list_t* committed) {
  // With no committed offset the partition starts where auto.offset.reset says: from its
  // log's start (earliest, vigil's default) nothing needs replaying; from its end (latest),
  // the log up to there is history.
  const bool reset_latest = reset_policy() == ResetPolicy::kLatest;
  std::vector<PartitionId> all;
  for (int i = 0; i < partitions->cnt; ++i) all.push_back(partitions->elems[i].partition);
  const kafka::PartitionList starts =
      list_offsets(all, RD_KAFKA_OFFSET_BEGINNING, kAssignLookupTimeoutMs);
  const kafka::PartitionList ends = list_offsets(all, RD_KAFKA_OFFSET_END, kAssignLookupTimeoutMs);
  std::vector<features::StreamFeatures::PartitionStart> starts_of;
  for (int i = 0; i < partitions->cnt; ++i) {
    rd_kafka_topic_partition_t& tp = partitions->elems[i];
    const int64_t lo = starts->elems[i].offset;
    const int64_t hi = ends->elems[i].offset;
    rd_kafka_resp_err_t err =
        committed == nullptr ? RD_KAFKA_RESP_ERR__FAIL : committed->elems[i].err;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = starts->elems[i].err;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = ends->elems[i].err;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && (lo < 0 || hi < lo)) err = RD_KAFKA_RESP_ERR__FAIL;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      logger("kafka")->error(
          "partition {}: cannot read its committed offset or log start ({}); its velocity "
          "features start from an empty history, marked partial",
          tp.partition, rd_kafka_err2str(err));
      starts_of.push_back({tp.partition, 0, 0, /*log_complete=*/false});
      continue;
    }
    int64_t c = committed->elems[i].offset;  // < 0: nothing committed
    bool log_complete = lo == 0;
    if (c > hi) {
      // Committed beyond the log's end: the log was truncated or recreated. Where the offset
      // reset would start (auto.offset.reset), with what history the log holds.
      logger("kafka")->warn(
          "partition {}: committed offset {} is beyond the log's end {}; starting from the "
          "auto.offset.reset position, velocity features marked partial",
          tp.partition, c, hi);
      c = RD_KAFKA_OFFSET_INVALID;
      log_complete = false;
    }
    // Without a committed offset: where resolve_start_offsets() started it, else where
    // librdkafka's reset will.
    const int64_t score_from = c >= 0 ? c : tp.offset >= 0 ? tp.offset : (reset_latest ? hi : lo);
    starts_of.push_back({tp.partition, lo, score_from, log_complete});
  }
  const std::vector<int64_t> from = features_->assign(starts_of);
  for (int i = 0; i < partitions->cnt; ++i) {
    rd_kafka_topic_partition_t& tp = partitions->elems[i];
    const int64_t score_from = starts_of[i].score_from;
    if (from[i] < score_from) {
      tp.offset = from[i];  // history first
      logger("kafka")->info(
          "partition {}: rebuilding velocity-feature history from offsets {}..{} before "
          "scoring from {} ({})",
          tp.partition, from[i], score_from - 1, score_from, features_->restore_note(tp.partition));
    }
  }
}

void KafkaSource::pause_partitions(const std::vector<PartitionId>& parts) {
  kafka::PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(parts.size())));
  for (PartitionId p : parts) {
    if (paused_by_us_.insert(p).second)
      rd_kafka_topic_partition_list_add(list.get(), config_.input_topic.c_str(), p);
  }
  if (list->cnt > 0) rd_kafka_pause_partitions(rk_.get(), list.get());
  stats_.paused_partitions_.set(static_cast<double>(paused_by_us_.size()));
}

void KafkaSource::resume_partitions(const std::vector<PartitionId>& parts) {
  kafka::PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(parts.size())));
  for (PartitionId p : parts) {
    if (paused_by_us_.erase(p) > 0)
      rd_kafka_topic_partition_list_add(list.get(), config_.input_topic.c_str(), p);
  }
  if (list->cnt > 0) rd_kafka_resume_partitions(rk_.get(), list.get());
  stats_.paused_partitions_.set(static_cast<double>(paused_by_us_.size()));
}

void KafkaSource::wake_fetchers(const std::vector<PartitionId>& parts) {
  if (parts.empty()) return;
  const kafka::PartitionList ends =
      list_offsets(parts, RD_KAFKA_OFFSET_END, kWatermarkQueryTimeoutMs);
  if (ends->cnt > 0 && ends->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    logger("kafka")->debug("waking the fetchers of {} resumed partition(s): {}", parts.size(),
                           rd_kafka_err2str(ends->elems[0].err));
  }
}

void KafkaSource::watch_prefetch_gate(rd_kafka_message_t* const* msgs, size_t n) {
  size_t batch_bytes = 0;
  for (size_t i = 0; i < n; ++i) batch_bytes += msgs[i]->len;
  const double mean = static_cast<double>(batch_bytes) / static_cast<double>(n);
  mean_record_bytes_ = mean_record_bytes_ == 0 ? mean : 0.9 * mean_record_bytes_ + 0.1 * mean;
  const auto queued = static_cast<size_t>(rd_kafka_queue_length(queue_handle_));
  const double bytes = static_cast<double>(queued) * mean_record_bytes_;
  if (!prefetch_near_bound_) {
    prefetch_near_bound_ = static_cast<double>(queued) >= 0.9 * prefetch_max_records_ ||
                           bytes >= 0.9 * prefetch_max_bytes_;
    return;
  }
  if (queued * 2 > prefetch_max_records_ || bytes * 2 > prefetch_max_bytes_) return;
  prefetch_near_bound_ = false;
  if (paused_.load()) return;  // a resume wakes them
  std::vector<PartitionId> parts;
  rd_kafka_topic_partition_list_t* assignment = nullptr;
  if (rd_kafka_assignment(rk_.get(), &assignment) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  const kafka::PartitionList list(assignment);
  for (int i = 0; i < list->cnt; ++i) {
    if (paused_by_us_.count(list->elems[i].partition) == 0) {
      parts.push_back(list->elems[i].partition);
    }
  }
  wake_fetchers(parts);
  stats_.prefetch_woken();
}

void KafkaSource::update_holds() {
  const std::vector<OffsetTracker::Hold> holds = tracker_.held();
  if (holds.empty() && held_paused_.empty()) return;
  std::vector<PartitionId> now;
  for (const auto& h : holds) now.push_back(h.partition);
  std::vector<PartitionId> pause;
  std::vector<PartitionId> resume;
  for (const auto& h : holds) {
    if (std::find(held_paused_.begin(), held_paused_.end(), h.partition) == held_paused_.end()) {
      pause.push_back(h.partition);
      logger("kafka")->error("partition {} paused: offset {} has no outcome ({})", h.partition,
                             h.offset, h.why);
    }
  }
  for (PartitionId p : held_paused_) {
    if (std::find(now.begin(), now.end(), p) == now.end()) {
      if (!paused_.load()) resume.push_back(p);  // else it resumes with the others
      logger("kafka")->info("partition {} resumes: its held record has an outcome", p);
    }
  }
  pause_partitions(pause);
  resume_partitions(resume);
  wake_fetchers(resume);
  held_paused_ = std::move(now);
  stats_.held_partitions_.set(static_cast<double>(held_paused_.size()));
}

void KafkaSource::refresh_lag() {
  last_lag_ = std::chrono::steady_clock::now();
  if (features_) features_->refresh_gauges();
  for (PartitionId p : tracker_.partitions()) {
    int64_t lo = 0, hi = -1;
    // Cached high watermarks come with fetches; a paused partition fetches nothing, so ask.
    const bool paused = paused_.load() || std::find(held_paused_.begin(), held_paused_.end(), p) !=
                                              held_paused_.end();
    rd_kafka_resp_err_t err =
        paused
            ? rd_kafka_query_watermark_offsets(rk_.get(), config_.input_topic.c_str(), p, &lo, &hi,
                                               kWatermarkQueryTimeoutMs)
            : rd_kafka_get_watermark_offsets(rk_.get(), config_.input_topic.c_str(), p, &lo, &hi);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || hi < 0) continue;
    std::optional<Offset> done = tracker_.committable(p);
    if (!done) {
      auto it = last_committed_.find(p);
      if (it != last_committed_.end()) done = it->second;
    }
    if (!done) continue;  // nothing consumed or committed yet: the position is unknown
    stats_.lag(p, std::max<int64_t>(0, hi - *done));
  }
}

rd_kafka_resp_err_t KafkaSource::commit(bool sync, const std::vector<PartitionId>* only) {
  last_commit_ = std::chrono::steady_clock::now();
  const std::vector<PartitionId> parts = only ? *only : tracker_.partitions();
  kafka::PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(parts.size())));
  std::vector<std::pair<PartitionId, Offset>> to_commit;
  for (PartitionId p : parts) {
    auto off = tracker_.committable(p);
    if (!off) continue;
    // Periodic commits skip offsets already committed; a sync commit (revoke, stop) sends
    // them again, in case the asynchronous commit that carried them failed.
    auto it = last_committed_.find(p);
    if (!sync && it != last_committed_.end() && it->second == *off) continue;
    rd_kafka_topic_partition_list_add(list.get(), config_.input_topic.c_str(), p)->offset = *off;
    to_commit.emplace_back(p, *off);
  }
  if (to_commit.empty()) return RD_KAFKA_RESP_ERR__NO_OFFSET;
  stats_.commits_.inc();
  if (!sync) {
    // The result comes back through commit_result_cb, served by this thread's consume calls.
    rd_kafka_resp_err_t err =
        rd_kafka_commit_queue(rk_.get(), list.get(), queue_handle_, &commit_result_cb, this);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (const auto& [p, off] : to_commit) last_committed_[p] = off;
    }
    return err;
  }
  // A synchronous commit (revoke, stop) is the last word on these partitions: a transient
  // failure (coordinator moving, request timed out) is tried again, a bounded number of times.
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  for (int attempt = 1; attempt <= kSyncCommitAttempts; ++attempt) {
    err = rd_kafka_commit(rk_.get(), list.get(), 0);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET) break;
    stats_.commit_failures_.inc();
    logger("kafka")->warn("offset commit failed (attempt {} of {}): {}", attempt,
                          kSyncCommitAttempts, rd_kafka_err2str(err));
    if (attempt < kSyncCommitAttempts) std::this_thread::sleep_for(kSyncCommitRetryDelay);
  }
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (const auto& [p, off] : to_commit) last_committed_[p] = off;
  }
  return err;
}

std::string KafkaSource::describe_committable(const std::vector<PartitionId>& parts) const {
  std::string s;
  for (PartitionId p : parts) {
    auto off = tracker_.committable(p);
    if (!off) continue;
    s += (s.empty() ? "" : ", ") + std::to_string(p) + "@" + std::to_string(*off);
  }
  return s.empty() ? "nothing consumed" : s;
}

void KafkaSource::stop_intake() {
  intake_ = false;  // the consumer thread pauses every partition on its next turn
  if (!thread_.joinable()) return;
  // Wait until the consumer thread is past any record it took before: from here on it hands
  // nothing more to the scoring queue or the dead-letter path, so the delivery stage can be
  // flushed and stopped knowing nothing new arrives. Bounded by one consume call.
  std::unique_lock<std::mutex> lock(intake_mutex_);
  intake_cv_.wait_for(lock, kIntakeStopBound, [this] { return intake_stopped_; });
}

void KafkaSource::stop() {
  if (stopped_.exchange(true)) return;
  intake_ = false;
  running_ = false;
  if (thread_.joinable()) thread_.join();
  // Every delivery report has been served by now (the service stops the delivery stage
  // first): this commit covers every record that has an outcome.
  const std::vector<PartitionId> parts = tracker_.partitions();
  const rd_kafka_resp_err_t err = commit(/*sync=*/true);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    logger("kafka")->info("final commit: partition@offset {}", describe_committable(parts));
  } else if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
    logger("kafka")->info("final commit: nothing to commit");
  } else {
    logger("kafka")->error(
        "final commit of {} failed: {}; records after the last successful "
        "commit will be consumed again",
        describe_committable(parts), rd_kafka_err2str(err));
  }
  // Leaves the group; the revoke callback runs here (this thread) and commits again.
  rd_kafka_consumer_close(rk_.get());
}

}  // namespace vigil::consumers

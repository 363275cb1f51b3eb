#include "consumers/kafka_source.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "common/clock.h"

namespace vigil::consumers {

namespace {

constexpr int kBatchSize = 500;
constexpr int kPollTimeoutMs = 100;
// How long a revoke waits for records of the revoked partitions to be delivered before
// committing what it has (the rest is re-consumed by the next owner: at-least-once).
constexpr std::chrono::milliseconds kRevokeDrainBound{5000};

std::shared_ptr<spdlog::logger> log() {
  static auto l = [] {
    auto existing = spdlog::get("kafka");
    return existing ? existing : spdlog::default_logger()->clone("kafka");
  }();
  return l;
}

using SharedMessage = std::shared_ptr<rd_kafka_message_t>;

std::string payload_of(const rd_kafka_message_t* m) {
  return m->payload ? std::string(static_cast<const char*>(m->payload), m->len) : std::string();
}
std::string key_of(const rd_kafka_message_t* m) {
  return m->key ? std::string(static_cast<const char*>(m->key), m->key_len) : std::string();
}

}  // namespace

KafkaSourceStats::KafkaSourceStats(metrics::Registry& r)
    : registry(r),
      consumed_(r.counter("vigil_kafka_consumed_total", "Records consumed from the input topic")),
      dlq_model_(r.counter("vigil_kafka_dead_lettered_total",
                           "Records sent to the dead-letter topic, by reason",
                           {{"reason", "model_error"}})),
      pauses_(r.counter("vigil_kafka_pauses_total",
                        "Times the consumer paused its partitions (queue above high watermark)")),
      commits_(r.counter("vigil_kafka_commits_total", "Offset commits issued")),
      commit_failures_(
          r.counter("vigil_kafka_commit_failures_total", "Offset commits that failed")),
      rebalances_(r.counter("vigil_kafka_rebalances_total", "Rebalance events handled")),
      paused_partitions_(r.gauge("vigil_kafka_paused_partitions", "Partitions currently paused")),
      assigned_partitions_(r.gauge("vigil_kafka_assigned_partitions",
                                   "Partitions currently assigned to this instance")) {
  for (auto e : {codec::DecodeError::kMalformedJson, codec::DecodeError::kTooLarge,
                 codec::DecodeError::kBadTransactionId, codec::DecodeError::kMissingFeature,
                 codec::DecodeError::kUnknownFeature, codec::DecodeError::kDuplicateFeature,
                 codec::DecodeError::kWrongType, codec::DecodeError::kNonFinite,
                 codec::DecodeError::kWrongCount}) {
    dlq_decode_[e] = &r.counter("vigil_kafka_dead_lettered_total",
                                "Records sent to the dead-letter topic, by reason",
                                {{"reason", codec::to_string(e)}});
  }
}

void KafkaSourceStats::dead_lettered(codec::DecodeError reason) {
  dlq_decode_.at(reason)->inc();
}

Result<std::unique_ptr<KafkaSource>> KafkaSource::create(
    const KafkaConfig& config, const std::string& bootstrap, scoring::ScoringQueue& queue,
    const codec::FeatureSchema& schema, sinks::KafkaSink& kafka_sink, sinks::ScoreSink* redis,
    metrics::Registry& registry) {
  using R = Result<std::unique_ptr<KafkaSource>>;
  std::vector<std::pair<std::string, std::string>> props = {
      {"bootstrap.servers", bootstrap},
      {"group.id", config.group_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"partition.assignment.strategy", "range"},
      {"enable.partition.eof", "false"},
      {"fetch.wait.max.ms", "20"},  // only matters when idle on real brokers
      {"log_level", "4"},
  };
  for (const auto& kv : config.consumer) props.push_back(kv);
  auto conf = kafka::make_conf(props);
  if (!conf) return R::Error(conf.error());
  rd_kafka_conf_set_rebalance_cb(conf->get(), &KafkaSource::rebalance_cb);
  std::unique_ptr<KafkaSource> src(
      new KafkaSource(config, queue, schema, kafka_sink, redis, registry));
  rd_kafka_conf_set_opaque(conf->get(), src.get());  // rebalance_cb finds the source by it
  auto rk = kafka::make_client(RD_KAFKA_CONSUMER, std::move(conf.value()));
  if (!rk) return R::Error(rk.error());
  src->rk_ = std::move(rk.value());
  rd_kafka_poll_set_consumer(src->rk_.get());
  src->queue_handle_ = rd_kafka_queue_get_consumer(src->rk_.get());
  return R(std::move(src));
}

KafkaSource::KafkaSource(const KafkaConfig& config, scoring::ScoringQueue& queue,
                         const codec::FeatureSchema& schema, sinks::KafkaSink& sink,
                         sinks::ScoreSink* redis, metrics::Registry& registry)
    : config_(config),
      queue_(queue),
      schema_(schema),
      decoder_(schema, config.max_event_bytes),
      sink_(sink),
      redis_(redis),
      stats_(registry) {}

KafkaSource::~KafkaSource() {
  if (rk_) stop();
  if (queue_handle_) rd_kafka_queue_destroy(queue_handle_);
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

void KafkaSource::start() {
  if (running_.exchange(true)) return;
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, config_.input_topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_.get(), topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log()->error("cannot subscribe to '{}': {}", config_.input_topic, rd_kafka_err2str(err));
  }
  last_commit_ = std::chrono::steady_clock::now();
  thread_ = std::thread([this] { run(); });
}

void KafkaSource::on_rebalance(rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t* partitions) {
  stats_.rebalances_.inc();
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (int i = 0; i < partitions->cnt; ++i) tracker_.assign(partitions->elems[i].partition);
    rd_kafka_assign(rk_.get(), partitions);
    assigned_ = partitions->cnt;
    stats_.assigned_partitions_.set(partitions->cnt);
    if (paused_ || !intake_) {
      rd_kafka_pause_partitions(rk_.get(), partitions);
      stats_.paused_partitions_.set(partitions->cnt);
    }
    log()->info("assigned {} partition(s) of '{}'", partitions->cnt, config_.input_topic);
    return;
  }
  assigned_ = 0;  // readiness reflects the loss at once, not after the drain below
  std::vector<PartitionId> revoked;
  for (int i = 0; i < partitions->cnt; ++i) revoked.push_back(partitions->elems[i].partition);
  // A lost assignment (session timed out, e.g. brokers unreachable) is no longer ours: its
  // offsets cannot be committed, so neither drain nor commit.
  const bool lost = rd_kafka_assignment_lost(rk_.get());
  if (lost)
    log()->warn("assignment lost (session timeout); uncommitted records will be re-consumed");
  if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && !lost) {
    // Let records of these partitions that are already being scored finish, so the next
    // owner does not score them again; bounded, then commit what was delivered.
    // When stop() leaves the group, the pipeline is already drained: nothing more will come.
    const auto deadline = std::chrono::steady_clock::now() +
                          (running_.load() ? kRevokeDrainBound : std::chrono::milliseconds(0));
    auto busy = [&] {
      for (auto p : revoked) {
        if (tracker_.in_flight(p) > 0) return true;
      }
      return false;
    };
    while (busy() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (busy() && running_.load())
      log()->warn(
          "revoke: records still in flight after {} ms; they may be scored "
          "again by the next owner",
          kRevokeDrainBound.count());
    commit(/*sync=*/true, &revoked);
  } else {
    log()->warn("rebalance error: {}", rd_kafka_err2str(err));
  }
  for (auto p : revoked) {
    tracker_.revoke(p);
    last_committed_.erase(p);
  }
  rd_kafka_assign(rk_.get(), nullptr);
  assigned_ = 0;
  stats_.assigned_partitions_.set(0);
  stats_.paused_partitions_.set(0);
  log()->info("revoked {} partition(s)", revoked.size());
}

void KafkaSource::run() {
  rd_kafka_message_t* msgs[kBatchSize];
  while (running_.load(std::memory_order_acquire)) {
    // rd_kafka_consume_batch_queue waits for a full batch or the whole timeout, which would
    // add its timeout to every record's latency at low rates: block for the first record
    // only, then take whatever else has already arrived.
    ssize_t n = 0;
    if (rd_kafka_message_t* first = rd_kafka_consume_queue(queue_handle_, kPollTimeoutMs)) {
      msgs[0] = first;
      const ssize_t more = rd_kafka_consume_batch_queue(queue_handle_, 0, msgs + 1, kBatchSize - 1);
      n = 1 + std::max<ssize_t>(more, 0);
    }
    for (ssize_t i = 0; i < n; ++i) {
      kafka::Message m(msgs[i]);
      if (intake_.load(std::memory_order_acquire)) handle(std::move(m));
      // After stop_intake, records are left untracked: not committed, consumed again later.
    }
    update_backpressure();
    if (std::chrono::steady_clock::now() - last_commit_ >= config_.commit_interval) {
      commit(/*sync=*/false);
    }
  }
}

void KafkaSource::handle(kafka::Message msg) {
  if (msg->err) {
    if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      log()->warn("consumer error: {}", rd_kafka_message_errstr(msg.get()));
    }
    return;
  }
  const AckToken token = tracker_.track(msg->partition, msg->offset);
  stats_.consumed(1);
  codec::DecodedEvent ev;
  codec::DecodeStatus st =
      msg->payload
          ? decoder_.decode(std::string_view(static_cast<const char*>(msg->payload), msg->len), ev)
          : codec::DecodeStatus::Error(codec::DecodeError::kMalformedJson, "empty record");
  if (!st.ok()) {
    stats_.dead_lettered(st.code);
    dead_letter(msg.get(), token, codec::to_string(st.code), st.message);
    return;
  }
  scoring::ScoreRequest req;
  req.id = std::move(ev.transaction_id);
  req.features = std::move(ev.features);
  req.origin = scoring::Origin::kKafka;
  if (ev.event_time_ms) {
    req.event_time_ms = ev.event_time_ms;
  } else {
    rd_kafka_timestamp_type_t tstype;
    const int64_t ts = rd_kafka_message_timestamp(msg.get(), &tstype);
    if (ts >= 0) req.event_time_ms = ts;
  }
  SharedMessage shared(msg.release(), kafka::MessageDeleter());
  req.done = [this, token, shared](scoring::ScoreRequest& r, const scoring::ScoreOutcome& o) {
    if (o.status.ok()) {
      sinks::ScoreRecord rec;
      rec.transaction_id = r.id;
      rec.score = o.score;
      rec.is_fraud = o.is_fraud;
      rec.model_name = o.model->name;
      rec.model_version = o.model->version;
      rec.scored_at_ms = wall_clock_ms();
      rec.event_time_ms = r.event_time_ms;
      if (redis_) redis_->publish(rec);
      Status ps = sink_.produce_score(rec, [this, token](const Status& delivery) {
        if (delivery.ok()) {
          tracker_.ack(token);
        } else {
          log()->error("score for partition {} offset {} not delivered: {}", token.partition,
                       token.offset, delivery.message());
        }
      });
      if (!ps.ok()) log()->warn("score not produced: {}", ps.message());
    } else if (!o.retryable) {
      stats_.model_failed();
      dead_letter(shared.get(), token, "model_error", o.status.message());
    }
    // Retryable (shutdown): left unacked, so it is consumed again after restart.
  };
  enqueue(std::move(req));
}

void KafkaSource::dead_letter(const rd_kafka_message_t* msg, const AckToken& token,
                              const std::string& reason, const std::string& message) {
  sinks::DlqRecord rec;
  rec.key = key_of(msg);
  rec.value = payload_of(msg);
  rec.headers = {{"vigil.error", reason},
                 {"vigil.error_message", message},
                 {"vigil.source_topic", config_.input_topic},
                 {"vigil.source_partition", std::to_string(msg->partition)},
                 {"vigil.source_offset", std::to_string(msg->offset)}};
  Status ps = sink_.produce_dlq(rec, [this, token](const Status& delivery) {
    if (delivery.ok()) {
      tracker_.ack(token);
    } else {
      log()->error("dead-letter record for partition {} offset {} not delivered: {}",
                   token.partition, token.offset, delivery.message());
    }
  });
  if (!ps.ok()) log()->warn("dead-letter record not produced: {}", ps.message());
}

void KafkaSource::enqueue(scoring::ScoreRequest request) {
  // The watermarks pause us well before the queue is full; reaching kFull means racing
  // HTTP traffic for the last slots, so wait briefly and retry (the record stays ours).
  while (true) {
    switch (queue_.try_push(request, scoring::Priority::kNormal)) {
      case scoring::ScoringQueue::PushResult::kOk:
        return;
      case scoring::ScoringQueue::PushResult::kClosed:
        return;  // shutting down: not acked, consumed again after restart
      case scoring::ScoringQueue::PushResult::kFull:
        update_backpressure();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        if (!running_.load()) return;
        break;
    }
  }
}

void KafkaSource::update_backpressure() {
  const bool want_paused = !intake_.load() || queue_.above_high_watermark() ||
                           (paused_.load() && !queue_.below_low_watermark());
  if (want_paused == paused_.load()) return;
  rd_kafka_topic_partition_list_t* assignment = nullptr;
  if (rd_kafka_assignment(rk_.get(), &assignment) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  kafka::PartitionList list(assignment);
  if (want_paused) {
    rd_kafka_pause_partitions(rk_.get(), list.get());
    stats_.paused();
    stats_.paused_partitions_.set(list->cnt);
    log()->debug("paused {} partition(s): queue depth {}", list->cnt, queue_.depth());
  } else {
    rd_kafka_resume_partitions(rk_.get(), list.get());
    stats_.paused_partitions_.set(0);
    log()->debug("resumed {} partition(s): queue depth {}", list->cnt, queue_.depth());
  }
  paused_ = want_paused;
}

void KafkaSource::commit(bool sync, const std::vector<PartitionId>* only) {
  last_commit_ = std::chrono::steady_clock::now();
  const std::vector<PartitionId> parts = only ? *only : tracker_.partitions();
  kafka::PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(parts.size())));
  std::vector<std::pair<PartitionId, Offset>> to_commit;
  for (PartitionId p : parts) {
    auto off = tracker_.committable(p);
    if (!off) continue;
    auto it = last_committed_.find(p);
    if (it != last_committed_.end() && it->second == *off) continue;
    rd_kafka_topic_partition_list_add(list.get(), config_.input_topic.c_str(), p)->offset = *off;
    to_commit.emplace_back(p, *off);
  }
  // Consumer lag from the cached high watermarks (no broker round trip).
  for (PartitionId p : parts) {
    int64_t lo = 0, hi = 0;
    auto off = tracker_.committable(p);
    if (off &&
        rd_kafka_get_watermark_offsets(rk_.get(), config_.input_topic.c_str(), p, &lo, &hi) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        hi >= 0) {
      stats_.registry
          .gauge("vigil_kafka_consumer_lag", "Records in the partition not yet delivered",
                 {{"partition", std::to_string(p)}})
          .set(static_cast<double>(std::max<int64_t>(0, hi - *off)));
    }
  }
  if (to_commit.empty()) return;
  stats_.commits_.inc();
  rd_kafka_resp_err_t err = rd_kafka_commit(rk_.get(), list.get(), sync ? 0 : 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    stats_.commit_failures_.inc();
    log()->warn("offset commit failed: {}", rd_kafka_err2str(err));
    return;
  }
  for (const auto& [p, off] : to_commit) last_committed_[p] = off;
}

void KafkaSource::stop_intake() {
  intake_ = false;  // the consumer thread pauses every partition on its next turn
}

void KafkaSource::stop() {
  if (stopped_.exchange(true)) return;
  intake_ = false;
  running_ = false;
  if (thread_.joinable()) thread_.join();
  commit(/*sync=*/true);
  // Leaves the group; the revoke callback runs here (this thread) and commits again.
  rd_kafka_consumer_close(rk_.get());
}

}  // namespace vigil::consumers

#include "delivery/delivery_stage.h"

#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

#include "common/byte_buffer.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "sinks/score_record.h"

namespace vigil::delivery {

namespace {

using steady = std::chrono::steady_clock;

bool is_purge(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
}

// The record itself is too large for the topic (the client's message.max.bytes, or the
// broker's): a cause of the record, not of Kafka, so it must not hold its partition.
bool is_size_refusal(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
         err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

// Kafka did not answer in time (message.timeout.ms): the record may or may not have been
// written. Not a refusal: produced again, never dead-lettered.
bool is_timeout(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT || err == RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE ||
         err == RD_KAFKA_RESP_ERR__TIMED_OUT;
}

// A dead letter whose whole value Kafka refused carries this much of it.
constexpr size_t kTruncatedValueBytes = 4096;

std::string sha256_hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1) return {};
  static const char* const kHex = "0123456789abcdef";
  std::string out(2 * len, '0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 0xf];
  }
  return out;
}

// How often the retry thread looks at its work when nothing wakes it.
constexpr std::chrono::milliseconds kRetryTick{50};

}  // namespace

// Delivery reports carry a pointer to one of these; `kind` says which.
struct DeliveryStage::InFlight {
  enum class Kind : uint8_t { kScore, kDeadLetter };
  explicit InFlight(Kind k) : kind(k) {}
  Kind kind;
};

// One scored record of a batch in flight. Its bytes live in the batch's buffer.
struct DeliveryStage::ScoreSlot : InFlight {
  ScoreSlot() : InFlight(Kind::kScore) {}
  scoring::SourceRecord source;
  Batch* batch = nullptr;
  uint32_t key_offset = 0, key_length = 0;
  uint32_t value_offset = 0, value_length = 0;
  uint32_t request = 0;  // its position in the batch the workers handed over
  int64_t event_time_ms = -1;
  bool delivered = false;
  rd_kafka_resp_err_t refusal = RD_KAFKA_RESP_ERR_NO_ERROR;  // why Kafka refused it
};

struct DeliveryStage::Batch {
  ByteBuffer bytes;  // transaction ids and score JSON of every slot, back to back
  std::vector<ScoreSlot> slots;
  std::vector<rd_kafka_message_t> messages;
  std::vector<sinks::EncodedScore> encoded;
  std::vector<scoring::RecordPosition> acked;
  std::vector<sinks::ReasonField> reasons;  // one record's reason codes while it is encoded
  sinks::FeatureKeys feature_keys;          // the model's input names, escaped once
  std::atomic<size_t> pending{0};           // slots without a final report
  std::string_view key(const ScoreSlot& s) const {
    return {bytes.data() + s.key_offset, s.key_length};
  }
  std::string_view value(const ScoreSlot& s) const {
    return {bytes.data() + s.value_offset, s.value_length};
  }
};

// A record on its way to the dead-letter topic (failure paths only: allocated per record).
struct DeliveryStage::DeadLetter : InFlight {
  DeadLetter() : InFlight(Kind::kDeadLetter) {}
  scoring::SourceRecord source;
  std::string reason;
  std::string message;
  bool held = false;  // its partition is held (a write failed); retried with backoff
  // This attempt carries only the first kTruncatedValueBytes of the value, with headers
  // naming its size and hash: Kafka refused the whole record as too large.
  bool truncated = false;
  std::chrono::milliseconds backoff{0};
  steady::time_point next_attempt{};
};

// ---------------------------------------------------------------------------------------------
// DeliveryStats

DeliveryStats::DeliveryStats(metrics::Registry& r)
    : registry_(r),
      scores_delivered_(r.counter("vigil_kafka_produced_total",
                                  "Records delivered to Kafka, by kind", {{"kind", "score"}})),
      dlq_delivered_(r.counter("vigil_kafka_produced_total", "Records delivered to Kafka, by kind",
                               {{"kind", "dlq"}})),
      delivery_failed_(r.counter("vigil_kafka_delivery_failures_total",
                                 "Scores Kafka refused for good (their records go to the "
                                 "dead-letter topic)")),
      dead_letter_failures_(r.counter("vigil_kafka_dead_letter_failures_total",
                                      "Dead-letter writes Kafka refused (the record is held and "
                                      "retried; its partition pauses)")),
      dropped_shutdown_(r.counter("vigil_delivery_released_total",
                                  "Records released without an outcome (at shutdown, or their "
                                  "partition was revoked): consumed again")),
      produced_again_(
          r.counter("vigil_delivery_produced_again_total",
                    "Scores produced again (after a fatal producer error or a timeout)")),
      shadow_produced_(
          r.counter("vigil_shadow_produced_total", "Shadow records handed to the producer")),
      shadow_lost_(r.counter("vigil_shadow_lost_total",
                             "Shadow records Kafka refused or the producer dropped")),
      http_published_(r.counter("vigil_http_scores_published_total",
                                "HTTP-scored transactions sent to the output topic")),
      truncated_(r.counter("vigil_kafka_dead_letters_truncated_total",
                           "Dead letters written with a truncated value (Kafka refused the whole "
                           "record as too large); headers carry its size and SHA-256")),
      timeouts_(r.counter("vigil_kafka_produce_timeouts_total",
                          "Scores Kafka did not acknowledge within message.timeout.ms (produced "
                          "again, their partition held meanwhile)")),
      abandoned_(r.counter("vigil_delivery_abandoned_total",
                           "Records waiting for a retry whose partition was revoked (left to "
                           "the partition's new owner)")),
      http_lost_(r.counter("vigil_http_scores_lost_total",
                           "HTTP-scored transactions Kafka refused or the producer dropped")),
      end_to_end_(r.histogram("vigil_end_to_end_seconds",
                              "Event time to score delivered to the output topic",
                              metrics::latency_buckets_seconds())) {}

void DeliveryStats::scores_delivered(uint64_t n, const metrics::Histogram::Local& end_to_end) {
  if (n) scores_delivered_.inc(n);
  end_to_end_.merge(end_to_end);
}

void DeliveryStats::dead_lettered(const std::string& reason) {
  dlq_delivered_.inc();
  std::lock_guard<std::mutex> lock(dead_letters_mutex_);
  metrics::Counter*& counter = dead_letters_[reason];
  if (counter == nullptr) {
    counter = &registry_.counter("vigil_kafka_dead_lettered_total",
                                 "Records sent to the dead-letter topic, by reason",
                                 {{"reason", reason}});
  }
  counter->inc();
}

DeliveryStats::Figures DeliveryStats::figures() const {
  Figures f;
  f.end_to_end = end_to_end_.snapshot();
  std::lock_guard<std::mutex> lock(dead_letters_mutex_);
  for (const auto& [reason, counter] : dead_letters_) f.dead_letters[reason] = counter->value();
  return f;
}

// ---------------------------------------------------------------------------------------------
// DeliveryStage

Result<std::unique_ptr<DeliveryStage>> DeliveryStage::create(
    const DeliveryConfig& config, const sinks::ProducerFactory& make_producer,
    sinks::RedisSink* redis, Acknowledger& ack, metrics::Registry& registry) {
  using R = Result<std::unique_ptr<DeliveryStage>>;
  std::unique_ptr<DeliveryStage> stage(new DeliveryStage(config, redis, ack, registry));
  if (make_producer) {
    auto producer = make_producer(*stage);
    if (!producer) return R::Error(producer.error());
    stage->producer_ = std::move(producer.value());
  }
  return R(std::move(stage));
}

DeliveryStage::DeliveryStage(const DeliveryConfig& config, sinks::RedisSink* redis,
                             Acknowledger& ack, metrics::Registry& registry)
    : config_(config), registry_(registry), redis_(redis), ack_(ack), stats_(registry) {
  registry.gauge_callback("vigil_delivery_held_records",
                          "Records whose dead-letter write failed; their partitions are held", {},
                          this, [this] { return static_cast<double>(held_records()); });
}

DeliveryStage::~DeliveryStage() {
  stop(std::chrono::milliseconds(0));
  registry_.remove_callbacks(this);
}

void DeliveryStage::start() {
  if (started_.exchange(true)) return;
  if (producer_) producer_->start();
  retry_thread_ = std::thread([this] {
    name_this_thread("vigil-delivery");
    retry_main();
  });
}

DeliveryStage::Batch* DeliveryStage::acquire_batch() {
  std::lock_guard<std::mutex> lock(pool_mutex_);
  if (free_batches_.empty()) {
    all_batches_.push_back(std::make_unique<Batch>());
    return all_batches_.back().get();
  }
  Batch* b = free_batches_.back();
  free_batches_.pop_back();
  return b;
}

void DeliveryStage::release_batch(Batch* b) {
  std::lock_guard<std::mutex> lock(pool_mutex_);
  free_batches_.push_back(b);
}

void DeliveryStage::release(scoring::SourceRecord& source) {
  source.record.reset();
}

namespace {

// The one score encoder: appends `r`'s key (its transaction id) and then its record to `bytes`,
// for Redis and Kafka alike. Returns the value's offset; the key starts at the size `bytes` had.
// With `log_features`, a score of vigil-computed features carries them (the model's inputs).
uint32_t encode_record(ByteBuffer& bytes, std::vector<sinks::ReasonField>& reasons,
                       const std::string* feature_keys, const scoring::ScoreRequest& r,
                       const scoring::ScoreOutcome& o, const scoring::ModelInfo& model,
                       int64_t scored_at, sinks::ScoreSource source, bool log_features) {
  bytes.append(r.id.view());
  const auto value_offset = static_cast<uint32_t>(bytes.size());
  reasons.clear();
  for (const scoring::Reason& reason : o.reasons) {
    reasons.push_back({model.input_names[reason.input], reason.contribution});
  }
  sinks::FeatureFields features;
  const bool with_features =
      log_features && r.features_computed && r.features.size() == model.input_names.size();
  if (with_features) {
    features.keys = feature_keys;
    features.values = r.features.data();
    features.count = r.features.size();
    features.spec_hash = model.feature_spec_hash;
    features.partial = r.history_partial;
  }
  sinks::append_score_json(bytes, r.id, o.score, o.is_fraud, model.name, model.version, scored_at,
                           r.event_time_ms.value_or(-1), source, reasons.data(), reasons.size(),
                           with_features ? &features : nullptr);
  return value_offset;
}

// A message for the producer over bytes that stay valid until the produce call returns
// (librdkafka copies them); `opaque` comes back with its delivery report.
void fill_message(rd_kafka_message_t& m, std::string_view key, std::string_view value,
                  void* opaque) {
  std::memset(&m, 0, sizeof m);
  m.key = const_cast<char*>(key.data());
  m.key_len = key.size();
  m.payload = const_cast<char*>(value.data());
  m.len = value.size();
  m._private = opaque;
}

}  // namespace

// Encodes each score once, into the batch's buffer (reused: no allocation in steady state).
void DeliveryStage::encode(Batch& b, const std::vector<scoring::ScoreRequest>& batch,
                           const std::vector<scoring::ScoreOutcome>& outcomes,
                           const scoring::ModelInfo& model) {
  const int64_t scored_at = wall_clock_ms();
  const std::string* feature_keys = b.feature_keys.keys_of(model.input_names);
  for (ScoreSlot& s : b.slots) {
    s.key_offset = static_cast<uint32_t>(b.bytes.size());
    s.key_length = static_cast<uint32_t>(batch[s.request].id.size());
    s.value_offset =
        encode_record(b.bytes, b.reasons, feature_keys, batch[s.request], outcomes[s.request],
                      model, scored_at, sinks::ScoreSource::kKafka, config_.log_features);
    s.value_length = static_cast<uint32_t>(b.bytes.size() - s.value_offset);
  }
}

// HTTP-scored rows with a transaction id (already answered): the same encoder, the same bytes
// to Redis (SET NX: never over a streamed transaction's record) and, with
// http.publish_scores, to the output topic, best effort (no offset to hold back).
void DeliveryStage::complete_http(const std::vector<scoring::ScoreRequest>& batch,
                                  const std::vector<scoring::ScoreOutcome>& outcomes,
                                  const scoring::ModelInfo& model) {
  const bool publish = config_.publish_http_scores && producer_ != nullptr;
  if (redis_ == nullptr && !publish) return;
  // Per worker thread, reused: no allocation in steady state.
  thread_local ByteBuffer bytes;
  thread_local std::vector<std::pair<uint32_t, uint32_t>> spans;  // key, value offsets
  thread_local std::vector<sinks::ReasonField> reasons;
  thread_local sinks::FeatureKeys feature_keys;
  thread_local std::vector<sinks::EncodedScore> encoded;
  thread_local std::vector<rd_kafka_message_t> messages;
  bytes.clear();
  spans.clear();
  int64_t scored_at = -1;
  const std::string* keys = feature_keys.keys_of(model.input_names);
  for (size_t i = 0; i < batch.size(); ++i) {
    const scoring::ScoreRequest& r = batch[i];
    if (r.origin != scoring::Origin::kHttp || r.id.empty() || !outcomes[i].status.ok()) continue;
    if (scored_at < 0) scored_at = wall_clock_ms();
    const auto key = static_cast<uint32_t>(bytes.size());
    spans.emplace_back(key, encode_record(bytes, reasons, keys, r, outcomes[i], model, scored_at,
                                          sinks::ScoreSource::kHttp, config_.log_features));
  }
  const size_t n = spans.size();
  if (n == 0) return;
  auto key = [&](size_t i) {
    return std::string_view(bytes.data() + spans[i].first, spans[i].second - spans[i].first);
  };
  auto value = [&](size_t i) {
    const size_t end = i + 1 < n ? spans[i + 1].first : bytes.size();
    return std::string_view(bytes.data() + spans[i].second, end - spans[i].second);
  };
  if (redis_ != nullptr) {
    encoded.resize(n);
    for (size_t i = 0; i < n; ++i) encoded[i] = {key(i), value(i), /*if_absent=*/true};
    redis_->publish(encoded.data(), n);  // best effort; the sink counts what it skips
  }
  if (!publish) return;
  messages.resize(n);
  for (size_t i = 0; i < n; ++i) fill_message(messages[i], key(i), value(i), &http_marker_);
  producer_->produce_best_effort(sinks::Producer::BestEffort::kScores, messages.data(), n);
  stats_.http_score_published(n);
}

void DeliveryStage::complete(std::vector<scoring::ScoreRequest>& batch,
                             const std::vector<scoring::ScoreOutcome>& outcomes,
                             const scoring::ModelInfo& model) {
  complete_http(batch, outcomes, model);
  Batch* b = nullptr;
  uint64_t released = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    scoring::ScoreRequest& r = batch[i];
    if (!r.source.record) continue;  // HTTP: answered, and cached above
    const scoring::ScoreOutcome& o = outcomes[i];
    if (o.status.ok()) {
      if (b == nullptr) {
        b = acquire_batch();
        b->bytes.clear();
        b->slots.clear();
        b->slots.reserve(batch.size());
      }
      b->slots.emplace_back();
      ScoreSlot& s = b->slots.back();
      s.source = std::move(r.source);
      s.batch = b;
      s.request = static_cast<uint32_t>(i);
      s.event_time_ms = r.event_time_ms.value_or(-1);  // for the end-to-end latency
      s.delivered = false;
      s.refusal = RD_KAFKA_RESP_ERR_NO_ERROR;
    } else if (o.retryable) {
      release(r.source);  // shutdown: not acknowledged, consumed again after restart
      ++released;
    } else {
      dead_letter(std::move(r.source), "model_error", o.status.message());
    }
  }
  if (released) stats_.dropped_at_shutdown(released);
  if (b == nullptr) return;

  encode(*b, batch, outcomes, model);
  const size_t n = b->slots.size();

  if (redis_ != nullptr) {
    b->encoded.resize(n);
    for (size_t i = 0; i < n; ++i) b->encoded[i] = {b->key(b->slots[i]), b->value(b->slots[i])};
    redis_->publish(b->encoded.data(), n);  // best effort; the sink counts what it skips
  }

  b->messages.resize(n);
  for (size_t i = 0; i < n; ++i) {
    ScoreSlot& s = b->slots[i];
    fill_message(b->messages[i], b->key(s), b->value(s), &s);
  }
  // One count more than there are slots: this call's own, dropped once produce_scores has
  // returned. Until then the batch cannot be finished and reused by another worker, even if
  // every report arrives while produce_scores is still reading the messages' results.
  b->pending.store(n + 1, std::memory_order_release);
  // One produce call per run of records of one route (one output topic); the messages are in
  // the slots' order.
  scoring::for_each_route_run(
      b->slots.data(), n, [](const ScoreSlot& s) { return s.source.route; },
      [&](uint16_t route, const ScoreSlot* run, size_t count) {
        producer_->produce_scores(route, b->messages.data() + (run - b->slots.data()), count);
      });
  if (b->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) finish_batch(b);
}

void DeliveryStage::shadow_scored(const std::vector<scoring::ShadowRow>& rows,
                                  const scoring::ModelInfo& primary,
                                  const scoring::ModelInfo& shadow) {
  if (producer_ == nullptr) return;  // no Kafka: the shadow topic is not written
  // Small and rare next to the scores: a buffer per call is fine.
  std::string bytes;
  std::vector<std::pair<uint32_t, uint32_t>> spans;  // key, value offsets
  const int64_t scored_at = wall_clock_ms();
  for (const scoring::ShadowRow& row : rows) {
    if (row.id.empty()) continue;  // anonymous HTTP rows: compared in the metrics only
    spans.emplace_back(static_cast<uint32_t>(bytes.size()), 0);
    bytes += row.id.view();
    spans.back().second = static_cast<uint32_t>(bytes.size());
    sinks::append_shadow_json(
        bytes, row.id, row.score, row.shadow_score,
        (row.score >= primary.threshold) == (row.shadow_score >= shadow.threshold), primary.name,
        primary.version, shadow.version, scored_at, row.event_time_ms.value_or(-1));
  }
  if (spans.empty()) return;
  std::vector<rd_kafka_message_t> messages(spans.size());
  for (size_t i = 0; i < spans.size(); ++i) {
    const uint32_t key = spans[i].first, value = spans[i].second;
    const uint32_t end = i + 1 < spans.size() ? spans[i + 1].first : bytes.size();
    fill_message(messages[i], std::string_view(bytes.data() + key, value - key),
                 std::string_view(bytes.data() + value, end - value), nullptr);
  }
  producer_->produce_best_effort(sinks::Producer::BestEffort::kShadow, messages.data(),
                                 messages.size());
  stats_.shadow_produced(messages.size());
}

// Longer than most functions here on purpose: every kind of delivery report (a shadow record, a
// score delivered, refused or to produce again, a dead letter delivered or failed) is decided in
// one place, so the rules that keep offsets honest read top to bottom.
void DeliveryStage::on_delivery(void* opaque, rd_kafka_resp_err_t err, bool retry) {
  if (opaque == nullptr) {  // a shadow record: best effort
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) stats_.shadow_lost();
    return;
  }
  if (opaque == &http_marker_) {  // an HTTP-scored transaction: best effort
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) stats_.http_score_lost();
    return;
  }
  auto* f = static_cast<InFlight*>(opaque);
  if (f->kind == InFlight::Kind::kScore) {
    auto* s = static_cast<ScoreSlot*>(f);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      s->delivered = true;
      slot_done(s);
      return;
    }
    if (released_at_shutdown(err)) {
      slot_done(s);  // shutdown: released unacknowledged in finish_batch, never retried
      return;
    }
    std::lock_guard<std::mutex> lock(work_mutex_);
    if (retry || is_purge(err)) {
      produce_again_.push_back(s);
    } else if (is_timeout(err)) {
      // Maybe written, maybe not: produce it again (the topic may then hold it twice, which
      // at-least-once allows) rather than dead-letter a record that may also be scored. The
      // partition is held meanwhile, so readiness says so and no commit passes it.
      stats_.produce_timed_out();
      timeout_log_.error(
          "the score of partition {} offset {} timed out ({}); producing it again, partition "
          "held meanwhile",
          s->source.partition, s->source.offset, rd_kafka_err2str(err));
      ack_.hold(s->source, std::string("score delivery timed out: ") + rd_kafka_err2str(err) +
                               "; producing it again");
      produce_again_.push_back(s);
    } else {
      stats_.score_refused();
      refused_log_.error(
          "Kafka refused the score of partition {} offset {}: {}; its record goes to the "
          "dead-letter topic",
          s->source.partition, s->source.offset, rd_kafka_err2str(err));
      // The cause travels with the record: keep it in the slot's dead letter.
      s->refusal = err;
      refused_.push_back(s);
    }
    work_cv_.notify_one();
    return;
  }
  // The report gives the dead letter back (produce_dead_letter released it to the producer).
  std::unique_ptr<DeadLetter> d(static_cast<DeadLetter*>(f));
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    dead_letter_delivered(std::move(d));
    return;
  }
  if (released_at_shutdown(err)) {
    // Shutdown: released unacknowledged (consumed again after the restart), never retried:
    // the retry thread and the lists stop() drains may be gone already.
    if (d->held) held_.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  std::lock_guard<std::mutex> lock(work_mutex_);
  if (is_size_refusal(err) && !d->truncated) {
    // The record's own size: the dead letter goes again at once with a prefix of the value,
    // and the partition flows on. Only a refusal of that too holds the partition.
    d->truncated = true;
    d->next_attempt = steady::now();
    truncate_log_.warn(
        "partition {} offset {}: the dead letter is too large for Kafka ({}); writing it with "
        "the first {} of {} bytes, its size and SHA-256",
        d->source.partition, d->source.offset, rd_kafka_err2str(err), kTruncatedValueBytes,
        d->source.record ? d->source.record.get()->len : 0);
  } else if (!(retry || is_purge(err))) {
    d->truncated = false;  // once Kafka accepts again, the whole value may well go through
    stats_.dead_letter_failed();
    const std::string why = std::string("dead-letter write failed: ") + rd_kafka_err2str(err) +
                            " (after: " + d->message + ")";
    if (!d->held) {
      d->held = true;
      held_.fetch_add(1, std::memory_order_relaxed);
      ack_.hold(d->source, why);
      d->backoff = config_.retry_backoff;
    } else {
      d->backoff = std::min(d->backoff * 2, config_.retry_backoff_max);
    }
    d->next_attempt = steady::now() + d->backoff;
    held_log_.error("partition {} held at offset {}: {}; retrying in {} ms", d->source.partition,
                    d->source.offset, why, d->backoff.count());
  }
  dead_letters_.push_back(std::move(d));
  work_cv_.notify_one();
}

bool DeliveryStage::released_at_shutdown(rd_kafka_resp_err_t err) const {
  return (is_purge(err) && stopping_.load(std::memory_order_acquire)) ||
         stopped_.load(std::memory_order_acquire);
}

void DeliveryStage::slot_done(ScoreSlot* s) {
  Batch* b = s->batch;
  if (b->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) finish_batch(b);
}

void DeliveryStage::finish_batch(Batch* b) {
  b->acked.clear();
  metrics::Histogram::Local e2e(stats_.end_to_end());
  const int64_t now_ms = wall_clock_ms();
  uint64_t released = 0;
  for (ScoreSlot& s : b->slots) {
    if (s.delivered) {
      b->acked.push_back(s.source);
      if (s.event_time_ms >= 0) e2e.observe(static_cast<double>(now_ms - s.event_time_ms) * 1e-3);
    } else if (s.source.record) {
      ++released;  // shutdown purge (a refused one gave its record to its dead letter)
    }
    release(s.source);
  }
  ack_.acknowledge(b->acked.data(), b->acked.size());
  stats_.scores_delivered(b->acked.size(), e2e);
  if (released) stats_.dropped_at_shutdown(released);
  release_batch(b);
}

void DeliveryStage::dead_letter(scoring::SourceRecord source, std::string_view reason,
                                std::string message) {
  auto d = std::make_unique<DeadLetter>();
  d->source = std::move(source);
  d->reason.assign(reason);
  d->message = std::move(message);
  produce_dead_letter(std::move(d));
}

void DeliveryStage::produce_dead_letter(std::unique_ptr<DeadLetter> d) {
  const rd_kafka_message_t* m = d->source.record.get();
  const std::string_view key =
      m->key ? std::string_view(static_cast<const char*>(m->key), m->key_len) : std::string_view();
  // A record the client returned as an error has the error text as its payload, not a value.
  std::string_view value = m->payload && !m->err
                               ? std::string_view(static_cast<const char*>(m->payload), m->len)
                               : std::string_view();
  std::vector<std::pair<std::string, std::string>> headers = {
      {"vigil.error", d->reason},
      {"vigil.error_message", d->message},
      {"vigil.source_topic", d->source.route < config_.input_topics.size()
                                 ? config_.input_topics[d->source.route]
                                 : std::string()},
      {"vigil.source_partition", std::to_string(d->source.partition)},
      {"vigil.source_offset", std::to_string(d->source.offset)}};
  if (d->truncated) {
    headers.emplace_back("vigil.value_truncated", "true");
    headers.emplace_back("vigil.value_size", std::to_string(value.size()));
    headers.emplace_back("vigil.value_sha256", sha256_hex(value));
    value = value.substr(0, std::min(value.size(), kTruncatedValueBytes));
  }
  // From here the dead letter belongs to its delivery report (on_delivery takes it back);
  // `key` and `value` point into its record, which it keeps alive until then.
  producer_->produce_dead_letter(key, value, headers, d.release());
}

void DeliveryStage::dead_letter_delivered(std::unique_ptr<DeadLetter> d) {
  stats_.dead_lettered(d->reason);
  if (d->truncated) stats_.dead_letter_truncated();
  const scoring::RecordPosition position = d->source;
  ack_.acknowledge(&position, 1);  // also lifts a hold on it
  if (d->held) {
    held_.fetch_sub(1, std::memory_order_relaxed);
    // Once per record would flood the log when many records were held at once.
    released_log_.log(spdlog::level::info,
                      "partition {} offset {}: dead-letter write succeeded; its hold is lifted",
                      d->source.partition, d->source.offset);
  }
}

void DeliveryStage::retry_main() {
  std::vector<ScoreSlot*> refused, again;
  std::vector<std::unique_ptr<DeadLetter>> letters, later;
  std::unique_lock<std::mutex> lock(work_mutex_);
  while (!stop_retry_) {
    // New refusals are dead-lettered at once; scores to produce again, dead letters due and a
    // fatal producer are looked at once per tick (a fatal producer refuses everything at once,
    // so reacting to those at once would spin).
    work_cv_.wait_for(lock, kRetryTick, [this] { return stop_retry_ || !refused_.empty(); });
    if (stop_retry_) break;
    refused.swap(refused_);
    again.swap(produce_again_);
    // Dead letters whose time has come; the others wait.
    const auto now = steady::now();
    for (auto& d : dead_letters_) {
      (d->next_attempt <= now ? letters : later).push_back(std::move(d));
    }
    dead_letters_.swap(later);
    later.clear();
    lock.unlock();

    if (producer_ && producer_->fatal()) {
      Status st = producer_->replace_producer();
      if (!st.ok())
        logger("delivery")->error("cannot replace the failed producer: {}", st.message());
    }
    // Work whose partition was revoked meanwhile is no longer ours: its new owner consumes
    // the records again, so writing them here would only duplicate them.
    abandon_revoked(refused, again, letters);
    for (ScoreSlot* s : refused) {
      // The score is refused for good: its source record goes to the dead-letter topic.
      auto d = std::make_unique<DeadLetter>();
      d->source = std::move(s->source);
      d->reason = "delivery_failed";
      d->message = std::string("score not accepted by Kafka: ") + rd_kafka_err2str(s->refusal);
      slot_done(s);
      produce_dead_letter(std::move(d));
    }
    if (!again.empty()) stats_.produced_again(again.size());
    for (ScoreSlot* s : again) {
      rd_kafka_message_t m;
      fill_message(m, s->batch->key(*s), s->batch->value(*s), s);
      producer_->produce_scores(s->source.route, &m, 1);
    }
    for (auto& d : letters) produce_dead_letter(std::move(d));
    refused.clear();
    again.clear();
    letters.clear();
    lock.lock();
  }
}

void DeliveryStage::abandon_revoked(std::vector<ScoreSlot*>& refused,
                                    std::vector<ScoreSlot*>& again,
                                    std::vector<std::unique_ptr<DeadLetter>>& letters) {
  size_t n = 0;
  auto drop_slots = [&](std::vector<ScoreSlot*>& slots) {
    size_t k = 0;
    for (ScoreSlot* s : slots) {
      if (ack_.owns(s->source)) {
        slots[k++] = s;
        continue;
      }
      ++n;
      slot_done(s);  // not delivered: released unacknowledged in finish_batch
    }
    slots.resize(k);
  };
  drop_slots(refused);
  drop_slots(again);
  size_t k = 0;
  for (auto& d : letters) {
    if (ack_.owns(d->source)) {
      letters[k++] = std::move(d);
      continue;
    }
    ++n;
    if (d->held) held_.fetch_sub(1, std::memory_order_relaxed);
    d.reset();  // its record is released unacknowledged
  }
  letters.resize(k);
  if (n == 0) return;
  stats_.abandoned(n);
  abandoned_log_.warn(
      "{} record(s) waiting for a retry belong to revoked partitions; left to "
      "their new owner",
      n);
}

bool DeliveryStage::flush(std::chrono::milliseconds timeout) {
  return producer_ == nullptr || producer_->flush(timeout);
}

void DeliveryStage::stop(std::chrono::milliseconds timeout) {
  if (stopped_.exchange(true)) return;
  stopping_ = true;
  // The retry thread first: it must not replace the producer while the sink stops. What it
  // leaves, and what the sink's last reports hand over, is released below.
  {
    std::lock_guard<std::mutex> lock(work_mutex_);
    stop_retry_ = true;
  }
  work_cv_.notify_all();
  if (retry_thread_.joinable()) retry_thread_.join();
  if (producer_) producer_->stop(timeout);  // what is left is purged and reported: released
  // Whatever still waits has no outcome: release it unacknowledged (replayed after restart).
  for (ScoreSlot* s : produce_again_) slot_done(s);
  for (ScoreSlot* s : refused_) slot_done(s);
  stats_.dropped_at_shutdown(dead_letters_.size());
  produce_again_.clear();
  refused_.clear();
  dead_letters_.clear();
  held_ = 0;
}

}  // namespace vigil::delivery

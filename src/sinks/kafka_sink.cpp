#include "sinks/kafka_sink.h"

#include <algorithm>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "common/thread_name.h"

namespace vigil::sinks {

namespace {}  // namespace

struct KafkaSink::Client {
  kafka::Handle rk;
  rd_kafka_topic_t* scores = nullptr;  // cached topic handles: no lookup by name per record
  rd_kafka_topic_t* dlq = nullptr;
  rd_kafka_topic_t* shadow = nullptr;
  std::vector<rd_kafka_topic_t*> outputs;  // by route (KafkaSinkConfig::outputs)
  ~Client() {
    for (rd_kafka_topic_t* t : outputs) {
      if (t) rd_kafka_topic_destroy(t);
    }
    if (scores) rd_kafka_topic_destroy(scores);
    if (dlq) rd_kafka_topic_destroy(dlq);
    if (shadow) rd_kafka_topic_destroy(shadow);
  }
};

KafkaSink::Stats::Stats(metrics::Registry& r)
    : queue_full_waits(r.counter("vigil_kafka_producer_queue_full_total",
                                 "Times a produce waited because the producer queue was full")),
      fatal_errors(r.counter("vigil_kafka_producer_fatal_errors_total",
                             "Fatal producer errors (the producer is then replaced)")),
      replaced(r.counter("vigil_kafka_producer_replaced_total",
                         "Producers replaced after a fatal error")) {}

Result<std::unique_ptr<KafkaSink>> KafkaSink::create(const KafkaSinkConfig& config,
                                                     DeliveryListener& listener,
                                                     metrics::Registry& registry) {
  using R = Result<std::unique_ptr<KafkaSink>>;
  std::unique_ptr<KafkaSink> sink(new KafkaSink(config, listener, registry));
  auto p = sink->make_producer();
  if (!p) return R::Error(p.error());
  sink->producer_ = std::move(p.value());
  return R(std::move(sink));
}

Result<std::unique_ptr<KafkaSink::Client>> KafkaSink::make_producer() {
  using R = Result<std::unique_ptr<Client>>;
  // Scores leave a batch at a time, so batches are large even with a short linger: 1 ms keeps
  // the producer's share of the end-to-end latency small.
  std::vector<std::pair<std::string, std::string>> props = {
      {"bootstrap.servers", config_.bootstrap},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"compression.type", "lz4"},
      {"linger.ms", "1"},
      // Produce requests are small and latency-bound: Nagle's algorithm held the last ones
      // of a burst ~40 ms (waiting for a delayed ACK), measured in stream_bench.
      {"socket.nagle.disable", "true"},
      {"batch.num.messages", "10000"},
      {"queue.buffering.max.messages", "200000"},
      {"message.timeout.ms", "300000"},
      {"log_level", "4"},
  };
  for (const auto& kv : config_.properties) props.push_back(kv);
  auto conf = kafka::make_conf(props);
  if (!conf) return R::Error(conf.error());
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &KafkaSink::on_delivery_report);
  rd_kafka_conf_set_error_cb(conf->get(), &KafkaSink::on_error);
  rd_kafka_conf_set_opaque(conf->get(), this);
  auto rk = kafka::make_client(RD_KAFKA_PRODUCER, std::move(conf.value()));
  if (!rk) return R::Error(rk.error());
  auto p = std::make_unique<Client>();
  p->rk = std::move(rk.value());
  p->scores = rd_kafka_topic_new(p->rk.get(), config_.output_topic.c_str(), nullptr);
  p->dlq = rd_kafka_topic_new(p->rk.get(), config_.dlq_topic.c_str(), nullptr);
  p->shadow = rd_kafka_topic_new(p->rk.get(), config_.shadow_topic.c_str(), nullptr);
  for (const std::string& t : config_.outputs) {
    p->outputs.push_back(rd_kafka_topic_new(p->rk.get(), t.c_str(), nullptr));
    if (p->outputs.back() == nullptr) return R::Error("kafka producer: cannot create topic " + t);
  }
  if (!p->scores || !p->dlq || !p->shadow) {
    return R::Error("kafka producer: cannot create topic handles");
  }
  return R(std::move(p));
}

KafkaSink::KafkaSink(const KafkaSinkConfig& config, DeliveryListener& listener,
                     metrics::Registry& registry)
    : config_(config), listener_(listener), registry_(registry), stats_(registry) {
  registry_.gauge_callback("vigil_kafka_producer_in_flight",
                           "Records produced and not yet acknowledged", {}, this,
                           [this] { return static_cast<double>(in_flight()); });
}

KafkaSink::~KafkaSink() {
  stop(std::chrono::milliseconds(0));
  registry_.remove_callbacks(this);
}

void KafkaSink::start() {
  if (running_.exchange(true)) return;
  poller_ = std::thread([this] {
    name_this_thread("vigil-kafka-dr");
    poller_main();
  });
}

void KafkaSink::poller_main() {
  while (running_.load(std::memory_order_acquire)) {
    wait_for_swap();
    std::shared_lock<std::shared_mutex> lock(producer_mutex_);
    rd_kafka_poll(producer_->rk.get(), 20);
  }
}

void KafkaSink::wait_for_swap() const {
  // glibc's rwlock prefers readers: with the poller and producers taking the shared lock in
  // turn, replace_producer's exclusive lock could wait forever. Readers stand back meanwhile.
  while (swap_pending_.load(std::memory_order_acquire)) std::this_thread::yield();
}

void KafkaSink::on_delivery_report(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque) {
  auto* self = static_cast<KafkaSink*>(opaque);
  const bool retry = msg->err != RD_KAFKA_RESP_ERR_NO_ERROR &&
                     (msg->err == RD_KAFKA_RESP_ERR__FATAL ||
                      rd_kafka_fatal_error(rk, nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR);
  self->listener_.on_delivery(msg->_private, msg->err, retry);
}

void KafkaSink::on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaSink*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char why[512];
    const rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof why);
    logger("kafka")->error("fatal producer error: {}: {}; the producer will be replaced",
                           rd_kafka_err2name(orig), why);
    self->stats_.fatal_errors.inc();
    self->fatal_.store(true, std::memory_order_release);
    return;
  }
  // Transient (brokers unreachable and the like): librdkafka retries by itself.
  logger("kafka")->debug("producer: {}: {}",
                         rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), reason);
}

void KafkaSink::produce_scores(size_t output, rd_kafka_message_t* messages, size_t n) {
  wait_for_swap();
  std::shared_lock<std::shared_mutex> lock(producer_mutex_);
  rd_kafka_t* rk = producer_->rk.get();
  rd_kafka_topic_t* topic =
      output < producer_->outputs.size() ? producer_->outputs[output] : producer_->scores;
  size_t todo = n;
  while (todo > 0) {
    if (stopped_.load(std::memory_order_acquire)) {
      for (size_t i = 0; i < todo; ++i) {
        listener_.on_delivery(messages[i]._private, RD_KAFKA_RESP_ERR__PURGE_QUEUE, false);
      }
      return;
    }
    for (size_t i = 0; i < todo; ++i) messages[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
    // No RD_KAFKA_MSG_F_COPY: the payloads stay in the caller's batch until their delivery
    // reports (see Producer::produce_scores), so librdkafka refers to them instead of copying
    // each into an allocation of its own.
    rd_kafka_produce_batch(topic, RD_KAFKA_PARTITION_UA, 0, messages, static_cast<int>(todo));
    // Keep the messages to retry (queue full) at the front; report the refused ones.
    size_t again = 0;
    for (size_t i = 0; i < todo; ++i) {
      const rd_kafka_resp_err_t err = messages[i].err;
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        messages[again++] = messages[i];
      } else {
        const bool retry = err == RD_KAFKA_RESP_ERR__FATAL ||
                           rd_kafka_fatal_error(rk, nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
        listener_.on_delivery(messages[i]._private, err, retry);
      }
    }
    todo = again;
    if (todo > 0) {
      stats_.queue_full_waits.inc();
      rd_kafka_poll(rk, 10);  // serve delivery reports to make room
    }
  }
}

void KafkaSink::produce_best_effort(BestEffort topic, rd_kafka_message_t* messages, size_t n) {
  wait_for_swap();
  std::shared_lock<std::shared_mutex> lock(producer_mutex_);
  for (size_t i = 0; i < n; ++i) messages[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
  rd_kafka_produce_batch(topic == BestEffort::kShadow ? producer_->shadow : producer_->scores,
                         RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, messages, static_cast<int>(n));
  for (size_t i = 0; i < n; ++i) {
    if (messages[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      listener_.on_delivery(messages[i]._private, messages[i].err, false);
    }
  }
}

void KafkaSink::produce_dead_letter(std::string_view key, std::string_view value,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    void* opaque) {
  wait_for_swap();
  std::shared_lock<std::shared_mutex> lock(producer_mutex_);
  rd_kafka_t* rk = producer_->rk.get();
  while (true) {
    if (stopped_.load(std::memory_order_acquire)) {
      listener_.on_delivery(opaque, RD_KAFKA_RESP_ERR__PURGE_QUEUE, false);
      return;
    }
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size());
    for (const auto& [k, v] : headers) {
      rd_kafka_header_add(hdrs, k.data(), static_cast<ssize_t>(k.size()), v.data(),
                          static_cast<ssize_t>(v.size()));
    }
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_RKT(producer_->dlq), RD_KAFKA_V_KEY(key.data(), key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(opaque),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return;  // headers owned by librdkafka now
    rd_kafka_headers_destroy(hdrs);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      stats_.queue_full_waits.inc();
      rd_kafka_poll(rk, 10);
      continue;
    }
    const bool retry = err == RD_KAFKA_RESP_ERR__FATAL ||
                       rd_kafka_fatal_error(rk, nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
    listener_.on_delivery(opaque, err, retry);
    return;
  }
}

std::vector<std::string> KafkaSink::written_topics() const {
  std::vector<std::string> topics{config_.output_topic, config_.dlq_topic};
  for (const std::string& t : config_.outputs) {
    if (std::find(topics.begin(), topics.end(), t) == topics.end()) topics.push_back(t);
  }
  return topics;
}

Status KafkaSink::wait_for_brokers(std::chrono::milliseconds timeout,
                                   const std::function<bool()>& interrupted) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto next_log = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (true) {
    Status md;
    {
      std::shared_lock<std::shared_mutex> lock(producer_mutex_);
      md = kafka::fetch_metadata(producer_->rk.get(), written_topics(), 1000);
    }
    if (md.ok()) return md;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      return Status::Error("kafka brokers " + config_.bootstrap + " unreachable for " +
                           std::to_string(timeout.count()) + " ms: " + md.message());
    }
    if (interrupted && interrupted()) return Status::Error("interrupted while waiting for brokers");
    if (now >= next_log) {
      logger("kafka")->warn(
          "waiting for kafka brokers {} ({} s left): {}", config_.bootstrap,
          std::chrono::duration_cast<std::chrono::seconds>(deadline - now).count(), md.message());
      next_log = now + std::chrono::seconds(5);
    }
    // A refused connection fails the request at once: do not spin.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

Status KafkaSink::replace_producer() {
  if (stopped_.load(std::memory_order_acquire)) return Status::Error("kafka sink is stopped");
  auto fresh = make_producer();
  if (!fresh) return Status::Error(fresh.error());
  Status md = kafka::fetch_metadata(fresh.value()->rk.get(), written_topics(), 5000);
  if (!md.ok()) return Status::Error("kafka producer: " + md.message());
  std::unique_ptr<Client> old;
  swap_pending_.store(true, std::memory_order_release);
  {
    std::unique_lock<std::shared_mutex> lock(producer_mutex_);
    old = std::move(producer_);
    producer_ = std::move(fresh.value());
    fatal_.store(false, std::memory_order_release);
  }
  swap_pending_.store(false, std::memory_order_release);
  stats_.replaced.inc();
  // The old producer is fatal: whatever it still holds was not delivered. Purging reports it
  // (with `retry`, since the producer is fatal) so it is produced again on the new one.
  rd_kafka_purge(old->rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_flush(old->rk.get(), 5000);
  logger("kafka")->warn(
      "producer replaced after a fatal error; undelivered records are produced again");
  return Status::Ok();
}

void KafkaSink::inject_fatal_error_for_test(const char* reason) {
  std::shared_lock<std::shared_mutex> lock(producer_mutex_);
  rd_kafka_test_fatal_error(producer_->rk.get(), RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                            reason);
}

bool KafkaSink::flush(std::chrono::milliseconds timeout) {
  // rd_kafka_flush serves delivery reports itself; the poller may serve some concurrently.
  std::shared_lock<std::shared_mutex> lock(producer_mutex_);
  return rd_kafka_flush(producer_->rk.get(), static_cast<int>(timeout.count())) ==
         RD_KAFKA_RESP_ERR_NO_ERROR;
}

void KafkaSink::stop(std::chrono::milliseconds timeout) {
  if (stopped_.exchange(true)) return;
  if (!producer_) return;
  flush(timeout);
  running_ = false;
  if (poller_.joinable()) poller_.join();
  // Records still queued are purged; their reports say so, so nothing is silently forgotten
  // (their offsets stay uncommitted and are replayed after restart).
  std::unique_lock<std::shared_mutex> lock(producer_mutex_);
  rd_kafka_purge(producer_->rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(producer_->rk.get(), 0);
}

size_t KafkaSink::in_flight() const {
  std::shared_lock<std::shared_mutex> lock(producer_mutex_);
  return producer_ ? static_cast<size_t>(rd_kafka_outq_len(producer_->rk.get())) : 0;
}

}  // namespace vigil::sinks

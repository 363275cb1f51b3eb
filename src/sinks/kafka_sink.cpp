#include "sinks/kafka_sink.h"

#include "common/clock.h"

namespace vigil::sinks {

// Per-record context handed to librdkafka as the message opaque.
struct KafkaSink::Pending {
  DeliveryCallback callback;
};

KafkaSink::Stats::Stats(metrics::Registry& r)
    : scores_delivered(r.counter("vigil_kafka_produced_total",
                                 "Records delivered to Kafka, by kind", {{"kind", "score"}})),
      dlq_delivered(r.counter("vigil_kafka_produced_total", "Records delivered to Kafka, by kind",
                              {{"kind", "dlq"}})),
      delivery_failed(r.counter("vigil_kafka_delivery_failures_total",
                                "Records Kafka did not acknowledge (offsets stay uncommitted)")),
      queue_full_waits(r.counter("vigil_kafka_producer_queue_full_total",
                                 "Times a produce waited because the producer queue was full")),
      end_to_end(r.histogram("vigil_end_to_end_seconds",
                             "Event time to score delivered to the output topic",
                             metrics::latency_buckets_seconds())) {}

Result<std::unique_ptr<KafkaSink>> KafkaSink::create(const KafkaSinkConfig& config,
                                                     metrics::Registry& registry) {
  using R = Result<std::unique_ptr<KafkaSink>>;
  std::vector<std::pair<std::string, std::string>> props = {
      {"bootstrap.servers", config.bootstrap},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"compression.type", "lz4"},
      {"linger.ms", "5"},
      {"batch.num.messages", "10000"},
      {"queue.buffering.max.messages", "200000"},
      {"message.timeout.ms", "300000"},
      {"log_level", "4"},
  };
  for (const auto& kv : config.properties) props.push_back(kv);
  auto conf = kafka::make_conf(props);
  if (!conf) return R::Error(conf.error());
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &KafkaSink::on_delivery_report);
  auto rk = kafka::make_client(RD_KAFKA_PRODUCER, std::move(conf.value()));
  if (!rk) return R::Error(rk.error());
  std::unique_ptr<KafkaSink> sink(new KafkaSink(std::move(rk.value()), config, registry));
  Status md = kafka::fetch_metadata(sink->rk_.get(), {config.output_topic, config.dlq_topic}, 5000);
  if (!md.ok()) return R::Error("kafka producer: " + md.message());
  return R(std::move(sink));
}

KafkaSink::KafkaSink(kafka::Handle rk, const KafkaSinkConfig& config, metrics::Registry& registry)
    : rk_(std::move(rk)), config_(config), registry_(registry), stats_(registry) {
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
  poller_ = std::thread([this] { poller_main(); });
}

void KafkaSink::poller_main() {
  while (running_.load(std::memory_order_acquire)) rd_kafka_poll(rk_.get(), 50);
}

void KafkaSink::on_delivery_report(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
  auto* pending = static_cast<Pending*>(msg->_private);
  if (!pending) return;
  Status st =
      msg->err == RD_KAFKA_RESP_ERR_NO_ERROR
          ? Status::Ok()
          : Status::Error(std::string("kafka delivery failed: ") + rd_kafka_err2str(msg->err));
  if (pending->callback) pending->callback(st);
  delete pending;
}

Status KafkaSink::produce(const std::string& topic, const std::string& key,
                          const std::string& value, rd_kafka_headers_t* headers, Pending* pending) {
  while (true) {
    if (stopped_.load(std::memory_order_acquire)) {
      if (headers) rd_kafka_headers_destroy(headers);
      delete pending;
      return Status::Error("kafka sink is stopped");
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(pending),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();  // headers owned by librdkafka
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      stats_.queue_full_waits.inc();
      rd_kafka_poll(rk_.get(), 10);  // serve delivery reports to make room
      continue;
    }
    if (headers) rd_kafka_headers_destroy(headers);
    delete pending;
    return Status::Error(std::string("kafka produce to '") + topic + "': " + rd_kafka_err2str(err));
  }
}

Status KafkaSink::produce_score(const ScoreRecord& record, DeliveryCallback on_delivery) {
  auto* pending = new Pending;
  pending->callback = [this, event_time = record.event_time_ms.value_or(-1),
                       cb = std::move(on_delivery)](const Status& st) {
    if (st.ok()) {
      stats_.scores_delivered.inc();
      if (event_time >= 0) {
        stats_.end_to_end.observe(static_cast<double>(wall_clock_ms() - event_time) * 1e-3);
      }
    } else {
      stats_.delivery_failed.inc();
    }
    if (cb) cb(st);
  };
  return produce(config_.output_topic, record.transaction_id, to_json(record), nullptr, pending);
}

Status KafkaSink::produce_dlq(const DlqRecord& record, DeliveryCallback on_delivery) {
  auto* pending = new Pending;
  pending->callback = [this, cb = std::move(on_delivery)](const Status& st) {
    (st.ok() ? stats_.dlq_delivered : stats_.delivery_failed).inc();
    if (cb) cb(st);
  };
  rd_kafka_headers_t* headers = rd_kafka_headers_new(record.headers.size());
  for (const auto& [k, v] : record.headers) {
    rd_kafka_header_add(headers, k.data(), static_cast<ssize_t>(k.size()), v.data(),
                        static_cast<ssize_t>(v.size()));
  }
  return produce(config_.dlq_topic, record.key, record.value, headers, pending);
}

bool KafkaSink::flush(std::chrono::milliseconds timeout) {
  // rd_kafka_flush serves delivery reports itself; the poller may serve some concurrently.
  return rd_kafka_flush(rk_.get(), static_cast<int>(timeout.count())) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

void KafkaSink::stop(std::chrono::milliseconds timeout) {
  if (stopped_.exchange(true)) return;
  flush(timeout);
  running_ = false;
  if (poller_.joinable()) poller_.join();
  // Records still queued are purged; their callbacks report failure, so nothing is
  // silently forgotten (their offsets stay uncommitted and are replayed after restart).
  rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(rk_.get(), 0);
}

size_t KafkaSink::in_flight() const {
  return static_cast<size_t>(rd_kafka_outq_len(rk_.get()));
}

}  // namespace vigil::sinks

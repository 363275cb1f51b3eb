#include "consumers/reports_source.h"

#include <algorithm>
#include <climits>
#include <utility>

#include "common/log.h"
#include "common/thread_name.h"
#include "features/terminal_days.h"

namespace vigil::consumers {

namespace {

constexpr size_t kMaxBatch = 500;

// A record the client could not read and skips names its offset: dead-lettered, not dropped.
bool unreadable_record(const rd_kafka_message_t* m) {
  return (m->err == RD_KAFKA_RESP_ERR__BAD_MSG || m->err == RD_KAFKA_RESP_ERR__BAD_COMPRESSION) &&
         m->rkt != nullptr && m->partition >= 0 && m->offset >= 0;
}

// Marks the dead letter (the message's opaque) delivered; a refused one is sent again.
template <typename DeadLetter>
void delivery_report(rd_kafka_t* /*rk*/, const rd_kafka_message_t* m, void* /*opaque*/) {
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->_private != nullptr) {
    static_cast<DeadLetter*>(m->_private)->delivered = true;
  }
}

}  // namespace

Result<std::unique_ptr<ReportsSource>> ReportsSource::create(const kafka::KafkaConfig& config,
                                                             const std::string& bootstrap,
                                                             features::TerminalState& state,
                                                             metrics::Registry& registry) {
  using R = Result<std::unique_ptr<ReportsSource>>;
  std::unique_ptr<ReportsSource> src(new ReportsSource(config, state, registry));
  std::vector<std::pair<std::string, std::string>> props = {
      {"bootstrap.servers", bootstrap},
      {"group.id", group_id(config)},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"partition.assignment.strategy", "range"},
      {"enable.partition.eof", "false"},
      {"fetch.wait.max.ms", config.is_embedded() ? "10" : "100"},
      {"log_level", "4"},
  };
  for (const auto& kv : config.consumer) props.push_back(kv);
  auto conf = kafka::make_conf(props);
  if (!conf) return R::Error(conf.error());
  auto consumer = kafka::make_client(RD_KAFKA_CONSUMER, std::move(conf.value()));
  if (!consumer) return R::Error(consumer.error());
  src->consumer_ = std::move(consumer.value());
  rd_kafka_poll_set_consumer(src->consumer_.get());

  std::vector<std::pair<std::string, std::string>> pprops = {
      {"bootstrap.servers", bootstrap},
      {"enable.idempotence", "true"},
      {"linger.ms", "5"},
      {"log_level", "4"},
  };
  for (const auto& kv : config.producer) pprops.push_back(kv);
  auto pconf = kafka::make_conf(pprops);
  if (!pconf) return R::Error(pconf.error());
  rd_kafka_conf_set_dr_msg_cb(pconf->get(), &delivery_report<DeadLetter>);
  auto producer = kafka::make_client(RD_KAFKA_PRODUCER, std::move(pconf.value()));
  if (!producer) return R::Error(producer.error());
  src->producer_ = std::move(producer.value());
  return R(std::move(src));
}

ReportsSource::ReportsSource(const kafka::KafkaConfig& config, features::TerminalState& state,
                             metrics::Registry& registry)
    : config_(config),
      state_(state),
      decoder_(config.max_event_bytes),
      registry_(registry),
      consumed_(registry.counter("vigil_reports_consumed_total",
                                 "Fraud reports consumed (kafka.reports_topic)")),
      confirmed_(registry.counter("vigil_reports_applied_total",
                                  "Fraud reports applied to the shared terminal state, by "
                                  "is_fraud",
                                  {{"is_fraud", "true"}})),
      cleared_(registry.counter("vigil_reports_applied_total",
                                "Fraud reports applied to the shared terminal state, by "
                                "is_fraud",
                                {{"is_fraud", "false"}})) {}

ReportsSource::~ReportsSource() {
  stop();
}

void ReportsSource::start() {
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, config_.reports_topic.c_str(), RD_KAFKA_PARTITION_UA);
  const rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer_.get(), topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    logger("kafka")->error("cannot subscribe to '{}': {}", config_.reports_topic,
                           rd_kafka_err2str(err));
  }
  running_ = true;
  thread_ = std::thread([this] { run(); });
  logger("kafka")->info("consuming fraud reports from '{}' as group '{}'", config_.reports_topic,
                        group_id(config_));
}

void ReportsSource::stop() {
  running_ = false;
  if (thread_.joinable()) thread_.join();
  if (consumer_) {
    rd_kafka_consumer_close(consumer_.get());
    consumer_.reset();
  }
  if (producer_) {
    rd_kafka_flush(producer_.get(), 2000);
    producer_.reset();
  }
}

void ReportsSource::run() {
  name_this_thread("vigil-reports");
  std::vector<kafka::Message> batch;
  while (running_.load()) {
    batch.clear();
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_.get(), 100);
    while (m != nullptr) {
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR || unreadable_record(m)) {
        batch.emplace_back(m);
      } else {  // not a record: a fetch error names the offset fetched again
        uint64_t suppressed = 0;
        if (error_log_.allow(suppressed)) {
          logger("kafka")->warn("fraud reports: {} ({} more not logged)",
                                rd_kafka_message_errstr(m), suppressed);
        }
        rd_kafka_message_destroy(m);
      }
      if (batch.size() >= kMaxBatch) break;
      m = rd_kafka_consumer_poll(consumer_.get(), 0);
    }
    if (!batch.empty() && !handle(batch)) break;
  }
}

bool ReportsSource::handle(std::vector<kafka::Message>& batch) {
  std::vector<features::TerminalReport> reports;
  std::vector<DeadLetter> rejected;
  for (const kafka::Message& m : batch) {
    consumed_.inc();
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      uint64_t suppressed = 0;
      if (error_log_.allow(suppressed)) {
        logger("kafka")->warn(
            "fraud reports partition {} offset {}: {}; dead-lettered ({} more not logged)",
            m->partition, m->offset, rd_kafka_message_errstr(m.get()), suppressed);
      }
      count_rejected("consume_error");
      rejected.push_back({m.get(), "consume_error", rd_kafka_message_errstr(m.get())});
      continue;
    }
    rd_kafka_timestamp_type_t type;
    const int64_t ts = rd_kafka_message_timestamp(m.get(), &type);
    const std::string_view json(static_cast<const char*>(m->payload), m->len);
    codec::DecodeStatus st =
        decoder_.decode(json, type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? INT64_MIN : ts, report_);
    if (!st.ok()) {
      count_rejected(codec::to_string(st.code));
      rejected.push_back({m.get(), codec::to_string(st.code), std::move(st.message)});
      continue;
    }
    if (!report_.is_fraud) {
      cleared_.inc();
      continue;
    }
    confirmed_.inc();
    reports.push_back({report_.transaction_id, report_.terminal_id,
                       features::utc_day(report_.event_time_ms),
                       features::utc_day(report_.reported_at_ms)});
  }
  auto backoff = std::chrono::milliseconds(50);
  while (!reports.empty()) {
    auto applied = state_.report(reports);
    if (applied) break;
    logger("redis")->warn("fraud reports not applied ({}); retrying", applied.error());
    for (auto waited = std::chrono::milliseconds(0); waited < backoff;
         waited += std::chrono::milliseconds(50)) {
      if (!running_.load()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
  if (!rejected.empty() && !dead_letter(rejected)) return false;
  // Commit the offset after each partition's last record of the batch.
  std::map<int32_t, int64_t> next;
  for (const kafka::Message& m : batch)
    next[m->partition] = std::max(next[m->partition], m->offset + 1);
  kafka::PartitionList offsets(rd_kafka_topic_partition_list_new(static_cast<int>(next.size())));
  for (const auto& [p, o] : next) {
    rd_kafka_topic_partition_list_add(offsets.get(), config_.reports_topic.c_str(), p)->offset = o;
  }
  const rd_kafka_resp_err_t err = rd_kafka_commit(consumer_.get(), offsets.get(), 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // Applied already: consumed again after a rebalance, they change nothing.
    uint64_t suppressed = 0;
    if (error_log_.allow(suppressed)) {
      logger("kafka")->warn("fraud report offsets not committed: {} ({} more not logged)",
                            rd_kafka_err2str(err), suppressed);
    }
  }
  return true;
}

void ReportsSource::count_rejected(const std::string& reason) {
  auto [it, added] = rejected_.try_emplace(reason, nullptr);
  if (added) {
    it->second = &registry_.counter("vigil_reports_rejected_total",
                                    "Fraud reports sent to the dead-letter topic, by reason",
                                    {{"reason", reason}});
  }
  it->second->inc();
}

bool ReportsSource::dead_letter(std::vector<DeadLetter>& rejected) {
  for (;;) {
    size_t sent = 0;
    for (DeadLetter& d : rejected) {
      if (d.delivered) continue;
      const rd_kafka_message_t* m = d.record;
      rd_kafka_headers_t* h = rd_kafka_headers_new(5);
      auto add = [&](const char* name, const std::string& value) {
        rd_kafka_header_add(h, name, -1, value.data(), static_cast<ssize_t>(value.size()));
      };
      add("vigil.error", d.reason);
      add("vigil.error_message", d.message);
      add("vigil.source_topic", config_.reports_topic);
      add("vigil.source_partition", std::to_string(m->partition));
      add("vigil.source_offset", std::to_string(m->offset));
      const rd_kafka_resp_err_t err = rd_kafka_producev(
          producer_.get(), RD_KAFKA_V_TOPIC(config_.dlq_topic.c_str()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(m->key, m->key_len),
          RD_KAFKA_V_VALUE(m->payload, (m->payload != nullptr ? m->len : 0)), RD_KAFKA_V_HEADERS(h),
          RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(h);
      } else {
        ++sent;
      }
    }
    // Delivery reports are served here, on this thread.
    while (rd_kafka_outq_len(producer_.get()) > 0) {
      rd_kafka_flush(producer_.get(), 100);
      if (!running_.load()) return false;
    }
    const auto left = static_cast<size_t>(std::count_if(
        rejected.begin(), rejected.end(), [](const DeadLetter& d) { return !d.delivered; }));
    if (left == 0) return true;
    logger("kafka")->warn("{} fraud report(s) not dead-lettered ({} sent this try); retrying", left,
                          sent);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (!running_.load()) return false;
  }
}

}  // namespace vigil::consumers

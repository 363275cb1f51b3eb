#include "event_producer.h"

#include "console.h"
#include "stop_signal.h"

namespace vigil::loadgen {

Result<std::unique_ptr<EventProducer>> EventProducer::create(const std::string& bootstrap,
                                                             const std::string& topic,
                                                             const Properties& overrides,
                                                             Deadline deadline) {
  using R = Result<std::unique_ptr<EventProducer>>;
  std::unique_ptr<EventProducer> p(new EventProducer());
  const Properties defaults = {
      {"bootstrap.servers", bootstrap},
      {"client.id", "vigil-loadgen"},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"compression.type", "lz4"},
      {"linger.ms", "5"},
      // Room for about a second of events at high rates; beyond it send() waits (QUEUE_FULL).
      {"queue.buffering.max.messages", "500000"},
  };
  auto rk = new_kafka_client(RD_KAFKA_PRODUCER, defaults, overrides, &on_delivery, p.get());
  if (!rk) return R::Error("producer: " + rk.error());
  p->rk_ = std::move(rk.value());
  auto partitions = wait_for_topic(p->rk_.get(), topic, deadline);
  if (!partitions) return R::Error("producer: " + partitions.error());
  p->partitions_ = partitions.value();
  p->topic_ = rd_kafka_topic_new(p->rk_.get(), topic.c_str(), nullptr);
  if (p->topic_ == nullptr) return R::Error("producer: cannot create a handle for " + topic);
  return p;
}

EventProducer::~EventProducer() {
  if (topic_ != nullptr) rd_kafka_topic_destroy(topic_);
}

bool EventProducer::send(const std::string& key, const std::string& value) {
  while (true) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_.get(), RD_KAFKA_V_RKT(topic_), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key.data(), key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++counts_.enqueued;
      return true;
    }
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      if (!refused_reported_) Console::message(std::string("produce: ") + rd_kafka_err2str(err));
      refused_reported_ = true;
      return false;
    }
    // The brokers are behind: serve delivery reports (which frees queue room) and retry.
    rd_kafka_poll(rk_.get(), 1);
    if (stop_requested()) return false;
  }
}

void EventProducer::poll(std::chrono::milliseconds timeout) {
  rd_kafka_poll(rk_.get(), static_cast<int>(timeout.count()));
}

bool EventProducer::flush(std::chrono::milliseconds timeout) {
  rd_kafka_flush(rk_.get(), static_cast<int>(timeout.count()));
  if (counts_.in_flight() == 0) return true;
  rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(rk_.get(), 0);  // the purged messages' delivery reports count them as failed
  return false;
}

void EventProducer::on_delivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* msg, void* opaque) {
  auto* self = static_cast<EventProducer*>(opaque);
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++self->counts_.acked;
    return;
  }
  ++self->counts_.failed;
  if (self->first_error_.empty()) {
    self->first_error_ = rd_kafka_err2str(msg->err);
    Console::message("delivery failed: " + self->first_error_);
  }
}

}  // namespace vigil::loadgen

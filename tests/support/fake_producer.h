// A scripted producer behind the delivery stage's seam (sinks::Producer): it records what the
// stage produces and lets a test deliver, refuse, time out or purge each message, raise a fatal
// error, and watch the stage replace it. Reports run on the calling thread, as librdkafka's run
// on the producer's poller. Also test messages the consumer would hand over (make_message).
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "scoring/request.h"
#include "sinks/producer.h"
#include "support/wait.h"

namespace vigil::testing {

// A consumed message as the consumer hands it on (key, value, partition, offset), owned by the
// handle: what the delivery stage dead-letters from.
inline void destroy_test_message(rd_kafka_message_s* m) {
  delete[] static_cast<char*>(m->key);
  delete[] static_cast<char*>(m->payload);
  delete m;
}

inline scoring::SourceRecord make_source(int32_t partition, int64_t offset,
                                         const std::string& value, const std::string& key = "k",
                                         uint64_t generation = 1) {
  auto* m = new rd_kafka_message_t;
  std::memset(m, 0, sizeof *m);
  m->partition = partition;
  m->offset = offset;
  m->key = new char[key.size()];
  std::memcpy(m->key, key.data(), key.size());
  m->key_len = key.size();
  m->payload = new char[value.size()];
  std::memcpy(m->payload, value.data(), value.size());
  m->len = value.size();
  scoring::RecordPosition position;
  position.partition = partition;
  position.offset = offset;
  position.generation = generation;
  return scoring::SourceRecord(position, scoring::RecordHandle(m, &destroy_test_message));
}

class FakeProducer final : public sinks::Producer {
 public:
  enum class Topic { kScores, kScoresBestEffort, kShadow, kDeadLetter };
  struct Message {
    Topic topic;
    std::string key;
    std::string value;
    std::vector<std::pair<std::string, std::string>> headers;
    void* opaque = nullptr;
    bool reported = false;
    size_t output = 0;  // produce_scores' output topic (a route's)
    // produce_scores' payloads are not copied: where the caller keeps it, checked unchanged when
    // the message is reported (the contract of Producer::produce_scores).
    const char* payload = nullptr;
    std::string header(const std::string& name) const {
      for (const auto& [k, v] : headers) {
        if (k == name) return v;
      }
      return {};
    }
  };

  explicit FakeProducer(sinks::DeliveryListener& listener) : listener_(listener) {}

  // sinks::Producer
  void start() override {}
  Status wait_for_brokers(std::chrono::milliseconds, const std::function<bool()>&) override {
    return Status::Ok();
  }
  void produce_scores(size_t output, rd_kafka_message_t* messages, size_t n) override {
    add(Topic::kScores, messages, n, output, /*borrowed=*/true);
  }
  void produce_best_effort(BestEffort topic, rd_kafka_message_t* messages, size_t n) override {
    add(topic == BestEffort::kShadow ? Topic::kShadow : Topic::kScoresBestEffort, messages, n);
  }
  void produce_dead_letter(std::string_view key, std::string_view value,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           void* opaque) override {
    std::lock_guard<std::mutex> lock(mutex_);
    messages_.push_back(
        {Topic::kDeadLetter, std::string(key), std::string(value), headers, opaque, false});
  }
  bool fatal() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return fatal_;
  }
  // As librdkafka's replacement: the old producer's undelivered messages are reported with
  // `retry` (not refused: produce them again), on this thread.
  Status replace_producer() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fatal_ = false;
      ++replaced_;
    }
    report_all_unreported(RD_KAFKA_RESP_ERR__PURGE_INFLIGHT, /*retry=*/true);
    return Status::Ok();
  }
  bool flush(std::chrono::milliseconds) override { return in_flight() == 0; }
  void stop(std::chrono::milliseconds) override {
    report_all_unreported(RD_KAFKA_RESP_ERR__PURGE_QUEUE, /*retry=*/false);
  }
  size_t in_flight() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t n = 0;
    for (const auto& m : messages_) n += m.reported || m.topic == Topic::kShadow ? 0 : 1;
    return n;
  }

  // Test side.
  std::vector<Message> produced() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return messages_;
  }
  size_t count(Topic topic) const {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t n = 0;
    for (const auto& m : messages_) n += m.topic == topic ? 1 : 0;
    return n;
  }
  // Waits until `n` messages were produced to `topic` (the stage's retry thread produces some).
  bool wait_for(Topic topic, size_t n,
                std::chrono::milliseconds deadline = std::chrono::milliseconds(5000)) const {
    return wait_until([&] { return count(topic) >= n; }, deadline);
  }
  // Reports message `i` (in production order) with `err`, as the poller would.
  void report(size_t i, rd_kafka_resp_err_t err, bool retry = false) {
    void* opaque = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      Message& m = messages_.at(i);
      if (m.reported) throw std::logic_error("message reported twice");
      check_borrowed(m);
      m.reported = true;
      opaque = m.opaque;
    }
    listener_.on_delivery(opaque, err, retry);
  }
  void set_fatal() {
    std::lock_guard<std::mutex> lock(mutex_);
    fatal_ = true;
  }
  int replaced() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return replaced_;
  }

 private:
  void add(Topic topic, rd_kafka_message_t* messages, size_t n, size_t output = 0,
           bool borrowed = false) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < n; ++i) {
      const rd_kafka_message_t& m = messages[i];
      messages_.push_back({topic,
                           std::string(static_cast<const char*>(m.key), m.key_len),
                           std::string(static_cast<const char*>(m.payload), m.len),
                           {},
                           m._private,
                           false,
                           output,
                           borrowed ? static_cast<const char*>(m.payload) : nullptr});
    }
  }
  // A borrowed payload changed before its report: the caller reused its bytes too early.
  static void check_borrowed(const Message& m) {
    if (m.payload != nullptr && std::memcmp(m.payload, m.value.data(), m.value.size()) != 0) {
      throw std::logic_error("payload of " + m.key + " changed before its delivery report");
    }
  }
  void report_all_unreported(rd_kafka_resp_err_t err, bool retry) {
    std::vector<void*> opaques;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& m : messages_) {
        if (m.reported) continue;
        check_borrowed(m);
        m.reported = true;
        opaques.push_back(m.opaque);
      }
    }
    for (void* o : opaques) listener_.on_delivery(o, err, retry);
  }

  sinks::DeliveryListener& listener_;
  mutable std::mutex mutex_;
  std::vector<Message> messages_;
  bool fatal_ = false;
  int replaced_ = 0;
};

}  // namespace vigil::testing

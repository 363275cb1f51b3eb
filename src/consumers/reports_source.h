// ReportsSource: consumes the fraud reports topic (kafka.reports_topic) into the shared
// terminal state (features/terminal_state.h), for terminal risk features.
//
// Its own consumer group, <kafka.group_id>.reports: the reports topic's partitions spread over
// the instances as the transactions' do, but a member joining or leaving it does not stop
// every transaction partition for an eager rebalance of the scoring group.
//
// One thread (owned here) polls a batch of reports, decodes each (codec/fraud_report.h),
// applies the confirmed frauds to the shared state (retried until Redis answers; a report
// counts once per transaction, so a batch applied twice changes nothing), sends each bad
// report to the dead-letter topic with its reason (vigil.error, vigil.error_message and the
// source headers, as for transactions), waits until Kafka has them (resending only those it
// refused), and only then commits the batch's offsets. A record the client could not read (a
// corrupt message or batch, which it skips) is dead-lettered as "consume_error", as the
// transactions' consumer does, so the commit that passes it leaves a trace. A report with
// "is_fraud": false confirms nothing and is counted only.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "codec/fraud_report.h"
#include "common/metrics.h"
#include "common/rate_limit.h"
#include "common/status.h"
#include "features/terminal_state.h"
#include "kafka/kafka_client.h"
#include "kafka/kafka_config.h"

namespace vigil::consumers {

class ReportsSource {
 public:
  // `state` and `registry` must outlive the source.
  static Result<std::unique_ptr<ReportsSource>> create(const kafka::KafkaConfig& config,
                                                       const std::string& bootstrap,
                                                       features::TerminalState& state,
                                                       metrics::Registry& registry);
  ~ReportsSource();
  ReportsSource(const ReportsSource&) = delete;
  ReportsSource& operator=(const ReportsSource&) = delete;

  void start();
  // Finishes the batch in hand (its offsets are committed once applied), closes the consumer
  // (leaving the group) and joins the thread. Idempotent; the destructor calls it.
  void stop();

  static std::string group_id(const kafka::KafkaConfig& config) {
    return config.group_id + ".reports";
  }

 private:
  ReportsSource(const kafka::KafkaConfig& config, features::TerminalState& state,
                metrics::Registry& registry);
  void run();
  // Applies one polled batch; false when stopping interrupted it (nothing committed).
  bool handle(std::vector<kafka::Message>& batch);
  // A record bound for the dead-letter topic, with its reason; `delivered` is set by its
  // delivery report (served on this thread, inside the flush).
  struct DeadLetter {
    const rd_kafka_message_t* record;
    std::string reason;
    std::string message;
    bool delivered = false;
  };
  // Sends the bad reports of a batch to the dead-letter topic and waits until Kafka has them
  // all, resending only those it refused; false when stopping interrupted it.
  bool dead_letter(std::vector<DeadLetter>& rejected);
  void count_rejected(const std::string& reason);

  const kafka::KafkaConfig config_;
  features::TerminalState& state_;
  codec::FraudReportDecoder decoder_;
  codec::FraudReport report_;
  kafka::Handle consumer_;
  kafka::Handle producer_;
  metrics::Registry& registry_;
  metrics::Counter& consumed_;
  metrics::Counter& confirmed_;
  metrics::Counter& cleared_;
  std::map<std::string, metrics::Counter*> rejected_;  // by reason
  RateLimit error_log_{std::chrono::seconds(10)};      // per-message and per-batch warnings
  std::atomic<bool> running_{false};
  std::thread thread_;
};

}  // namespace vigil::consumers

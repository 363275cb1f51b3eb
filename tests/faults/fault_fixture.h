// Shared pieces of the process-level fault tests (label `faults`): vigil run as a separate
// process with its HTTP side-port, a paced producer of transactions, a reader of whole
// topics, and the end-of-test tally by transaction id.
//
// Every test ends the same way: stop every vigil gracefully, read the `scores` and DLQ topics
// to their end, and count — by transaction id — inputs, scored, missing, duplicates and DLQ
// records, printed as one `[ faults ] ...` line (docs/reliability.md quotes them). When
// $VIGIL_FAULTS_SUMMARY names a file, the line is appended to it too.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"
#include "kafka/kafka_client.h"
#include "support/kafka_test_util.h"
#include "support/process.h"

namespace vigil::faults {

using std::chrono::milliseconds;
using Records = std::vector<std::pair<std::string, std::string>>;  // key, value

// The vigil binary and the fault harness, from the build (set by tests/faults/CMakeLists.txt);
// $VIGIL_FAULTS_VIGIL runs the tests against another vigil binary.
std::string vigil_binary();
std::string harness_binary();

// How the test runs one vigil. Consumer timings are short so that rebalances take seconds.
struct VigilOptions {
  std::string bootstrap;
  std::string redis_url;  // empty: Redis disabled
  std::string model_repository = std::string(VIGIL_SOURCE_DIR) + "/models";
  std::string model_name;  // empty: vigil's default
  std::vector<std::string> extra_flags;
};

// One vigil process and its HTTP side-port (ephemeral port, read from its port file).
class VigilProcess {
 public:
  // Starts vigil (logs in <dir>/<name>.log) and waits until its HTTP port is known.
  static Result<std::unique_ptr<VigilProcess>> Start(const std::string& name,
                                                     const VigilOptions& options,
                                                     const std::string& dir);
  const std::string& name() const { return name_; }
  int port() const { return port_; }
  testing::Process& process() { return *process_; }

  // GET on the side-port: {status, body}; status 0 when the request failed (body says why).
  std::pair<int, std::string> get(const std::string& path,
                                  milliseconds timeout = milliseconds(2000));
  // The value of one series of /metrics, written as Prometheus prints it, e.g.
  // `vigil_kafka_produced_total{kind="score"}`; nullopt when absent or unreachable.
  std::optional<double> metric(const std::string& series);
  double metric_or_zero(const std::string& series) { return metric(series).value_or(0.0); }
  // Scores this process had delivered to Kafka (vigil_kafka_produced_total{kind="score"}).
  double scores_delivered() { return metric_or_zero(kScoresDelivered); }
  bool ready() { return get("/ready").first == 200; }

  // SIGTERM and wait up to `deadline` for the exit; nullopt if it did not exit.
  std::optional<testing::ExitStatus> stop(milliseconds deadline = milliseconds(20000));
  std::string log_tail(size_t bytes = 3000) const { return process_->log_tail(bytes); }

  static constexpr const char* kScoresDelivered = "vigil_kafka_produced_total{kind=\"score\"}";

 private:
  VigilProcess() = default;
  std::string name_;
  std::unique_ptr<testing::Process> process_;
  int port_ = 0;
};

// Transactions tx-<prefix><i> for i in [from, to): row i of the reference data, features as
// an array (the smaller shape: the mock keeps only ~5 MiB per partition).
Records make_events(const testing::ReferenceData& ref, const std::string& prefix, size_t from,
                    size_t to);

// Produces `records` to `topic` from a thread of its own at `per_second`, as live traffic
// does, with an idempotent producer (broker faults must not duplicate inputs). Optionally to
// one fixed partition.
class PacedProducer {
 public:
  PacedProducer(std::string bootstrap, std::string topic, Records records, double per_second,
                int32_t partition = -1);
  ~PacedProducer();  // joins
  PacedProducer(const PacedProducer&) = delete;
  PacedProducer& operator=(const PacedProducer&) = delete;

  // Records handed to the producer so far, and acknowledged by Kafka so far.
  size_t produced() const { return produced_.load(); }
  size_t acknowledged() const { return acked_.load(); }
  // Waits for every record to be acknowledged (error on a delivery failure or the deadline).
  Status wait_done(milliseconds deadline);

 private:
  void run();

  const std::string bootstrap_, topic_;
  const Records records_;
  const double per_second_;
  const int32_t partition_;
  std::atomic<size_t> produced_{0}, acked_{0}, failed_{0};
  std::atomic<bool> stop_{false};
  std::string first_error_;  // written by the delivery callback before failed_ is bumped
  std::thread thread_;
};

// Every record currently on `topic`: reads each partition from its low to its high watermark.
Result<std::vector<testing::TestRecord>> read_all(const std::string& bootstrap,
                                                  const std::string& topic,
                                                  milliseconds deadline = milliseconds(60000));

// Keeps a consumer on every partition of `topic` and collects what arrives, so that a test
// can wait for a condition on the records without re-reading the topic each time.
class TopicWatcher {
 public:
  TopicWatcher(const std::string& bootstrap, const std::string& topic);
  ~TopicWatcher();
  TopicWatcher(const TopicWatcher&) = delete;
  TopicWatcher& operator=(const TopicWatcher&) = delete;
  // Polls until `done(distinct keys seen)` holds or the deadline passes; returns the former.
  bool wait_for_keys(const std::function<bool(size_t)>& done, milliseconds deadline);
  size_t distinct_keys() const { return keys_.size(); }

 private:
  void poll(milliseconds timeout);
  kafka::Handle rk_;
  std::set<std::string> keys_;
};

// The end-of-test count, by transaction id.
struct Tally {
  size_t inputs = 0;
  size_t scored = 0;      // input ids with at least one score
  size_t missing = 0;     // input ids with neither a score nor a dead letter
  size_t duplicates = 0;  // score and DLQ records beyond one per input id
  size_t dlq = 0;         // dead-letter records of input ids
  size_t unknown = 0;     // score or DLQ records whose key is not an input id
  std::string line(const std::string& test) const;
};
Tally count(const Records& inputs, const std::vector<testing::TestRecord>& scores,
            const std::vector<testing::TestRecord>& dlq);
// Prints the tally line (and appends it to $VIGIL_FAULTS_SUMMARY when set).
void report(const std::string& test, const Tally& tally);
// Expects each of the `inputs` transactions scored, none dead-lettered or missing, and no
// record that is not an input. Duplicates are left to the caller: at-least-once allows them.
void expect_every_input_scored(const Tally& tally, size_t inputs);

// A temporary directory for one test's port files and logs, removed at the end unless the
// test failed or $VIGIL_FAULTS_KEEP_LOGS is set (then its path is printed, to read the logs).
class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  std::unique_ptr<VigilProcess> start_vigil(const std::string& name, const VigilOptions& options);
  // Stops every given vigil gracefully and expects exit status 0 from each.
  void stop_all(const std::vector<VigilProcess*>& vigils);
  // Reads `scores` and the DLQ to their end and counts; prints the summary line.
  Tally tally(const std::string& test, const std::string& bootstrap, const Records& inputs,
              const std::string& scores_topic = "scores",
              const std::string& dlq_topic = "transactions.dlq");

  std::string dir_;
  testing::ReferenceData ref_;
};

}  // namespace vigil::faults

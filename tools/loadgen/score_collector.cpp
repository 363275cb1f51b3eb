#include "score_collector.h"

#include <algorithm>

#include "codec/event_decoder.h"
#include "console.h"

namespace vigil::loadgen {

namespace {

constexpr size_t kBatchMax = 1024;
constexpr int kConsumeTimeoutMs = 100;
// Sequence numbers are bounded so that a hostile or corrupt id cannot make seen_ huge.
constexpr uint64_t kMaxSequence = uint64_t{1} << 34;
constexpr uint64_t kConsumeErrorsPrinted = 5;

LatencySummary summarise(const LatencyHistogram& h) {
  LatencySummary s;
  s.count = h.count();
  s.p50_ms = h.percentile(0.50);
  s.p95_ms = h.percentile(0.95);
  s.p99_ms = h.percentile(0.99);
  s.max_ms = h.max_ms();
  return s;
}

}  // namespace

Result<std::unique_ptr<ScoreCollector>> ScoreCollector::create(const std::string& bootstrap,
                                                               const std::string& topic,
                                                               const std::string& id_prefix,
                                                               const Properties& overrides,
                                                               Deadline deadline) {
  using R = Result<std::unique_ptr<ScoreCollector>>;
  const Properties defaults = {
      {"bootstrap.servers", bootstrap},
      {"client.id", "vigil-loadgen-scores"},
      // Needed for the consumer queue; never joined (partitions are assigned, not subscribed)
      // and nothing is committed.
      {"group.id", "vigil-loadgen-" + id_prefix},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "false"},
      // A score should be read as soon as it is written: latency is what is being measured.
      // Real brokers answer a fetch as soon as data arrives; librdkafka's mock cluster (vigil's
      // embedded default) waits the whole fetch.wait.max.ms when a partition is empty, so this
      // bounds the delay the measurement itself adds there.
      {"fetch.wait.max.ms", "5"},
  };
  auto rk = new_kafka_client(RD_KAFKA_CONSUMER, defaults, overrides);
  if (!rk) return R::Error("scores consumer: " + rk.error());
  std::unique_ptr<ScoreCollector> c(new ScoreCollector(std::move(rk.value()), id_prefix));
  rd_kafka_t* h = c->rk_.get();

  auto partitions = wait_for_topic(h, topic, deadline);
  if (!partitions) return R::Error("scores consumer: " + partitions.error());
  auto ends = end_offsets(h, topic, partitions.value(), std::chrono::seconds(10));
  if (!ends) return R::Error("scores consumer: " + ends.error());

  rd_kafka_topic_partition_list_t* assignment = rd_kafka_topic_partition_list_new(*partitions);
  for (int p = 0; p < *partitions; ++p) {
    rd_kafka_topic_partition_list_add(assignment, topic.c_str(), p)->offset = ends.value()[p];
  }
  rd_kafka_resp_err_t err = rd_kafka_assign(h, assignment);
  rd_kafka_topic_partition_list_destroy(assignment);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return R::Error(std::string("scores consumer: assign: ") + rd_kafka_err2str(err));
  }
  return c;
}

ScoreCollector::ScoreCollector(KafkaHandle rk, std::string id_prefix)
    : rk_(std::move(rk)), id_prefix_(std::move(id_prefix) + "-") {
  rd_kafka_poll_set_consumer(rk_.get());  // errors and logs arrive with the messages
  queue_ = rd_kafka_queue_get_consumer(rk_.get());
}

ScoreCollector::~ScoreCollector() {
  stop();
  if (queue_ != nullptr) rd_kafka_queue_destroy(queue_);
  if (!closed_) rd_kafka_consumer_close(rk_.get());
}

void ScoreCollector::start() {
  VIGIL_CHECK(!thread_.joinable());
  thread_ = std::thread([this] { run(); });
}

void ScoreCollector::stop() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

void ScoreCollector::run() {
  std::vector<rd_kafka_message_t*> messages(kBatchMax);
  std::vector<Parsed> batch;
  while (!stopping_.load()) {
    // Block for the first message only, then take what else has arrived: the batch call
    // waits until its array is full, which would add up to its timeout to every latency.
    messages[0] = rd_kafka_consume_queue(queue_, kConsumeTimeoutMs);
    if (messages[0] == nullptr) continue;
    ssize_t more =
        rd_kafka_consume_batch_queue(queue_, 0, messages.data() + 1, messages.size() - 1);
    const ssize_t n = 1 + std::max<ssize_t>(more, 0);
    const int64_t received_ms = wall_clock_ms();
    batch.clear();
    uint64_t foreign = 0, malformed = 0;
    for (ssize_t i = 0; i < n; ++i) {
      const rd_kafka_message_t& msg = *messages[i];
      if (msg.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        report_consume_error(msg);
      } else {
        Parsed parsed;
        switch (parse(msg, parsed)) {
          case Kind::kOurs:
            batch.push_back(std::move(parsed));
            break;
          case Kind::kForeign:
            ++foreign;
            break;
          case Kind::kMalformed:
            ++malformed;
            break;
        }
      }
      rd_kafka_message_destroy(messages[i]);
    }
    record(batch, foreign, malformed, received_ms);
  }
  rd_kafka_consumer_close(rk_.get());
  closed_ = true;
}

ScoreCollector::Kind ScoreCollector::parse(const rd_kafka_message_t& msg, Parsed& out) {
  std::string_view payload(static_cast<const char*>(msg.payload), msg.len);
  simdjson::ondemand::document doc;
  if (parser_.iterate(codec::pad_into(payload, padded_)).get(doc)) return Kind::kMalformed;
  // Fields are looked up in the order vigil writes them, which keeps on-demand parsing to a
  // single pass; any order is still accepted.
  std::string_view id;
  if (doc["transaction_id"].get_string().get(id)) return Kind::kMalformed;
  if (id.substr(0, id_prefix_.size()) != id_prefix_) return Kind::kForeign;
  if (!parse_sequence(id, out.sequence)) return Kind::kMalformed;
  bool is_fraud = false;
  if (doc["is_fraud"].get_bool().get(is_fraud)) return Kind::kMalformed;
  out.is_fraud = is_fraud;
  int64_t event_time_ms = -1;
  if (!doc["event_time_ms"].get_int64().get(event_time_ms)) out.event_time_ms = event_time_ms;
  if (samples_.size() < kSamplesKept) out.json.assign(payload);  // size() read by its writer
  return Kind::kOurs;
}

bool ScoreCollector::parse_sequence(std::string_view id, uint64_t& sequence) const {
  std::string_view digits = id.substr(id_prefix_.size());
  if (digits.empty() || digits.size() > 12 || (digits.size() > 1 && digits[0] == '0')) {
    return false;
  }
  uint64_t value = 0;
  for (char ch : digits) {
    if (ch < '0' || ch > '9') return false;
    value = value * 10 + static_cast<uint64_t>(ch - '0');
  }
  if (value >= kMaxSequence) return false;
  sequence = value;
  return true;
}

void ScoreCollector::record(const std::vector<Parsed>& batch, uint64_t foreign, uint64_t malformed,
                            int64_t received_ms) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  stats_.foreign += foreign;
  stats_.malformed += malformed;
  for (const Parsed& p : batch) {
    if (p.sequence >= seen_.size())
      seen_.resize(std::max<size_t>(p.sequence + 1, seen_.size() * 2));
    uint8_t& times = seen_[p.sequence];
    if (times > 0) {
      ++stats_.duplicates;
      if (times < UINT8_MAX) ++times;
      continue;
    }
    times = 1;
    ++stats_.scored;
    stats_.last_scored_at = now;
    if (p.is_fraud) ++stats_.fraud;
    if (p.event_time_ms >= 0) {
      window_.record(received_ms - p.event_time_ms);
      overall_.record(received_ms - p.event_time_ms);
    } else {
      ++stats_.without_event_time;
    }
    if (samples_.size() < kSamplesKept && !p.json.empty()) {
      samples_.push_back({id_prefix_ + std::to_string(p.sequence), p.json});
    }
  }
}

void ScoreCollector::report_consume_error(const rd_kafka_message_t& msg) {
  if (++consume_errors_ > kConsumeErrorsPrinted) return;
  Console::message(std::string("reading scores: ") + rd_kafka_message_errstr(&msg) +
                   (consume_errors_ == kConsumeErrorsPrinted ? " (further errors not shown)" : ""));
}

CollectorStats ScoreCollector::snapshot(bool close_window) {
  std::lock_guard<std::mutex> lock(mu_);
  CollectorStats s = stats_;
  s.window = summarise(window_);
  s.overall = summarise(overall_);
  if (close_window) window_.reset();
  return s;
}

uint64_t ScoreCollector::scored() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_.scored;
}

std::vector<ScoreSample> ScoreCollector::samples() const {
  std::lock_guard<std::mutex> lock(mu_);
  return samples_;
}

std::vector<uint64_t> ScoreCollector::missing(uint64_t sent, size_t max) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> out;
  for (uint64_t seq = 0; seq < sent && out.size() < max; ++seq) {
    if (seq >= seen_.size() || seen_[seq] == 0) out.push_back(seq);
  }
  return out;
}

}  // namespace vigil::loadgen

#include "kafka_handles.h"

#include <atomic>
#include <cstring>
#include <fstream>
#include <thread>

#include "console.h"
#include "stop_signal.h"

namespace vigil::loadgen {

namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(100);

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (in) std::getline(in, line);
  return trim(line);
}

// librdkafka's errors are rarely fatal (it reconnects by itself) but can repeat many times a
// second while a broker is down: print at most one a second.
void on_error(rd_kafka_t* rk, int err, const char* reason, void* /*opaque*/) {
  static std::atomic<int64_t> last_ms{0};
  const int64_t now = wall_clock_ms();
  int64_t last = last_ms.load();
  const bool fatal = err == RD_KAFKA_RESP_ERR__FATAL;
  if (!fatal && (now - last < 1000 || !last_ms.compare_exchange_strong(last, now))) return;
  Console::message(std::string("kafka ") + rd_kafka_name(rk) + ": " +
                   rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)) + ": " + reason);
}

void on_log(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
  // Warnings and worse only; connection failures ("FAIL") are already reported by on_error.
  if (level > 4 || std::strcmp(facility, "FAIL") == 0) return;
  Console::message(std::string("kafka ") + rd_kafka_name(rk) + " " + facility + ": " + message);
}

}  // namespace

int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::string> wait_for_bootstrap_file(const std::string& path, Deadline deadline) {
  std::string previous;
  while (true) {
    std::string current = read_first_line(path);
    if (!current.empty() && current == previous) return current;
    previous = current;
    if (std::chrono::steady_clock::now() >= deadline) {
      return Result<std::string>::Error(
          "bootstrap file '" + path + "' " +
          (current.empty() ? "is missing or empty" : "keeps changing") + " (waited --wait-s)");
    }
    if (stop_requested()) return Result<std::string>::Error("interrupted");
    std::this_thread::sleep_for(current.empty() ? kPollInterval : kPollInterval / 2);
  }
}

Result<KafkaHandle> new_kafka_client(rd_kafka_type_t type, const Properties& defaults,
                                     const Properties& overrides, DeliveryCallback on_delivery,
                                     void* opaque) {
  std::vector<std::pair<std::string, std::string>> properties(defaults.begin(), defaults.end());
  properties.insert(properties.end(), overrides.begin(), overrides.end());  // later wins
  auto conf = kafka::make_conf(properties);
  if (!conf) return Result<KafkaHandle>::Error(conf.error());
  rd_kafka_conf_set_error_cb(conf->get(), on_error);
  rd_kafka_conf_set_log_cb(conf->get(), on_log);
  if (on_delivery != nullptr) rd_kafka_conf_set_dr_msg_cb(conf->get(), on_delivery);
  rd_kafka_conf_set_opaque(conf->get(), opaque);
  return kafka::make_client(type, std::move(conf.value()));
}

Result<int> wait_for_topic(rd_kafka_t* rk, const std::string& topic, Deadline deadline) {
  using R = Result<int>;
  std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> rkt(
      rd_kafka_topic_new(rk, topic.c_str(), nullptr), rd_kafka_topic_destroy);
  if (!rkt) return R::Error("cannot create a handle for topic '" + topic + "'");
  std::string last_error = "no answer";
  while (true) {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt.get(), &md, 1000);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::unique_ptr<const rd_kafka_metadata_t, decltype(&rd_kafka_metadata_destroy)> holder(
          md, rd_kafka_metadata_destroy);
      if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
          md->topics[0].partition_cnt > 0) {
        return md->topics[0].partition_cnt;
      }
      last_error = md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "not in metadata";
    } else {
      last_error = rd_kafka_err2str(err);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return R::Error("topic '" + topic + "' is not available: " + last_error +
                      " (waited --wait-s)");
    }
    if (stop_requested()) return R::Error("interrupted");
    std::this_thread::sleep_for(kPollInterval);
  }
}

Result<std::vector<int64_t>> end_offsets(rd_kafka_t* rk, const std::string& topic, int partitions,
                                         std::chrono::milliseconds timeout) {
  std::vector<int64_t> ends;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0, high = 0;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &low, &high,
                                                               static_cast<int>(timeout.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Result<std::vector<int64_t>>::Error("end offset of " + topic + "[" +
                                                 std::to_string(p) + "]: " + rd_kafka_err2str(err));
    }
    ends.push_back(high);
  }
  return ends;
}

}  // namespace vigil::loadgen

#include "support/kafka_test_util.h"

#include <librdkafka/rdkafka.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <utility>

namespace vigil::testing {

namespace {
[[noreturn]] void die(const std::string& who, const std::string& cause) {
  std::fprintf(stderr, "%s: %s\n", who.c_str(), cause.c_str());
  std::abort();
}
}  // namespace

kafka::Conf test_conf(const std::string& bootstrap, const KafkaProperties& extra,
                      const std::string& who) {
  KafkaProperties props = {{"bootstrap.servers", bootstrap}, {"log_level", "3"}};
  props.insert(props.end(), extra.begin(), extra.end());
  auto conf = kafka::make_conf(props);
  if (!conf) die(who, conf.error());
  return std::move(conf).value();
}

kafka::Handle test_client(rd_kafka_type_t type, kafka::Conf conf, const std::string& who) {
  auto rk = kafka::make_client(type, std::move(conf));
  if (!rk) die(who, rk.error());
  return std::move(rk).value();
}

kafka::Handle test_client(rd_kafka_type_t type, const std::string& bootstrap,
                          const KafkaProperties& extra, const std::string& who) {
  return test_client(type, test_conf(bootstrap, extra, who), who);
}

int partition_count_or_zero(rd_kafka_t* rk, const std::string& topic) {
  auto n = kafka::partition_count(rk, topic, 5000);
  return n.ok() ? *n : 0;
}

void assign_all(rd_kafka_t* rk, const std::string& topic, int partitions, int64_t offset) {
  kafka::PartitionList list(rd_kafka_topic_partition_list_new(partitions));
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = offset;
  }
  rd_kafka_assign(rk, list.get());
}

TestRecord to_record(const rd_kafka_message_t* m) {
  TestRecord r;
  if (m->key) r.key.assign(static_cast<const char*>(m->key), m->key_len);
  if (m->payload) r.value.assign(static_cast<const char*>(m->payload), m->len);
  r.partition = m->partition;
  r.offset = m->offset;
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name;
    const void* val;
    size_t size;
    for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &val, &size); ++i) {
      r.headers[name] = std::string(static_cast<const char*>(val), size);
    }
  }
  return r;
}

rd_kafka_resp_err_t produce_copy(rd_kafka_t* rk, const std::string& topic, const void* key,
                                 size_t key_len, const void* value, size_t value_len, int poll_ms,
                                 int32_t partition) {
  for (;;) {
    // librdkafka only reads the value (RD_KAFKA_MSG_F_COPY); its signature is not const.
    const auto err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(const_cast<void*>(value), value_len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) return err;
    rd_kafka_poll(rk, poll_ms);
  }
}

Status produce_all(const std::string& bootstrap, const std::string& topic,
                   const std::vector<std::pair<std::string, std::string>>& records) {
  kafka::Handle rk = test_client(RD_KAFKA_PRODUCER, bootstrap,
                                 {{"linger.ms", "5"}, {"acks", "all"}}, "test kafka client");
  for (const auto& [k, v] : records) {
    auto err = produce_copy(rk.get(), topic, k.data(), k.size(), v.data(), v.size(), 10);
    if (err) return Status::Error(rd_kafka_err2str(err));
  }
  auto err = rd_kafka_flush(rk.get(), 30000);
  if (err || rd_kafka_outq_len(rk.get())) {
    return Status::Error("produce_all: records left unacknowledged");
  }
  return Status::Ok();
}

std::vector<TestRecord> read_topic(const std::string& bootstrap, const std::string& topic,
                                   const std::function<bool(const std::vector<TestRecord>&)>& done,
                                   std::chrono::milliseconds deadline) {
  kafka::Handle rk = test_client(
      RD_KAFKA_CONSUMER, bootstrap,
      {{"group.id", "vigil-test-reader"}, {"enable.auto.commit", "false"}}, "test kafka client");
  assign_all(rk.get(), topic, partition_count_or_zero(rk.get(), topic));
  std::vector<TestRecord> out;
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!done(out) && std::chrono::steady_clock::now() < end) {
    kafka::Message m(rd_kafka_consumer_poll(rk.get(), 100));
    if (m && !m->err) out.push_back(to_record(m.get()));
  }
  rd_kafka_consumer_close(rk.get());
  return out;
}

int64_t committed_sum(const std::string& bootstrap, const std::string& group,
                      const std::string& topic, int partitions) {
  // It never subscribes, so never joins; the session timeout is the in-process services' own
  // (support/service_config.h) all the same, since the mock applies the newest one it sees.
  kafka::Handle rk =
      test_client(RD_KAFKA_CONSUMER, bootstrap,
                  {{"group.id", group}, {"session.timeout.ms", "6000"}}, "committed_sum");
  kafka::PartitionList list(rd_kafka_topic_partition_list_new(partitions));
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
  if (rd_kafka_committed(rk.get(), list.get(), 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
  int64_t sum = 0;
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
    sum += std::max<int64_t>(list->elems[i].offset, 0);
  }
  return sum;
}

Status commit_offsets(const std::string& bootstrap, const std::string& group,
                      const std::string& topic, const std::vector<int64_t>& offsets) {
  kafka::Handle rk =
      test_client(RD_KAFKA_CONSUMER, bootstrap,
                  {{"group.id", group}, {"session.timeout.ms", "6000"}}, "commit_offsets");
  kafka::PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (size_t p = 0; p < offsets.size(); ++p) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), static_cast<int32_t>(p))->offset =
        offsets[p];
  }
  const rd_kafka_resp_err_t err = rd_kafka_commit(rk.get(), list.get(), /*async=*/0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Error(rd_kafka_err2str(err));
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::Error(rd_kafka_err2str(list->elems[i].err));
    }
  }
  return Status::Ok();
}

std::vector<int64_t> log_ends(const std::string& bootstrap, const std::string& topic,
                              int partitions) {
  kafka::Handle rk =
      test_client(RD_KAFKA_CONSUMER, bootstrap, {{"group.id", "vigil-test-log-ends"}}, "log_ends");
  std::vector<int64_t> ends;
  for (int p = 0; p < partitions; ++p) {
    int64_t lo = -1, hi = -1;
    const bool ok = rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &lo, &hi, 5000) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR;
    ends.push_back(ok ? hi : -1);
  }
  return ends;
}

std::vector<TestRecord> read_distinct_keys(const std::string& bootstrap, const std::string& topic,
                                           size_t count, std::chrono::milliseconds deadline) {
  std::set<std::string> keys;
  size_t seen = 0;
  return read_topic(
      bootstrap, topic,
      [&](const std::vector<TestRecord>& rs) {
        for (; seen < rs.size(); ++seen) keys.insert(rs[seen].key);
        return keys.size() >= count;
      },
      deadline);
}

ReferenceData load_reference(const std::string& file) {
  simdjson::dom::parser parser;
  auto doc = parser.load(std::string(VIGIL_SOURCE_DIR) + "/" + file);
  ReferenceData ref;
  for (auto n : doc["feature_names"].get_array()) {
    ref.feature_names.emplace_back(std::string_view(n.get_string().value()));
  }
  for (auto row : doc["rows"].get_array()) {
    std::vector<double> r;
    for (auto v : row.get_array()) r.push_back(v.get_double());
    ref.rows.push_back(std::move(r));
  }
  for (auto s : doc["scores"].get_array()) ref.scores.push_back(s.get_double());
  return ref;
}

std::string reference_event(const ReferenceData& ref, size_t row, const std::string& id,
                            bool as_object) {
  std::string f;
  char buf[64];
  const auto& values = ref.rows[row % ref.rows.size()];
  for (size_t i = 0; i < values.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%.17g", values[i]);
    if (i) f += ",";
    if (as_object) f += "\"" + ref.feature_names[i] + "\":";
    f += buf;
  }
  return "{\"transaction_id\":\"" + id + "\",\"features\":" + (as_object ? "{" : "[") + f +
         (as_object ? "}" : "]") + "}";
}

double json_number(const std::string& json, const std::string& field) {
  const std::string needle = "\"" + field + "\":";
  auto pos = json.find(needle);
  if (pos == std::string::npos) return std::nan("");
  return std::strtod(json.c_str() + pos + needle.size(), nullptr);
}

std::string json_string(const std::string& json, const std::string& field) {
  const std::string needle = "\"" + field + "\":\"";
  auto pos = json.find(needle);
  if (pos == std::string::npos) return "";
  auto start = pos + needle.size();
  return json.substr(start, json.find('"', start) - start);
}

}  // namespace vigil::testing

#include "support/kafka_test_util.h"

#include <librdkafka/rdkafka.h>
#include <simdjson.h>

#include <cmath>
#include <cstdio>
#include <set>

namespace vigil::testing {

namespace {
rd_kafka_t* client(rd_kafka_type_t type, const std::string& bootstrap,
                   const std::vector<std::pair<std::string, std::string>>& extra = {}) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  for (const auto& [k, v] : extra) rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) {
    std::fprintf(stderr, "test kafka client: %s\n", err);
    std::abort();
  }
  return rk;
}
}  // namespace

Status produce_all(const std::string& bootstrap, const std::string& topic,
                   const std::vector<std::pair<std::string, std::string>>& records) {
  rd_kafka_t* rk = client(RD_KAFKA_PRODUCER, bootstrap, {{"linger.ms", "5"}, {"acks", "all"}});
  for (const auto& [k, v] : records) {
    while (true) {
      auto err =
          rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(k.data(), k.size()),
                            RD_KAFKA_V_VALUE(const_cast<char*>(v.data()), v.size()),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk, 10);
        continue;
      }
      if (err) {
        rd_kafka_destroy(rk);
        return Status::Error(rd_kafka_err2str(err));
      }
      break;
    }
  }
  auto err = rd_kafka_flush(rk, 30000);
  const int left = rd_kafka_outq_len(rk);
  rd_kafka_destroy(rk);
  if (err || left) return Status::Error("produce_all: records left unacknowledged");
  return Status::Ok();
}

std::vector<TestRecord> read_topic(const std::string& bootstrap, const std::string& topic,
                                   const std::function<bool(const std::vector<TestRecord>&)>& done,
                                   std::chrono::milliseconds deadline) {
  rd_kafka_t* rk = client(RD_KAFKA_CONSUMER, bootstrap,
                          {{"group.id", "vigil-test-reader"}, {"enable.auto.commit", "false"}});
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  rd_kafka_metadata(rk, 0, rkt, &md, 5000);
  rd_kafka_topic_destroy(rkt);
  int partitions = (md && md->topic_cnt == 1) ? md->topics[0].partition_cnt : 0;
  if (md) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  std::vector<TestRecord> out;
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!done(out) && std::chrono::steady_clock::now() < end) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (!m) continue;
    if (!m->err) {
      TestRecord r;
      if (m->key) r.key.assign(static_cast<const char*>(m->key), m->key_len);
      if (m->payload) r.value.assign(static_cast<const char*>(m->payload), m->len);
      r.partition = m->partition;
      r.offset = m->offset;
      rd_kafka_headers_t* hdrs = nullptr;
      if (!rd_kafka_message_headers(m, &hdrs)) {
        const char* name;
        const void* val;
        size_t size;
        for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &val, &size); ++i) {
          r.headers[name] = std::string(static_cast<const char*>(val), size);
        }
      }
      out.push_back(std::move(r));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return out;
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

ReferenceData load_reference() {
  simdjson::dom::parser parser;
  auto doc = parser.load(std::string(VIGIL_SOURCE_DIR) + "/tests/data/fraud_mlp_v1_reference.json");
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

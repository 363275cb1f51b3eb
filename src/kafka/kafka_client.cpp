#include "kafka/kafka_client.h"

namespace vigil::kafka {

Result<Conf> make_conf(const std::vector<std::pair<std::string, std::string>>& properties) {
  Conf conf(rd_kafka_conf_new());
  std::string errors;
  char err[512];
  for (const auto& [k, v] : properties) {
    if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      errors += (errors.empty() ? "" : "\n") + std::string("kafka property ") + k + ": " + err;
    }
  }
  if (!errors.empty()) return Result<Conf>::Error(errors);
  return conf;
}

Result<Handle> make_client(rd_kafka_type_t type, Conf conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof err);
  if (!rk) return Result<Handle>::Error(std::string("cannot create Kafka client: ") + err);
  (void)conf.release();  // owned by rk now
  return Handle(rk);
}

Status fetch_metadata(rd_kafka_t* rk, const std::vector<std::string>& topics, int timeout_ms) {
  for (const auto& t : topics) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, t.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::Error("metadata for topic '" + t + "': " + rd_kafka_err2str(err));
    }
    rd_kafka_metadata_destroy(md);
  }
  return Status::Ok();
}

Result<int> partition_count(rd_kafka_t* rk, const std::string& topic, int timeout_ms) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
  rd_kafka_topic_destroy(rkt);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Result<int>::Error("metadata for topic '" + topic + "': " + rd_kafka_err2str(err));
  }
  int n = -1;
  if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    n = md->topics[0].partition_cnt;
  }
  rd_kafka_metadata_destroy(md);
  if (n < 0) return Result<int>::Error("topic '" + topic + "' does not exist");
  return n;
}

}  // namespace vigil::kafka

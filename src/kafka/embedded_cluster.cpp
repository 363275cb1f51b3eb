#include "kafka/embedded_cluster.h"

#include <librdkafka/rdkafka_mock.h>

namespace vigil::kafka {

EmbeddedCluster::EmbeddedCluster(Handle handle, rd_kafka_mock_cluster_s* mock)
    : handle_(std::move(handle)), mock_(mock), bootstrap_(rd_kafka_mock_cluster_bootstraps(mock)) {}

EmbeddedCluster::~EmbeddedCluster() {
  if (mock_) rd_kafka_mock_cluster_destroy(mock_);
}

Result<std::unique_ptr<EmbeddedCluster>> EmbeddedCluster::start(
    int brokers, const std::vector<TopicSpec>& topics) {
  using R = Result<std::unique_ptr<EmbeddedCluster>>;
  // A dedicated, otherwise idle handle owns the mock cluster's thread.
  auto conf = make_conf({{"log_level", "3"}});
  if (!conf) return R::Error(conf.error());
  auto handle = make_client(RD_KAFKA_PRODUCER, std::move(conf.value()));
  if (!handle) return R::Error(handle.error());
  rd_kafka_mock_cluster_t* mock = rd_kafka_mock_cluster_new(handle->get(), brokers);
  if (!mock) return R::Error("cannot start the embedded Kafka cluster");
  std::unique_ptr<EmbeddedCluster> cluster(new EmbeddedCluster(std::move(handle.value()), mock));
  for (const auto& t : topics) {
    Status st = cluster->create_topic(t);
    if (!st.ok()) return R::Error(st.message());
  }
  return R(std::move(cluster));
}

Status EmbeddedCluster::create_topic(const TopicSpec& topic) {
  rd_kafka_resp_err_t err =
      rd_kafka_mock_topic_create(mock_, topic.name.c_str(), topic.partitions, 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Status::Error("embedded Kafka: cannot create topic '" + topic.name +
                         "': " + rd_kafka_err2str(err));
  }
  return Status::Ok();
}

Status EmbeddedCluster::set_broker_down(int broker_id, bool down) {
  rd_kafka_resp_err_t err = down ? rd_kafka_mock_broker_set_down(mock_, broker_id)
                                 : rd_kafka_mock_broker_set_up(mock_, broker_id);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Error(rd_kafka_err2str(err));
  return Status::Ok();
}

}  // namespace vigil::kafka

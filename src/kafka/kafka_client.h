// Small RAII and configuration helpers over the librdkafka C API, shared by the consumer
// (src/consumers), the producer (src/sinks) and the embedded cluster.
#pragma once

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace vigil::kafka {

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using Handle = std::unique_ptr<rd_kafka_t, HandleDeleter>;

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using Conf = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
using Message = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

// Builds a configuration from `properties` (applied in order; later wins). Every property
// librdkafka refuses is reported, all at once.
Result<Conf> make_conf(const std::vector<std::pair<std::string, std::string>>& properties);

// Creates a client; on failure the error names the cause.
Result<Handle> make_client(rd_kafka_type_t type, Conf conf);

// Asks the brokers for `topics`' metadata, so the producer knows their leaders before the
// first message (librdkafka < 2.10.1 can otherwise hold it up to 1 s, upstream #5032).
Status fetch_metadata(rd_kafka_t* rk, const std::vector<std::string>& topics, int timeout_ms);

// Number of partitions of `topic`, or an error.
Result<int> partition_count(rd_kafka_t* rk, const std::string& topic, int timeout_ms);

}  // namespace vigil::kafka

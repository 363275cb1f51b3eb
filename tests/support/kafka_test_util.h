// Helpers for integration tests: produce records and read topics back over TCP against the
// embedded (mock) cluster, with plain librdkafka clients independent of vigil's; and the
// Python reference rows and scores every parity test compares against.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "kafka/kafka_client.h"

namespace vigil::testing {

using KafkaProperties = std::vector<std::pair<std::string, std::string>>;

struct TestRecord {
  std::string key;
  std::string value;
  int32_t partition = -1;
  int64_t offset = -1;
  std::map<std::string, std::string> headers;
};

// Plain librdkafka clients for tests, fault tests and benchmarks, built on kafka::make_conf and
// kafka::make_client but with none of vigil's settings. Properties: bootstrap.servers,
// log_level=3 (errors only), then `extra` (later wins). When librdkafka refuses a property or
// the client, they print "<who>: <cause>" to stderr and abort: a client that cannot be built
// is a broken test, not a result.
kafka::Conf test_conf(const std::string& bootstrap, const KafkaProperties& extra,
                      const std::string& who);
// For a client that needs callbacks or an opaque: set them on test_conf()'s result first.
kafka::Handle test_client(rd_kafka_type_t type, kafka::Conf conf, const std::string& who);
kafka::Handle test_client(rd_kafka_type_t type, const std::string& bootstrap,
                          const KafkaProperties& extra, const std::string& who);

// Partitions of `topic` (metadata, 5 s at most); 0 when the topic or the metadata is missing.
int partition_count_or_zero(rd_kafka_t* rk, const std::string& topic);

// Assigns partitions 0..partitions-1 of `topic` to the consumer `rk`, each from `offset`.
void assign_all(rd_kafka_t* rk, const std::string& topic, int partitions,
                int64_t offset = RD_KAFKA_OFFSET_BEGINNING);

// A consumed message as a record: key, value, partition, offset and headers (copied).
TestRecord to_record(const rd_kafka_message_t* m);

// Produces one record (copied) to `topic`, to `partition` or wherever the partitioner puts
// it; while librdkafka's queue is full, serves `rk`'s callbacks for `poll_ms` and retries.
// Returns rd_kafka_producev's error otherwise. No allocation beyond librdkafka's own copy.
rd_kafka_resp_err_t produce_copy(rd_kafka_t* rk, const std::string& topic, const void* key,
                                 size_t key_len, const void* value, size_t value_len, int poll_ms,
                                 int32_t partition = RD_KAFKA_PARTITION_UA);

// Produces every record (key, value) to `topic` and waits until all are acknowledged.
Status produce_all(const std::string& bootstrap, const std::string& topic,
                   const std::vector<std::pair<std::string, std::string>>& records);

// Reads `topic` from the beginning of every partition until `done(records)` returns true or
// `deadline` passes; returns what was read either way.
std::vector<TestRecord> read_topic(const std::string& bootstrap, const std::string& topic,
                                   const std::function<bool(const std::vector<TestRecord>&)>& done,
                                   std::chrono::milliseconds deadline);

// Reads `topic` until it holds `count` records with distinct keys (or the deadline).
std::vector<TestRecord> read_distinct_keys(const std::string& bootstrap, const std::string& topic,
                                           size_t count, std::chrono::milliseconds deadline);

// The sum of `group`'s committed offsets on partitions 0..partitions-1 of `topic` (none
// committed counts 0), read by a client that does not join the group; -1 when it cannot be
// read.
int64_t committed_sum(const std::string& bootstrap, const std::string& group,
                      const std::string& topic, int partitions);

// Commits `offsets[p]` for `group` on partition p of `topic`, from a client that does not join
// the group (so the group must have no members); and each partition's log end (high
// watermark), -1 where it cannot be read.
Status commit_offsets(const std::string& bootstrap, const std::string& group,
                      const std::string& topic, const std::vector<int64_t>& offsets);
std::vector<int64_t> log_ends(const std::string& bootstrap, const std::string& topic,
                              int partitions);

// The reference rows and Python scores of tests/data/fraud_mlp_v1_reference.json.
struct ReferenceData {
  std::vector<std::string> feature_names;
  std::vector<std::vector<double>> rows;
  std::vector<double> scores;
};
// `file` is relative to the source tree.
ReferenceData load_reference(const std::string& file = "tests/data/fraud_mlp_v1_reference.json");

// A transaction event for row `row` of the reference: features as an object or an array.
std::string reference_event(const ReferenceData& ref, size_t row, const std::string& id,
                            bool as_object);

// Extracts a number field from a flat JSON object ("score": 0.12 -> 0.12), NaN when absent.
double json_number(const std::string& json, const std::string& field);
std::string json_string(const std::string& json, const std::string& field);

}  // namespace vigil::testing

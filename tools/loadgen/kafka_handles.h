// librdkafka plumbing shared by the producer and the score collector: owning handles, client
// creation from property maps, and the waits for the cluster address and the topics.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "kafka/kafka_client.h"

namespace vigil::loadgen {

using KafkaHandle = kafka::Handle;

using Deadline = std::chrono::steady_clock::time_point;
using Properties = std::map<std::string, std::string>;

// Reads the bootstrap servers from `path` (first line, trimmed), waiting until `deadline` for
// the file to exist and hold the same non-empty text twice in a row (so a half-written file is
// not read). Polls every 100 ms; gives up early on Ctrl-C.
Result<std::string> wait_for_bootstrap_file(const std::string& path, Deadline deadline);

using DeliveryCallback = void (*)(rd_kafka_t*, const rd_kafka_message_t*, void* opaque);

// Creates a producer or consumer from `defaults` overlaid with `overrides` (the user's
// passthrough properties win). Routes librdkafka's logs and errors to the Console; a producer
// gets `on_delivery` as its delivery-report callback, called with `opaque`. Every property
// librdkafka rejects is listed in the error.
Result<KafkaHandle> new_kafka_client(rd_kafka_type_t type, const Properties& defaults,
                                     const Properties& overrides,
                                     DeliveryCallback on_delivery = nullptr,
                                     void* opaque = nullptr);

// The partition count of `topic`, waiting until `deadline` for the topic to exist (vigil may
// still be creating it). Fetching the metadata up front also spares the first produced message
// librdkafka's up-to-1-s hold on an unknown topic (librdkafka issue #5032).
Result<int> wait_for_topic(rd_kafka_t* rk, const std::string& topic, Deadline deadline);

// The high watermark (next offset to be written) of every partition of `topic`, in partition
// order.
Result<std::vector<int64_t>> end_offsets(rd_kafka_t* rk, const std::string& topic, int partitions,
                                         std::chrono::milliseconds timeout);

// Milliseconds since the Unix epoch (the clock event_time_ms and scored_at_ms are read on).
int64_t wall_clock_ms();

}  // namespace vigil::loadgen

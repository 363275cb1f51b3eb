// The fault commands of vigil-fault-harness: one line of text in, one action on the mock
// cluster, one line of answer out ("ok" or "error <why>").
//
//   down <broker>|all                    disconnect the broker(s) and refuse new connections
//   up <broker>|all                      accept connections again
//   errors <ApiKey> <count> <error>      the next <count> requests of that type fail with
//                                        <error> (rd_kafka_mock_push_request_errors)
//   clear <ApiKey>                       forget errors still pushed for that request type
//   rtt <broker>|all <ms>                add round-trip delay to every response (0 = none)
//   help                                 list the commands (answered on one line)
//
// <ApiKey> is a Kafka protocol request name (Produce, Fetch, OffsetCommit, JoinGroup, ...,
// with or without a "Request" suffix, any case) or its number. <error> is a librdkafka error
// name (NOT_LEADER_FOR_PARTITION, _TRANSPORT, ..., with or without the RD_KAFKA_RESP_ERR_
// prefix, any case) or its code. Brokers are numbered from 1.
//
// Not thread-safe: the harness's main thread drives it (the mock cluster's own calls are).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

struct rd_kafka_mock_cluster_s;

namespace vigil::tools {

// Kafka protocol request name or number -> ApiKey; nullopt when unknown.
std::optional<int16_t> parse_api_key(const std::string& text);
// librdkafka error name or code -> rd_kafka_resp_err_t value; nullopt when unknown.
std::optional<int> parse_error_code(const std::string& text);

class FaultCommands {
 public:
  // `mock` must outlive this object; `brokers` is how many it has (ids 1..brokers).
  FaultCommands(rd_kafka_mock_cluster_s* mock, int brokers) : mock_(mock), brokers_(brokers) {}

  // Runs one command line; returns the answer line ("ok", "error ..." or the help text).
  std::string execute(const std::string& line);

 private:
  std::string set_down(const std::string& which, bool down);
  std::string push_errors(const std::string& api, const std::string& count,
                          const std::string& error);
  std::string set_rtt(const std::string& which, const std::string& ms);
  // "all" -> every broker; a number in 1..brokers_ -> that one; nullopt otherwise.
  std::optional<std::pair<int, int>> broker_range(const std::string& which) const;

  rd_kafka_mock_cluster_s* mock_;
  int brokers_;
};

}  // namespace vigil::tools

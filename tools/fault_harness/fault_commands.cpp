#include "fault_commands.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <sstream>
#include <vector>

namespace vigil::tools {

namespace {

// Kafka protocol ApiKeys by number (librdkafka keeps its table in a private header).
// clang-format off
constexpr std::array<const char*, 48> kApiNames = {
    "Produce", "Fetch", "ListOffsets",                                                  // 0..2
    "Metadata", "LeaderAndIsr", "StopReplica",                                          // 3..5
    "UpdateMetadata", "ControlledShutdown", "OffsetCommit",                             // 6..8
    "OffsetFetch", "FindCoordinator", "JoinGroup",                                      // 9..11
    "Heartbeat", "LeaveGroup", "SyncGroup",                                             // 12..14
    "DescribeGroups", "ListGroups", "SaslHandshake",                                    // 15..17
    "ApiVersions", "CreateTopics", "DeleteTopics",                                      // 18..20
    "DeleteRecords", "InitProducerId", "OffsetForLeaderEpoch",                          // 21..23
    "AddPartitionsToTxn", "AddOffsetsToTxn", "EndTxn",                                  // 24..26
    "WriteTxnMarkers", "TxnOffsetCommit", "DescribeAcls",                               // 27..29
    "CreateAcls", "DeleteAcls", "DescribeConfigs",                                      // 30..32
    "AlterConfigs", "AlterReplicaLogDirs", "DescribeLogDirs",                           // 33..35
    "SaslAuthenticate", "CreatePartitions", "CreateDelegationToken",                    // 36..38
    "RenewDelegationToken", "ExpireDelegationToken", "DescribeDelegationToken",         // 39..41
    "DeleteGroups", "ElectLeaders", "IncrementalAlterConfigs",                          // 42..44
    "AlterPartitionReassignments", "ListPartitionReassignments", "OffsetDelete",        // 45..47
};
// clang-format on

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// A whole-string base-10 integer within [lo, hi].
std::optional<long> parse_int(const std::string& text, long lo, long hi) {
  if (text.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) return std::nullopt;
  return v;
}

const char* kHelp =
    "ok commands: down <broker>|all; up <broker>|all; errors <ApiKey> <count> <error>; "
    "clear <ApiKey>; rtt <broker>|all <ms>; help; quit";

}  // namespace

std::optional<int16_t> parse_api_key(const std::string& text) {
  if (auto n = parse_int(text, 0, SHRT_MAX)) return static_cast<int16_t>(*n);
  std::string name = lower(text);
  if (name.size() > 7 && name.compare(name.size() - 7, 7, "request") == 0) {
    name.resize(name.size() - 7);
  }
  for (size_t i = 0; i < kApiNames.size(); ++i) {
    if (lower(kApiNames[i]) == name) return static_cast<int16_t>(i);
  }
  return std::nullopt;
}

std::optional<int> parse_error_code(const std::string& text) {
  const struct rd_kafka_err_desc* descs = nullptr;
  size_t count = 0;
  rd_kafka_get_err_descs(&descs, &count);
  if (auto n = parse_int(text, INT_MIN, INT_MAX)) {
    for (size_t i = 0; i < count; ++i) {
      if (descs[i].name && descs[i].code == *n) return static_cast<int>(*n);
    }
    return std::nullopt;
  }
  std::string name = lower(text);
  const std::string prefix = "rd_kafka_resp_err_";
  if (name.compare(0, prefix.size(), prefix) == 0) name.erase(0, prefix.size());
  for (size_t i = 0; i < count; ++i) {
    if (descs[i].name && lower(descs[i].name) == name) return static_cast<int>(descs[i].code);
  }
  return std::nullopt;
}

std::string FaultCommands::execute(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  if (words.empty()) return "error empty command";
  const std::string& cmd = words[0];
  auto arity = [&](size_t n) { return words.size() == n + 1; };
  if (cmd == "help") return kHelp;
  if ((cmd == "down" || cmd == "up") && arity(1)) return set_down(words[1], cmd == "down");
  if (cmd == "errors" && arity(3)) return push_errors(words[1], words[2], words[3]);
  if (cmd == "rtt" && arity(2)) return set_rtt(words[1], words[2]);
  if (cmd == "clear" && arity(1)) {
    auto api = parse_api_key(words[1]);
    if (!api) return "error unknown ApiKey '" + words[1] + "'";
    rd_kafka_mock_clear_request_errors(mock_, *api);
    return "ok";
  }
  if (cmd == "down" || cmd == "up" || cmd == "errors" || cmd == "rtt" || cmd == "clear") {
    return "error wrong number of arguments for '" + cmd + "' (try: help)";
  }
  return "error unknown command '" + cmd + "' (try: help)";
}

std::optional<std::pair<int, int>> FaultCommands::broker_range(const std::string& which) const {
  if (which == "all") return std::make_pair(1, brokers_);
  if (auto id = parse_int(which, 1, brokers_)) {
    return std::make_pair(static_cast<int>(*id), static_cast<int>(*id));
  }
  return std::nullopt;
}

std::string FaultCommands::set_down(const std::string& which, bool down) {
  auto range = broker_range(which);
  if (!range) {
    return "error broker must be 'all' or 1.." + std::to_string(brokers_) + ", got '" + which + "'";
  }
  for (int id = range->first; id <= range->second; ++id) {
    rd_kafka_resp_err_t err =
        down ? rd_kafka_mock_broker_set_down(mock_, id) : rd_kafka_mock_broker_set_up(mock_, id);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return "error broker " + std::to_string(id) + ": " + rd_kafka_err2str(err);
    }
  }
  return "ok";
}

std::string FaultCommands::push_errors(const std::string& api, const std::string& count,
                                       const std::string& error) {
  auto key = parse_api_key(api);
  if (!key) return "error unknown ApiKey '" + api + "'";
  auto n = parse_int(count, 1, 1000000);
  if (!n) return "error count must be 1..1000000, got '" + count + "'";
  auto code = parse_error_code(error);
  if (!code) return "error unknown error '" + error + "'";
  std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(*n),
                                          static_cast<rd_kafka_resp_err_t>(*code));
  rd_kafka_mock_push_request_errors_array(mock_, *key, errors.size(), errors.data());
  return "ok";
}

std::string FaultCommands::set_rtt(const std::string& which, const std::string& ms) {
  auto range = broker_range(which);
  if (!range) {
    return "error broker must be 'all' or 1.." + std::to_string(brokers_) + ", got '" + which + "'";
  }
  auto rtt = parse_int(ms, 0, 3600 * 1000);
  if (!rtt) return "error rtt must be 0..3600000 ms, got '" + ms + "'";
  for (int id = range->first; id <= range->second; ++id) {
    rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_rtt(mock_, id, static_cast<int>(*rtt));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return "error broker " + std::to_string(id) + ": " + rd_kafka_err2str(err);
    }
  }
  return "ok";
}

}  // namespace vigil::tools

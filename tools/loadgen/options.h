// Command-line options of vigil-loadgen. Every flag is `--name value` (or `--name=value`),
// parsed with CLI11; options.cpp declares each flag with its one-line description, which feeds
// --help.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace vigil::loadgen {

// How an event carries its features (both shapes are accepted by vigil's decoder).
enum class EventShape {
  kObject,  // "features": {"Time": .., "V1": .., ...}
  kArray,   // "features": [.., .., ...] in model order
};

struct LoadgenOptions {
  std::string bootstrap;       // host:port,... of the Kafka cluster
  std::string bootstrap_file;  // file holding the address (vigil's embedded cluster writes it)
  double wait_s = 30;          // wait for the bootstrap file and the topics
  std::string topic = "transactions";
  std::string scores_topic = "scores";
  std::string csv = "models/fraud_mlp/sample/transactions.csv";
  std::string repository = "models";
  std::string model = "fraud_mlp";
  double rate_per_s = 1000;  // offered events/s; 0 = as fast as the producer takes them
  uint64_t count = 10000;    // events to send; 0 = no limit (stop on --duration-s or Ctrl-C)
  double duration_s = 0;     // stop producing after this long; 0 = no limit
  double timeout_s = 60;     // after producing, wait this long at most for the last scores
  std::string redis_url = "redis://127.0.0.1:6379";  // empty skips the Redis check
  std::string redis_key_prefix = "vigil:score:";
  std::string id_prefix;  // transaction ids are <id_prefix>-<sequence>
  EventShape shape = EventShape::kObject;
  // Passed to librdkafka as they are (--kafka.producer.<property>=..., --kafka.consumer....).
  std::map<std::string, std::string> producer_properties;
  std::map<std::string, std::string> consumer_properties;
  bool help = false;
};

// Parses argv (without the program name), fills in derived defaults (the id prefix, an
// unlimited count when only --duration-s is given) and validates. Every problem is listed in
// the error, one per line.
Result<LoadgenOptions> parse_options(const std::vector<std::string>& args);

// The --help text.
std::string usage();

}  // namespace vigil::loadgen

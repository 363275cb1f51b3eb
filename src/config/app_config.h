// The whole service's configuration: one struct per component, gathered here, loaded from
// (in increasing precedence) built-in defaults, a YAML file, VIGIL_* environment variables
// and --key=value flags. Every key is described once in app_config.cpp's option table, which
// also feeds --help and the README's key list.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "consumers/kafka_config.h"
#include "http/http_config.h"
#include "scoring/scoring_config.h"
#include "sinks/redis_config.h"

namespace vigil::config {

struct AppConfig {
  scoring::ModelConfig model;
  scoring::ScoringConfig scoring;
  consumers::KafkaConfig kafka;
  sinks::RedisConfig redis;
  http::HttpConfig http;
  std::chrono::milliseconds shutdown_grace{10000};  // bound on graceful shutdown
  std::string log_level = "info";                   // trace|debug|info|warn|error
  std::string mode = "serve";                       // serve | demo (score a sample, print)
  std::string demo_input;                           // CSV for mode=demo; empty = model sample
  size_t demo_rows = 1000;                          // rows scored by mode=demo

  // Every validation error of every component, in key order.
  std::vector<std::string> validate() const;
};

struct OptionDoc {
  std::string key;
  std::string default_value;
  std::string description;
};

// What the command line asked for besides configuration keys.
struct CommandLine {
  std::string config_file;  // --config PATH
  bool help = false;
  bool version = false;
  bool print_config = false;
};

// Loads the configuration. `env` is the process environment (injected for tests). On any
// error returns every problem found, one per line, and the caller refuses to start.
Result<AppConfig> load_config(const std::vector<std::string>& args,
                              const std::map<std::string, std::string>& env, CommandLine& cmd);

// The documentation of every key, in the order of the option table.
std::vector<OptionDoc> option_docs();

// key = value lines of the effective configuration, secrets redacted.
std::vector<std::string> describe(const AppConfig& config);

// Environment of this process as a map.
std::map<std::string, std::string> process_environment();

}  // namespace vigil::config

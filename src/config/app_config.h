// The whole service's configuration: one struct per component, gathered here, loaded from
// (in increasing precedence) built-in defaults, a YAML file, VIGIL_* environment variables
// and --key=value flags. Every key is declared once, next to its field, by its component's
// fields() (common/config_fields.h); --help, config/vigil.yaml and the README's table are
// generated from those declarations (tests/config fails when the files drift).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "features/features_config.h"
#include "http/http_config.h"
#include "kafka/kafka_config.h"
#include "recommend/recommend_config.h"
#include "scoring/scoring_config.h"
#include "sinks/redis_config.h"

namespace vigil::config {

struct AppConfig {
  scoring::ModelConfig model;
  scoring::ExplainConfig explain;
  scoring::ScoringConfig scoring;
  features::FeaturesConfig features;
  kafka::KafkaConfig kafka;
  sinks::RedisConfig redis;
  http::HttpConfig http;
  recommend::RecommendConfig recommend;
  std::chrono::milliseconds shutdown_grace{10000};
  std::string log_level = "info";
  std::string mode = "serve";
  std::string demo_input;
  size_t demo_rows = 1000;

  // Every validation error of every component, in key order.
  std::vector<std::string> validate() const;

  template <typename V>
  void fields(V& v) {
    v.section("model", model);
    v.section("explain", explain);
    v.section("scoring", scoring);
    v.section("features", features);
    v.section("kafka", kafka);
    v.section("redis", redis);
    v.section("http", http);
    v.section("recommend", recommend);
    v("shutdown_grace_ms", shutdown_grace, "ms",
      "bound on graceful shutdown (drain, flush, commit)");
    v("log.level", log_level, "", "trace, debug, info, warn or error");
    v("mode", mode, "", "serve (the service) or demo (score a sample through the batcher)");
    v("demo.input", demo_input, "", "CSV scored by mode=demo (empty = the model's sample)");
    v("demo.rows", demo_rows, "rows", "rows scored by mode=demo");
  }
};

struct OptionDoc {
  std::string key;
  std::string default_value;
  std::string unit;
  std::string description;
};

// What the command line asked for besides configuration keys.
struct CommandLine {
  std::string config_file;  // --config PATH
  bool help = false;
  bool version = false;
  bool print_config = false;
  bool print_default_config = false;  // the generated config/vigil.yaml
  bool print_config_table = false;    // the generated README table
};

// Loads the configuration. `env` is the process environment (injected for tests). On any
// error returns every problem found, one per line, and the caller refuses to start.
Result<AppConfig> load_config(const std::vector<std::string>& args,
                              const std::map<std::string, std::string>& env, CommandLine& cmd);

// The documentation of every key, in the order of the option table.
std::vector<OptionDoc> option_docs();

// config/vigil.yaml as generated from the fields' declarations: every key at its default,
// its description above it.
std::string default_config_yaml();
// The README's table of keys (markdown), generated the same way.
std::string config_table_markdown();

// key = value lines of the effective configuration, secrets redacted.
std::vector<std::string> describe(const AppConfig& config);

// Environment of this process as a map.
std::map<std::string, std::string> process_environment();

}  // namespace vigil::config

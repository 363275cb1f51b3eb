#include "options.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <string_view>

namespace vigil::loadgen {

namespace {

constexpr std::string_view kProducerPrefix = "--kafka.producer.";
constexpr std::string_view kConsumerPrefix = "--kafka.consumer.";

constexpr const char* kDescription =
    "vigil-loadgen: replays transactions into vigil's input topic at a chosen rate, reads\n"
    "the scores back from the scores topic (and a few from Redis) and reports throughput,\n"
    "end-to-end latency and anything missing. Exactly one of --bootstrap and --bootstrap-file\n"
    "is required; every flag is --name value or --name=value.\n";

constexpr const char* kFooter =
    "Pass-through:\n"
    "  --kafka.producer.PROP=VALUE       librdkafka producer property\n"
    "  --kafka.consumer.PROP=VALUE       librdkafka consumer property\n\n"
    "Events are {\"transaction_id\": \"<prefix>-<n>\", \"features\": ..., \"event_time_ms\": "
    "<now>},\nkeyed by transaction id. End-to-end latency is the time the score is read "
    "minus its\nevent_time_ms (wall clock, millisecond resolution).\n\n"
    "exit status: 0 when every sent event was scored before --timeout-s, 1 when some were\n"
    "not, 2 on bad flags or when Kafka, the CSV or the model could not be set up.";

// Rates and durations: a finite number >= 0. (CLI::NonNegativeNumber lets "nan" through: it
// compares false both ways.)
CLI::Validator non_negative_number() {
  return CLI::Validator(
      [](std::string& v) {
        char* end = nullptr;
        const double d = std::strtod(v.c_str(), &end);
        if (!v.empty() && *end == '\0' && std::isfinite(d) && d >= 0) return std::string();
        return "'" + v + "' is not a number >= 0";
      },
      "");
}

// Digits only: CLI11 reads unsigned integers with strtoull, which takes "-1" for 2^64 - 1.
CLI::Validator whole_number() {
  return CLI::Validator(
      [](std::string& v) {
        if (!v.empty() && v.size() <= 18 && v.find_first_not_of("0123456789") == std::string::npos)
          return std::string();
        return "'" + v + "' is not a whole number";
      },
      "");
}

// Declares every flag on `app`, bound to `o` (whose current values are the defaults --help
// shows) and to `shape` (the text of --shape, mapped onto o.shape after parsing).
void add_flags(CLI::App& app, LoadgenOptions& o, std::string& shape) {
  app.footer(kFooter);
  app.option_defaults()->always_capture_default();
  app.get_formatter()->column_width(36);
  app.allow_extras();  // --kafka.producer.* / --kafka.consumer.*: see take_passthrough()
  app.add_option("--bootstrap", o.bootstrap, "Kafka bootstrap servers (host:port,...)")
      ->type_name("HOST:PORT");
  app.add_option("--bootstrap-file", o.bootstrap_file,
                 "read the bootstrap servers from this file (vigil's\n"
                 "kafka.embedded.bootstrap_file), waiting up to --wait-s\n"
                 "for it to appear")
      ->type_name("PATH");
  app.add_option("--wait-s", o.wait_s, "how long to wait for the bootstrap file and for the topics")
      ->type_name("SECONDS")
      ->check(non_negative_number());
  app.add_option("--topic", o.topic, "input topic the events are produced to")->type_name("NAME");
  app.add_option("--scores-topic", o.scores_topic, "topic the scores are read from")
      ->type_name("NAME");
  app.add_option("--csv", o.csv, "transactions CSV (header Time,V1..V28,Amount,Class), cycled")
      ->type_name("PATH");
  app.add_option("--repository", o.repository, "model repository (for the feature names)")
      ->type_name("DIR");
  app.add_option("--model", o.model, "model whose model.yaml names the features")
      ->type_name("NAME");
  app.add_option("--rate", o.rate_per_s, "offered events per second; 0 = as fast as possible")
      ->type_name("N")
      ->check(non_negative_number());
  app.add_option("--count", o.count,
                 "events to send; 0 = no limit (the default when only\n"
                 "--duration-s is given)")
      ->type_name("N")
      ->check(whole_number());
  app.add_option("--duration-s", o.duration_s, "stop producing after this long; 0 = no limit")
      ->type_name("SECONDS")
      ->check(non_negative_number());
  app.add_option("--timeout-s", o.timeout_s,
                 "after producing, wait at most this long for the last scores")
      ->type_name("SECONDS")
      ->check(non_negative_number());
  app.add_option("--redis-url", o.redis_url,
                 "redis://[[user]:password@]host[:port][/db] to read sample\n"
                 "scores back from; empty skips the Redis check")
      ->type_name("URL");
  app.add_option("--redis-key-prefix", o.redis_key_prefix,
                 "Redis key of a score is PREFIX<transaction_id>")
      ->type_name("PREFIX");
  app.add_option("--id-prefix", o.id_prefix,
                 "transaction ids are PREFIX-<sequence>\n[default: lg-<pid>-<unix time>]")
      ->type_name("PREFIX");
  app.add_option("--shape", shape, "features as a named object or as an array in model order")
      ->type_name("object|array")
      ->check(CLI::IsMember({"object", "array"}).description(""));
}

// Moves the librdkafka pass-through properties out of what CLI11 did not recognise
// (`--kafka.producer.PROP=VALUE` or `--kafka.producer.PROP VALUE`); anything else left over is
// an error.
std::vector<std::string> take_passthrough(const std::vector<std::string>& rest, LoadgenOptions& o) {
  std::vector<std::string> errors;
  for (size_t i = 0; i < rest.size(); ++i) {
    const std::string& arg = rest[i];
    std::map<std::string, std::string>* properties = nullptr;
    if (arg.rfind(kProducerPrefix, 0) == 0) properties = &o.producer_properties;
    if (arg.rfind(kConsumerPrefix, 0) == 0) properties = &o.consumer_properties;
    const size_t eq = arg.find('=');
    const size_t begin = kProducerPrefix.size();  // both prefixes are as long
    const std::string name = properties ? arg.substr(begin, eq - begin) : std::string();
    if (name.empty()) {
      errors.push_back((arg.rfind('-', 0) == 0 ? "unknown flag '" : "unexpected argument '") + arg +
                       "'");
    } else if (eq != std::string::npos) {
      (*properties)[name] = arg.substr(eq + 1);
    } else if (i + 1 < rest.size() && rest[i + 1].rfind("--", 0) != 0) {
      (*properties)[name] = rest[++i];
    } else {
      errors.push_back(arg + " needs a value");
    }
  }
  return errors;
}

std::vector<std::string> validate(const LoadgenOptions& o) {
  std::vector<std::string> errors;
  if (o.bootstrap.empty() == o.bootstrap_file.empty()) {
    errors.push_back("exactly one of --bootstrap and --bootstrap-file is required");
  }
  if (o.topic.empty()) errors.push_back("--topic must not be empty");
  if (o.scores_topic.empty()) errors.push_back("--scores-topic must not be empty");
  if (o.csv.empty()) errors.push_back("--csv must not be empty");
  if (o.timeout_s <= 0) errors.push_back("--timeout-s must be > 0");
  if (o.id_prefix.empty()) errors.push_back("--id-prefix must not be empty");
  return errors;
}

std::string default_id_prefix() {
  auto unix_s = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  return "lg-" + std::to_string(::getpid()) + "-" + std::to_string(unix_s);
}

}  // namespace

Result<LoadgenOptions> parse_options(const std::vector<std::string>& args) {
  LoadgenOptions o;
  std::string shape = "object";
  CLI::App app(kDescription, "vigil-loadgen");
  add_flags(app, o, shape);
  // CLI11 wants the arguments reversed. It also reads `--name=` as `--name` and then takes the
  // next argument as the value, but an empty value means something here (--redis-url= skips
  // the Redis check), so `--name=` goes in as `--name ""`.
  std::vector<std::string> reversed;
  for (auto arg = args.rbegin(); arg != args.rend(); ++arg) {
    if (arg->rfind("--", 0) == 0 && arg->find('=') == arg->size() - 1) {
      reversed.emplace_back();
      reversed.push_back(arg->substr(0, arg->size() - 1));
    } else {
      reversed.push_back(*arg);
    }
  }
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    o.help = true;
    return o;
  } catch (const CLI::ParseError& e) {
    return Result<LoadgenOptions>::Error(e.what());
  }
  std::vector<std::string> errors = take_passthrough(app.remaining(), o);
  o.shape = shape == "array" ? EventShape::kArray : EventShape::kObject;
  if (o.duration_s > 0 && app.count("--count") == 0) o.count = 0;
  if (app.count("--id-prefix") == 0) o.id_prefix = default_id_prefix();
  for (auto& e : validate(o)) errors.push_back(std::move(e));
  if (errors.empty()) return o;
  std::string joined;
  for (const auto& e : errors) joined += (joined.empty() ? "" : "\n") + e;
  return Result<LoadgenOptions>::Error(joined);
}

std::string usage() {
  LoadgenOptions defaults;
  std::string shape = "object";
  CLI::App app(kDescription, "vigil-loadgen");
  add_flags(app, defaults, shape);
  return app.help();
}

}  // namespace vigil::loadgen

#include "options.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string_view>

namespace vigil::loadgen {

namespace {

constexpr std::string_view kProducerPrefix = "kafka.producer.";
constexpr std::string_view kConsumerPrefix = "kafka.consumer.";

// One flag: its name, what it means, how to parse it into the options and how to show the
// default. Parsers return an empty string on success, else what is wrong with the value.
struct Flag {
  const char* name;
  const char* value_name;
  const char* description;
  std::function<std::string(LoadgenOptions&, const std::string&)> parse;
  std::function<std::string(const LoadgenOptions&)> show;
};

Flag string_flag(const char* name, const char* value_name, const char* description,
                 std::string LoadgenOptions::*field) {
  return {name, value_name, description,
          [field](LoadgenOptions& o, const std::string& v) {
            o.*field = v;
            return std::string();
          },
          [field](const LoadgenOptions& o) { return o.*field; }};
}

Flag number_flag(const char* name, const char* value_name, const char* description,
                 double LoadgenOptions::*field) {
  return {name, value_name, description,
          [name, field](LoadgenOptions& o, const std::string& v) {
            char* end = nullptr;
            double d = std::strtod(v.c_str(), &end);
            if (v.empty() || *end != '\0' || !std::isfinite(d) || d < 0) {
              return "--" + std::string(name) + ": '" + v + "' is not a number >= 0";
            }
            o.*field = d;
            return std::string();
          },
          [field](const LoadgenOptions& o) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%g", o.*field);
            return std::string(buf);
          }};
}

Flag count_flag(const char* name, const char* description, uint64_t LoadgenOptions::*field) {
  return {
      name, "N", description,
      [name, field](LoadgenOptions& o, const std::string& v) {
        if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 18) {
          return "--" + std::string(name) + ": '" + v + "' is not a whole number";
        }
        o.*field = std::stoull(v);
        return std::string();
      },
      [field](const LoadgenOptions& o) { return std::to_string(o.*field); }};
}

const std::vector<Flag>& flags() {
  static const std::vector<Flag> kFlags = {
      string_flag("bootstrap", "HOST:PORT", "Kafka bootstrap servers (host:port,...)",
                  &LoadgenOptions::bootstrap),
      string_flag("bootstrap-file", "PATH",
                  "read the bootstrap servers from this file (vigil's kafka.embedded."
                  "bootstrap_file), waiting up to --wait-s for it to appear",
                  &LoadgenOptions::bootstrap_file),
      number_flag("wait-s", "SECONDS", "how long to wait for the bootstrap file and for the topics",
                  &LoadgenOptions::wait_s),
      string_flag("topic", "NAME", "input topic the events are produced to",
                  &LoadgenOptions::topic),
      string_flag("scores-topic", "NAME", "topic the scores are read from",
                  &LoadgenOptions::scores_topic),
      string_flag("csv", "PATH", "transactions CSV (header Time,V1..V28,Amount,Class), cycled",
                  &LoadgenOptions::csv),
      string_flag("repository", "DIR", "model repository (for the feature names)",
                  &LoadgenOptions::repository),
      string_flag("model", "NAME", "model whose model.yaml names the features",
                  &LoadgenOptions::model),
      number_flag("rate", "N", "offered events per second; 0 = as fast as possible",
                  &LoadgenOptions::rate_per_s),
      count_flag("count",
                 "events to send; 0 = no limit (the default when only --duration-s is given)",
                 &LoadgenOptions::count),
      number_flag("duration-s", "SECONDS", "stop producing after this long; 0 = no limit",
                  &LoadgenOptions::duration_s),
      number_flag("timeout-s", "SECONDS",
                  "after producing, wait at most this long for the last scores",
                  &LoadgenOptions::timeout_s),
      string_flag("redis-url", "URL",
                  "redis://[[user]:password@]host[:port][/db] to read sample scores back from; "
                  "empty skips the Redis check",
                  &LoadgenOptions::redis_url),
      string_flag("redis-key-prefix", "PREFIX", "Redis key of a score is PREFIX<transaction_id>",
                  &LoadgenOptions::redis_key_prefix),
      string_flag("id-prefix", "PREFIX",
                  "transaction ids are PREFIX-<sequence> [default: lg-<pid>-<unix time>]",
                  &LoadgenOptions::id_prefix),
      {"shape", "object|array", "features as a named object or as an array in model order",
       [](LoadgenOptions& o, const std::string& v) {
         if (v == "object") {
           o.shape = EventShape::kObject;
         } else if (v == "array") {
           o.shape = EventShape::kArray;
         } else {
           return "--shape: '" + v + "' is neither 'object' nor 'array'";
         }
         return std::string();
       },
       [](const LoadgenOptions& o) {
         return std::string(o.shape == EventShape::kObject ? "object" : "array");
       }},
  };
  return kFlags;
}

const Flag* find_flag(std::string_view name) {
  for (const Flag& f : flags()) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Applies one `name`/`value` pair; returns what is wrong, or an empty string.
std::string apply_flag(LoadgenOptions& o, const std::string& name, const std::string& value) {
  if (starts_with(name, kProducerPrefix) && name.size() > kProducerPrefix.size()) {
    o.producer_properties[name.substr(kProducerPrefix.size())] = value;
    return "";
  }
  if (starts_with(name, kConsumerPrefix) && name.size() > kConsumerPrefix.size()) {
    o.consumer_properties[name.substr(kConsumerPrefix.size())] = value;
    return "";
  }
  const Flag* flag = find_flag(name);
  if (flag == nullptr) return "unknown flag --" + name + " (see --help)";
  return flag->parse(o, value);
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

// "  --name=VALUE   description" with the description wrapped at kHelpWidth columns.
std::string help_entry(const std::string& flag, const std::string& text) {
  constexpr size_t kHelpWidth = 100;
  constexpr size_t kIndent = 31;
  std::string out = "  " + flag;
  out += out.size() < kIndent ? std::string(kIndent - out.size(), ' ')
                              : "\n" + std::string(kIndent, ' ');
  size_t column = kIndent;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = std::min(text.find(' ', begin), text.size());
    const size_t word = end - begin;
    if (column > kIndent && column + 1 + word > kHelpWidth) {
      out += "\n" + std::string(kIndent, ' ');
      column = kIndent;
    } else if (column > kIndent) {
      out += ' ';
      ++column;
    }
    out.append(text, begin, word);
    column += word;
    begin = end + 1;
  }
  std::replace(out.begin(), out.end(), '\x01', ' ');
  return out + "\n";
}

}  // namespace

Result<LoadgenOptions> parse_options(const std::vector<std::string>& args) {
  LoadgenOptions o;
  std::vector<std::string> errors;
  bool count_given = false, prefix_given = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      o.help = true;
      return o;
    }
    if (!starts_with(arg, "--") || arg.size() == 2) {
      errors.push_back("unexpected argument '" + arg + "' (flags are --name=value)");
      continue;
    }
    std::string name, value;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(2, eq - 2);
      value = arg.substr(eq + 1);
    } else if (i + 1 < args.size() && !starts_with(args[i + 1], "--")) {
      name = arg.substr(2);
      value = args[++i];
    } else {
      errors.push_back("--" + arg.substr(2) + " needs a value");
      continue;
    }
    count_given |= name == "count";
    prefix_given |= name == "id-prefix";
    if (std::string e = apply_flag(o, name, value); !e.empty()) errors.push_back(e);
  }
  if (o.duration_s > 0 && !count_given) o.count = 0;
  if (!prefix_given) o.id_prefix = default_id_prefix();
  for (auto& e : validate(o)) errors.push_back(std::move(e));
  if (errors.empty()) return o;
  std::string joined;
  for (const auto& e : errors) joined += (joined.empty() ? "" : "\n") + e;
  return Result<LoadgenOptions>::Error(joined);
}

std::string usage() {
  std::string out =
      "vigil-loadgen: replays transactions into vigil's input topic at a chosen rate, reads\n"
      "the scores back from the scores topic (and a few from Redis) and reports throughput,\n"
      "end-to-end latency and anything missing.\n\n"
      "usage: vigil-loadgen (--bootstrap=HOST:PORT | --bootstrap-file=PATH) [--name=value ...]\n\n"
      "flags:\n";
  const LoadgenOptions defaults;
  for (const Flag& f : flags()) {
    std::string text = f.description;
    // \x01 keeps "[default: X]" on one line; it becomes a space after wrapping.
    if (std::string def = f.show(defaults); !def.empty()) text += " [default:\x01" + def + "]";
    out += help_entry(std::string("--") + f.name + "=" + f.value_name, text);
  }
  out +=
      "  --kafka.producer.PROP=VALUE  librdkafka producer property, passed through\n"
      "  --kafka.consumer.PROP=VALUE  librdkafka consumer property, passed through\n"
      "  --help                       this text\n\n"
      "Events are {\"transaction_id\": \"<prefix>-<n>\", \"features\": ..., \"event_time_ms\": "
      "<now>},\nkeyed by transaction id. End-to-end latency is the time the score is read "
      "minus its\nevent_time_ms (wall clock, millisecond resolution).\n\n"
      "exit status: 0 when every sent event was scored before --timeout-s, 1 when some were\n"
      "not, 2 on bad flags or when Kafka, the CSV or the model could not be set up.\n";
  return out;
}

}  // namespace vigil::loadgen

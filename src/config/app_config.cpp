#include "config/app_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <sstream>

extern char** environ;

namespace vigil::config {
namespace {

// One configuration key bound to a field of AppConfig.
struct Option {
  std::string key;
  std::string description;
  std::function<std::string(const std::string&, AppConfig&)> set;  // returns an error or ""
  std::function<std::string(const AppConfig&)> get;
  bool secret = false;
};

template <typename T>
std::string parse_number(const std::string& key, const std::string& s, T& out) {
  try {
    size_t used = 0;
    if constexpr (std::is_floating_point_v<T>) {
      out = static_cast<T>(std::stod(s, &used));
    } else if constexpr (std::is_unsigned_v<T>) {
      if (!s.empty() && s[0] == '-') throw std::invalid_argument("negative");
      out = static_cast<T>(std::stoull(s, &used));
    } else {
      out = static_cast<T>(std::stoll(s, &used));
    }
    if (used != s.size()) throw std::invalid_argument("trailing");
    return "";
  } catch (...) {
    return key + ": '" + s + "' is not a valid number";
  }
}

std::string parse_bool(const std::string& key, const std::string& s, bool& out) {
  std::string l = s;
  std::transform(l.begin(), l.end(), l.begin(), ::tolower);
  if (l == "true" || l == "1" || l == "yes" || l == "on") {
    out = true;
  } else if (l == "false" || l == "0" || l == "no" || l == "off") {
    out = false;
  } else {
    return key + ": '" + s + "' is not a boolean (true/false)";
  }
  return "";
}

template <typename F>
Option make(std::string key, std::string desc, F field_of, bool secret = false) {
  Option o;
  o.key = key;
  o.description = std::move(desc);
  o.secret = secret;
  o.set = [key, field_of](const std::string& s, AppConfig& c) -> std::string {
    auto& f = field_of(c);
    using T = std::decay_t<decltype(f)>;
    if constexpr (std::is_same_v<T, std::string>) {
      f = s;
      return "";
    } else if constexpr (std::is_same_v<T, bool>) {
      return parse_bool(key, s, f);
    } else if constexpr (std::is_arithmetic_v<T>) {
      return parse_number(key, s, f);
    } else {  // std::chrono::duration
      typename T::rep n{};
      auto err = parse_number(key, s, n);
      if (err.empty()) f = T(n);
      return err;
    }
  };
  o.get = [field_of](const AppConfig& c) -> std::string {
    auto& f = field_of(const_cast<AppConfig&>(c));
    using T = std::decay_t<decltype(f)>;
    if constexpr (std::is_same_v<T, std::string>) {
      return f;
    } else if constexpr (std::is_same_v<T, bool>) {
      return f ? "true" : "false";
    } else if constexpr (std::is_arithmetic_v<T>) {
      std::ostringstream os;
      os << f;
      return os.str();
    } else {
      return std::to_string(f.count());
    }
  };
  return o;
}

#define VIGIL_OPT(key, desc, expr) \
  make(                            \
      key, desc, [](AppConfig & c) -> auto& { return expr; })
#define VIGIL_SECRET(key, desc, expr) \
  make(                               \
      key, desc, [](AppConfig & c) -> auto& { return expr; }, true)

const std::vector<Option>& options() {
  static const std::vector<Option> opts = {
      VIGIL_OPT("model.repository", "model repository folder (models/<name>/<version>/model.pt)",
                c.model.repository),
      VIGIL_OPT("model.name", "model served", c.model.name),
      VIGIL_OPT("model.version", "version folder to serve; empty = the highest", c.model.version),
      VIGIL_OPT("model.device", "cpu, cuda, cuda:N or auto (CUDA when available)", c.model.device),
      VIGIL_OPT("model.intra_op_threads", "LibTorch intra-op threads per forward pass",
                c.model.intra_op_threads),
      VIGIL_OPT("model.reload_interval_ms",
                "how often the repository is read for new versions (0 = never)",
                c.model.reload_interval),
      VIGIL_OPT("model.stable_ms",
                "a new version's model.pt must stay unchanged this long before it is loaded",
                c.model.stable),
      VIGIL_OPT("model.shadow_version",
                "a second version that scores every batch too, published to "
                "kafka.shadow_topic; empty = none",
                c.model.shadow_version),
      VIGIL_OPT("explain.top_k",
                "reason codes (top contributing inputs) on every streamed score; 0 = none; "
                "clamped to the model's inputs",
                c.scoring.explain_top_k),
      VIGIL_OPT("scoring.max_batch_size", "rows per forward pass at most",
                c.scoring.max_batch_size),
      VIGIL_OPT("scoring.max_delay_us",
                "longest the oldest waiting request waits for its batch to fill",
                c.scoring.max_delay),
      VIGIL_OPT("scoring.eager_when_idle",
                "flush a partial batch at once when no worker is busy (low latency at low load)",
                c.scoring.eager_when_idle),
      VIGIL_OPT("scoring.workers", "scoring worker threads (0 = one per core)", c.scoring.workers),
      VIGIL_OPT("scoring.queue_capacity", "requests the scoring queue holds at most",
                c.scoring.queue_capacity),
      VIGIL_OPT("scoring.high_watermark",
                "queue fill fraction at which Kafka partitions are paused",
                c.scoring.high_watermark),
      VIGIL_OPT("scoring.low_watermark", "queue fill fraction below which they resume",
                c.scoring.low_watermark),
      VIGIL_OPT("scoring.watchdog_stall_ms",
                "a scoring worker silent this long (queue not empty) fails readiness",
                c.scoring.watchdog_stall),
      VIGIL_OPT("kafka.enabled", "consume from Kafka (false = HTTP only)", c.kafka.enabled),
      VIGIL_OPT("kafka.brokers", "'embedded' (in-process mock cluster) or host:port,...",
                c.kafka.brokers),
      VIGIL_OPT("kafka.embedded.brokers", "brokers of the embedded cluster",
                c.kafka.embedded.brokers),
      VIGIL_OPT("kafka.embedded.partitions", "partitions of each embedded topic",
                c.kafka.embedded.partitions),
      VIGIL_OPT("kafka.embedded.bootstrap_file",
                "file the embedded cluster's bootstrap address is written to",
                c.kafka.embedded.bootstrap_file),
      VIGIL_OPT("kafka.group_id", "consumer group", c.kafka.group_id),
      VIGIL_OPT("kafka.input_topic", "topic of incoming transactions", c.kafka.input_topic),
      VIGIL_OPT("kafka.output_topic", "topic scores are written to (key = transaction id)",
                c.kafka.output_topic),
      VIGIL_OPT("kafka.dlq_topic", "dead-letter topic for events that cannot be scored",
                c.kafka.dlq_topic),
      VIGIL_OPT("kafka.shadow_topic",
                "topic of shadow scores (model.shadow_version), key = transaction id",
                c.kafka.shadow_topic),
      VIGIL_OPT("kafka.max_event_bytes", "larger records go to the dead-letter topic",
                c.kafka.max_event_bytes),
      VIGIL_OPT("kafka.commit_interval_ms", "how often delivered offsets are committed",
                c.kafka.commit_interval),
      VIGIL_OPT("kafka.startup_timeout_ms",
                "how long start-up retries unreachable brokers before exiting (/ready fails "
                "meanwhile)",
                c.kafka.startup_timeout),
      VIGIL_OPT("redis.url", "redis://[:password@]host:port[/db]; empty disables Redis",
                c.redis.url),
      VIGIL_OPT("redis.ttl_s", "TTL of each cached score", c.redis.ttl_s),
      VIGIL_OPT("redis.key_prefix", "key prefix of cached scores", c.redis.key_prefix),
      VIGIL_OPT("redis.queue_capacity", "score writes waiting for Redis at most",
                c.redis.queue_capacity),
      VIGIL_OPT("redis.pipeline_max", "commands per pipelined round trip", c.redis.pipeline_max),
      VIGIL_OPT("redis.command_timeout_ms", "Redis command timeout", c.redis.command_timeout),
      VIGIL_OPT("redis.reconnect_backoff_max_ms", "longest wait between reconnect attempts",
                c.redis.reconnect_backoff_max),
      VIGIL_OPT("http.enabled", "serve the HTTP side-port", c.http.enabled),
      VIGIL_OPT("http.address", "address the HTTP side-port binds", c.http.address),
      VIGIL_OPT("http.port", "HTTP port (0 = ephemeral, see http.port_file)", c.http.port),
      VIGIL_OPT("http.port_file", "file the bound HTTP port is written to", c.http.port_file),
      VIGIL_OPT("http.threads", "HTTP io_context threads", c.http.threads),
      VIGIL_OPT("http.max_body_bytes", "larger request bodies get 413", c.http.max_body_bytes),
      VIGIL_OPT("http.max_connections", "concurrent connections at most", c.http.max_connections),
      VIGIL_OPT("http.read_timeout_ms", "a request must arrive whole within this",
                c.http.read_timeout),
      VIGIL_OPT("http.idle_timeout_ms", "keep-alive connections idle longer are closed",
                c.http.idle_timeout),
      VIGIL_OPT("http.request_timeout_ms", "scoring must answer within this, else 503",
                c.http.request_timeout),
      VIGIL_OPT("http.max_instances", "instances per scoring request at most",
                c.http.max_instances),
      VIGIL_SECRET("http.auth_token", "bearer token required on scoring routes (secret)",
                   c.http.auth_token),
      VIGIL_OPT("http.auth_token_file", "file holding the bearer token", c.http.auth_token_file),
      VIGIL_OPT("shutdown_grace_ms", "bound on graceful shutdown", c.shutdown_grace),
      VIGIL_OPT("log.level", "trace, debug, info, warn or error", c.log_level),
      VIGIL_OPT("mode", "serve (the service) or demo (score a sample through the batcher)", c.mode),
      VIGIL_OPT("demo.input", "CSV scored by mode=demo (empty = the model's sample)", c.demo_input),
      VIGIL_OPT("demo.rows", "rows scored by mode=demo", c.demo_rows),
  };
  return opts;
}

const Option* find_option(const std::string& key) {
  for (const auto& o : options()) {
    if (o.key == key) return &o;
  }
  return nullptr;
}

std::string env_name(const std::string& key) {
  std::string e = "VIGIL_";
  for (char ch : key) e += (ch == '.') ? '_' : static_cast<char>(::toupper(ch));
  return e;
}

// The key a VIGIL_KAFKA_CONSUMER_* / VIGIL_KAFKA_PRODUCER_* variable sets, or "" for any
// other name. librdkafka property names are dotted and lower case, which environment names
// cannot spell; the rule (Confluent's images use the same): after the prefix, `_` is `.`,
// `__` is a literal `_`, and letters are lower-cased. VIGIL_KAFKA_CONSUMER_SASL_PASSWORD sets
// kafka.consumer.sasl.password; VIGIL_KAFKA_PRODUCER_ENABLE_SSL__CERTIFICATE__VERIFICATION
// would set kafka.producer.enable_ssl_certificate_verification.
std::string passthrough_key(const std::string& env_name) {
  for (const char* client : {"consumer", "producer"}) {
    std::string prefix = "VIGIL_KAFKA_" + std::string(client) + "_";
    std::transform(prefix.begin(), prefix.end(), prefix.begin(), ::toupper);
    if (env_name.rfind(prefix, 0) != 0 || env_name.size() == prefix.size()) continue;
    std::string property;
    for (size_t i = prefix.size(); i < env_name.size(); ++i) {
      if (env_name[i] == '_' && i + 1 < env_name.size() && env_name[i + 1] == '_') {
        property += '_';
        ++i;
      } else if (env_name[i] == '_') {
        property += '.';
      } else {
        property += static_cast<char>(::tolower(static_cast<unsigned char>(env_name[i])));
      }
    }
    return "kafka." + std::string(client) + "." + property;
  }
  return "";
}

// Applies key=value; passthrough maps take kafka.consumer.* and kafka.producer.*.
void apply(const std::string& key, const std::string& value, const std::string& source,
           AppConfig& c, std::vector<std::string>& errors) {
  for (auto [prefix, map] : {std::pair{std::string("kafka.consumer."), &c.kafka.consumer},
                             std::pair{std::string("kafka.producer."), &c.kafka.producer}}) {
    if (key.rfind(prefix, 0) == 0 && key.size() > prefix.size()) {
      (*map)[key.substr(prefix.size())] = value;
      return;
    }
  }
  const Option* o = find_option(key);
  if (!o) {
    errors.push_back(source + ": unknown key '" + key + "'");
    return;
  }
  auto err = o->set(value, c);
  if (!err.empty()) errors.push_back(source + ": " + err);
}

void flatten(const YAML::Node& node, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& out,
             std::vector<std::string>& errors, const std::string& file) {
  if (node.IsMap()) {
    for (const auto& kv : node) {
      const std::string k = kv.first.as<std::string>();
      flatten(kv.second, prefix.empty() ? k : prefix + "." + k, out, errors, file);
    }
  } else if (node.IsScalar()) {
    out.emplace_back(prefix, node.as<std::string>());
  } else if (node.IsNull()) {
    out.emplace_back(prefix, "");
  } else {
    errors.push_back(file + ": " + prefix + " must be a scalar value");
  }
}

}  // namespace

std::vector<std::string> AppConfig::validate() const {
  std::vector<std::string> e;
  for (auto part : {model.validate(), scoring.validate(), kafka.validate(), redis.validate(),
                    http.validate()}) {
    e.insert(e.end(), part.begin(), part.end());
  }
  if (shutdown_grace.count() < 0) e.push_back("shutdown_grace_ms must be >= 0");
  static const char* levels[] = {"trace", "debug", "info", "warn", "error"};
  if (std::find(std::begin(levels), std::end(levels), log_level) == std::end(levels)) {
    e.push_back("log.level must be one of trace, debug, info, warn, error");
  }
  if (mode != "serve" && mode != "demo") e.push_back("mode must be serve or demo");
  if (demo_rows < 1) e.push_back("demo.rows must be >= 1");
  return e;
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

std::vector<OptionDoc> option_docs() {
  AppConfig defaults;
  std::vector<OptionDoc> docs;
  for (const auto& o : options()) {
    docs.push_back({o.key, o.secret ? "" : o.get(defaults), o.description});
  }
  docs.push_back({"kafka.consumer.<property>", "",
                  "passed to the librdkafka consumer as is (environment: "
                  "VIGIL_KAFKA_CONSUMER_<PROPERTY>, `_` for `.`, `__` for `_`)"});
  docs.push_back({"kafka.producer.<property>", "",
                  "passed to the librdkafka producer as is (environment: "
                  "VIGIL_KAFKA_PRODUCER_<PROPERTY>, `_` for `.`, `__` for `_`)"});
  return docs;
}

std::vector<std::string> describe(const AppConfig& c) {
  std::vector<std::string> lines;
  for (const auto& o : options()) {
    std::string v = o.get(c);
    if (o.secret && !v.empty()) v = "<redacted>";
    if (o.key == "redis.url" && v.find('@') != std::string::npos) {
      v = "redis://<redacted>@" + v.substr(v.rfind('@') + 1);
    }
    lines.push_back(o.key + " = " + v);
  }
  auto secretish = [](const std::string& k) {
    for (const char* word :
         {"password", "secret", "sasl", "ssl.key", "pem", "token", "jaas", "credential"}) {
      if (k.find(word) != std::string::npos) return true;
    }
    return false;
  };
  for (const auto& [k, v] : c.kafka.consumer) {
    lines.push_back("kafka.consumer." + k + " = " + (secretish(k) ? "<redacted>" : v));
  }
  for (const auto& [k, v] : c.kafka.producer) {
    lines.push_back("kafka.producer." + k + " = " + (secretish(k) ? "<redacted>" : v));
  }
  return lines;
}

Result<AppConfig> load_config(const std::vector<std::string>& args,
                              const std::map<std::string, std::string>& env, CommandLine& cmd) {
  AppConfig c;
  std::vector<std::string> errors;
  std::vector<std::pair<std::string, std::string>> flags;

  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      cmd.help = true;
    } else if (a == "--version") {
      cmd.version = true;
    } else if (a == "--print-config") {
      cmd.print_config = true;
    } else if (a == "--config" || a == "-c") {
      if (i + 1 >= args.size()) {
        errors.push_back("--config needs a file path");
      } else {
        cmd.config_file = args[++i];
      }
    } else if (a.rfind("--config=", 0) == 0) {
      cmd.config_file = a.substr(9);
    } else if (a.rfind("--", 0) == 0 && a.find('=') != std::string::npos) {
      flags.emplace_back(a.substr(2, a.find('=') - 2), a.substr(a.find('=') + 1));
    } else if (a.rfind("--", 0) == 0 && i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) {
      flags.emplace_back(a.substr(2), args[++i]);
    } else {
      errors.push_back("unexpected argument '" + a + "' (use --key=value)");
    }
  }
  if (cmd.config_file.empty()) {
    if (auto it = env.find("VIGIL_CONFIG"); it != env.end()) cmd.config_file = it->second;
  }

  if (!cmd.config_file.empty()) {
    try {
      YAML::Node root = YAML::LoadFile(cmd.config_file);
      std::vector<std::pair<std::string, std::string>> kvs;
      if (!root.IsNull()) flatten(root, "", kvs, errors, cmd.config_file);
      for (const auto& [k, v] : kvs) apply(k, v, cmd.config_file, c, errors);
    } catch (const YAML::BadFile&) {
      errors.push_back("cannot read config file '" + cmd.config_file + "'");
    } catch (const YAML::Exception& e) {
      errors.push_back(cmd.config_file + ": " + e.what());
    }
  }
  for (const auto& o : options()) {
    if (auto it = env.find(env_name(o.key)); it != env.end()) {
      auto err = o.set(it->second, c);
      if (!err.empty()) errors.push_back(env_name(o.key) + ": " + err);
    }
  }
  for (const auto& [name, value] : env) {
    if (auto key = passthrough_key(name); !key.empty()) apply(key, value, name, c, errors);
  }
  for (const auto& [k, v] : flags) apply(k, v, "--" + k, c, errors);

  if (!c.http.auth_token_file.empty() && !c.http.auth_token.empty()) {
    errors.push_back("set only one of http.auth_token and http.auth_token_file");
  } else if (!c.http.auth_token_file.empty()) {
    std::ifstream f(c.http.auth_token_file);
    std::string token;
    if (!f || !std::getline(f, token) || token.empty()) {
      errors.push_back("http.auth_token_file: cannot read a token from '" + c.http.auth_token_file +
                       "'");
    } else {
      c.http.auth_token = token;
    }
  }

  if (!cmd.help && !cmd.version) {
    auto v = c.validate();
    errors.insert(errors.end(), v.begin(), v.end());
  }
  if (!errors.empty()) {
    std::string msg;
    for (const auto& e : errors) msg += (msg.empty() ? "" : "\n") + e;
    return Result<AppConfig>::Error(msg);
  }
  return c;
}

}  // namespace vigil::config

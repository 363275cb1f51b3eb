#include "config/app_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

extern char** environ;

namespace vigil::config {
namespace {

template <typename T>
std::string parse_number(const std::string& key, const std::string& s, T& out) {
  const std::string invalid = key + ": '" + s + "' is not a valid number";
  if constexpr (std::is_unsigned_v<T>) {
    if (!s.empty() && s[0] == '-') return invalid;  // stoull would wrap it around
  }
  size_t used = 0;
  try {  // std::sto* report a bad or out-of-range number by exception: converted here
    if constexpr (std::is_floating_point_v<T>) {
      out = static_cast<T>(std::stod(s, &used));
    } else if constexpr (std::is_unsigned_v<T>) {
      out = static_cast<T>(std::stoull(s, &used));
    } else {
      out = static_cast<T>(std::stoll(s, &used));
    }
  } catch (const std::exception&) {
    return invalid;
  }
  return used == s.size() ? "" : invalid;
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

// What a key is, as its component's fields() declares it.
struct FieldInfo {
  std::string key;                // full dotted key; "<section>.<property>" for passthrough
  std::vector<std::string> path;  // its YAML nesting (sections, then the leaf)
  std::string unit;
  std::string description;
  bool secret = false;
  bool passthrough = false;  // a map of librdkafka properties
};

// Visits every key of an AppConfig: `f(info, field)` with the field's reference.
template <typename F>
struct Walker {
  F& f;
  std::vector<std::string> sections;

  template <typename T>
  void operator()(const char* name, T& field, const char* unit, const char* description,
                  FieldFlag flag = FieldFlag::kNone) {
    FieldInfo info;
    info.path = sections;
    std::string leaf(name);
    for (size_t dot; (dot = leaf.find('.')) != std::string::npos; leaf = leaf.substr(dot + 1)) {
      info.path.push_back(leaf.substr(0, dot));  // "log.level" nests as log: level:
    }
    info.path.push_back(leaf);
    for (const auto& p : info.path) info.key += (info.key.empty() ? "" : ".") + p;
    info.unit = unit;
    info.description = description;
    info.secret = flag == FieldFlag::kSecret;
    f(info, field);
  }
  template <typename S>
  void section(const char* name, S& sub) {
    sections.emplace_back(name);
    sub.fields(*this);
    sections.pop_back();
  }
  void passthrough(const char* name, std::map<std::string, std::string>& map,
                   const char* description) {
    FieldInfo info;
    info.path = sections;
    info.path.emplace_back(name);
    for (const auto& p : info.path) info.key += (info.key.empty() ? "" : ".") + p;
    info.key += ".<property>";
    info.description = description;
    info.passthrough = true;
    f(info, map);
  }
};

template <typename F>
void for_each_field(AppConfig& c, F&& f) {
  Walker<F> w{f, {}};
  c.fields(w);
}

template <typename T>
std::string set_field(const std::string& key, const std::string& s, T& f) {
  if constexpr (std::is_same_v<T, std::string>) {
    f = s;
    return "";
  } else if constexpr (std::is_same_v<T, bool>) {
    return parse_bool(key, s, f);
  } else if constexpr (std::is_arithmetic_v<T>) {
    return parse_number(key, s, f);
  } else if constexpr (std::is_same_v<T, std::map<std::string, std::string>>) {
    return key + " is a map of properties: set kafka.consumer.<property> one by one";
  } else {  // std::chrono::duration
    typename T::rep n{};
    auto err = parse_number(key, s, n);
    if (err.empty()) f = T(n);
    return err;
  }
}

template <typename T>
std::string field_text(const T& f) {
  if constexpr (std::is_same_v<T, std::string>) {
    return f;
  } else if constexpr (std::is_same_v<T, bool>) {
    return f ? "true" : "false";
  } else if constexpr (std::is_arithmetic_v<T>) {
    std::ostringstream os;
    os << f;
    return os.str();
  } else if constexpr (std::is_same_v<T, std::map<std::string, std::string>>) {
    std::string out;
    for (const auto& [k, v] : f) out += (out.empty() ? "" : ", ") + k + "=" + v;
    return out;
  } else {
    return std::to_string(f.count());
  }
}

// Every key with its default (from a default-constructed AppConfig), in declaration order.
std::vector<std::pair<FieldInfo, std::string>> fields_with_defaults() {
  AppConfig defaults;
  std::vector<std::pair<FieldInfo, std::string>> out;
  for_each_field(defaults, [&](const FieldInfo& info, auto& field) {
    out.emplace_back(info, info.secret ? "" : field_text(field));
  });
  return out;
}

// Sets `key` on `c`; returns an error, "" when done, or nullopt when no such key.
std::optional<std::string> set_key(AppConfig& c, const std::string& key, const std::string& value) {
  std::optional<std::string> result;
  for_each_field(c, [&](const FieldInfo& info, auto& field) {
    if (!result && !info.passthrough && info.key == key) result = set_field(key, value, field);
  });
  return result;
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
  auto err = set_key(c, key, value);
  if (!err) {
    errors.push_back(source + ": unknown key '" + key + "'");
  } else if (!err->empty()) {
    errors.push_back(source + ": " + *err);
  }
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
  for (auto part : {model.validate(), explain.validate(), scoring.validate(), features.validate(),
                    kafka.validate(), redis.validate(), http.validate(), recommend.validate()}) {
    e.insert(e.end(), part.begin(), part.end());
  }
  if (kafka.enabled) {
    // A route's model must be served; with also_serve=* the repository says so at start.
    const std::vector<std::string> also = model.also_served();
    const bool every = also == std::vector<std::string>{"*"};
    const auto routes = kafka.all_routes();
    for (size_t i = 1; i < routes.size(); ++i) {
      const std::string& m = routes[i].model;
      if (m != model.name && !every && std::find(also.begin(), also.end(), m) == also.end()) {
        e.push_back("kafka.routes: '" + routes[i].input_topic + "' is scored by '" + m +
                    "', which is not served (model.name or model.also_serve)");
      }
    }
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
  std::vector<OptionDoc> docs;
  for (const auto& [info, def] : fields_with_defaults()) {
    std::string description = info.description;
    if (info.passthrough) {
      std::string env = env_name(info.key.substr(0, info.key.size() - 11));  // "<property>"
      description += " (environment: " + env + "_<PROPERTY>, `_` for `.`, `__` for `_`)";
    }
    docs.push_back({info.key, def, info.unit, description});
  }
  return docs;
}

namespace {

// Wraps `text` into lines of at most `width` characters.
std::vector<std::string> wrap(const std::string& text, size_t width) {
  std::vector<std::string> lines;
  std::istringstream words(text);
  std::string word, line;
  while (words >> word) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(line);
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

std::string yaml_scalar(const std::string& text, bool is_string) {
  if (!is_string) return text;
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

}  // namespace

std::string default_config_yaml() {
  AppConfig defaults;
  std::string out =
      "# vigil configuration: every key at its default, its description above it. Generated from\n"
      "# the components' config structs (src/*/*_config.h, fields()) by\n"
      "#   vigil --print-default-config > config/vigil.yaml\n"
      "# and checked by tests/config: edit the structs, not this file. Every key can also be set\n"
      "# as an environment variable (VIGIL_ + the key upper-cased, dots as underscores:\n"
      "# VIGIL_KAFKA_BROKERS) or as a flag (--kafka.brokers=...); flags win over the\n"
      "# environment, which wins over this file. kafka.consumer.* / kafka.producer.* take any\n"
      "# librdkafka property (VIGIL_KAFKA_CONSUMER_SASL_PASSWORD sets\n"
      "# kafka.consumer.sasl.password: `_` for `.`, `__` for `_`).\n";
  std::vector<std::string> open;  // sections currently open
  for_each_field(defaults, [&](const FieldInfo& info, auto& field) {
    using T = std::decay_t<decltype(field)>;
    std::vector<std::string> sections(info.path.begin(), info.path.end() - 1);
    size_t common = 0;
    while (common < open.size() && common < sections.size() && open[common] == sections[common]) {
      ++common;
    }
    open.resize(common);
    if (common == 0 && !sections.empty()) out += "\n";
    for (size_t i = common; i < sections.size(); ++i) {
      out += std::string(2 * i, ' ') + sections[i] + ":\n";
      open.push_back(sections[i]);
    }
    const std::string indent(2 * sections.size(), ' ');
    if (sections.empty()) out += "\n";
    std::string description = info.description;
    if (!info.unit.empty() && info.unit != "ms" && info.unit != "us" && info.unit != "s") {
      description += " [" + info.unit + "]";
    }
    for (const auto& line : wrap(description, 94 - indent.size())) {
      out += indent + "# " + line + "\n";
    }
    if constexpr (std::is_same_v<T, std::map<std::string, std::string>>) {
      if (field.empty()) {
        out += indent + info.path.back() + ": {}\n";
      } else {
        out += indent + info.path.back() + ":\n";
        for (const auto& [k, v] : field) out += indent + "  " + k + ": " + v + "\n";
      }
    } else {
      const std::string value = info.secret ? "" : field_text(field);
      out += indent + info.path.back() + ": " + yaml_scalar(value, std::is_same_v<T, std::string>) +
             "\n";
    }
  });
  return out;
}

std::string config_table_markdown() {
  std::string out = "| key | default | unit | meaning |\n|---|---|---|---|\n";
  for (const auto& d : option_docs()) {
    out += "| `" + d.key + "` | " + (d.default_value.empty() ? "" : "`" + d.default_value + "`") +
           " | " + d.unit + " | " + d.description + " |\n";
  }
  return out;
}

std::vector<std::string> describe(const AppConfig& c) {
  auto secretish = [](const std::string& k) {
    for (const char* word :
         {"password", "secret", "sasl", "ssl.key", "pem", "token", "jaas", "credential"}) {
      if (k.find(word) != std::string::npos) return true;
    }
    return false;
  };
  std::vector<std::string> lines;
  AppConfig copy = c;
  for_each_field(copy, [&](const FieldInfo& info, auto& field) {
    using T = std::decay_t<decltype(field)>;
    if constexpr (std::is_same_v<T, std::map<std::string, std::string>>) {
      const std::string prefix = info.key.substr(0, info.key.size() - 10);  // "<property>"
      for (const auto& [k, v] : field) {
        lines.push_back(prefix + k + " = " + (secretish(k) ? "<redacted>" : v));
      }
    } else {
      std::string v = field_text(field);
      if (info.secret && !v.empty()) v = "<redacted>";
      if (info.key == "redis.url" && v.find('@') != std::string::npos) {
        v = "redis://<redacted>@" + v.substr(v.rfind('@') + 1);
      }
      lines.push_back(info.key + " = " + v);
    }
  });
  return lines;
}

namespace {

// The command line: --help and friends into `cmd`, --key=value (or --key value) into `flags`.
void parse_args(const std::vector<std::string>& args, CommandLine& cmd,
                std::vector<std::pair<std::string, std::string>>& flags,
                std::vector<std::string>& errors) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      cmd.help = true;
    } else if (a == "--version") {
      cmd.version = true;
    } else if (a == "--print-config") {
      cmd.print_config = true;
    } else if (a == "--print-default-config") {
      cmd.print_default_config = true;
    } else if (a == "--print-config-table") {
      cmd.print_config_table = true;
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
}

}  // namespace

Result<AppConfig> load_config(const std::vector<std::string>& args,
                              const std::map<std::string, std::string>& env, CommandLine& cmd) {
  AppConfig c;
  std::vector<std::string> errors;
  std::vector<std::pair<std::string, std::string>> flags;
  parse_args(args, cmd, flags, errors);

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
  for (const auto& [info, def] : fields_with_defaults()) {
    if (info.passthrough) continue;
    if (auto it = env.find(env_name(info.key)); it != env.end()) {
      auto err = set_key(c, info.key, it->second);
      if (err && !err->empty()) errors.push_back(env_name(info.key) + ": " + *err);
    }
  }
  for (const auto& [name, value] : env) {
    if (auto key = passthrough_key(name); !key.empty()) apply(key, value, name, c, errors);
  }
  for (const auto& [k, v] : flags) apply(k, v, "--" + k, c, errors);

  // A token given inline or as a file (its first line), not both.
  auto read_token_file = [&errors](const std::string& key, std::string& token,
                                   const std::string& file) {
    if (!file.empty() && !token.empty()) {
      errors.push_back("set only one of " + key + " and " + key + "_file");
    } else if (!file.empty()) {
      std::ifstream f(file);
      std::string line;
      if (!f || !std::getline(f, line) || line.empty()) {
        errors.push_back(key + "_file: cannot read a token from '" + file + "'");
      } else {
        token = line;
      }
    }
  };
  read_token_file("http.auth_token", c.http.auth_token, c.http.auth_token_file);
  read_token_file("http.admin_token", c.http.admin_token, c.http.admin_token_file);

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

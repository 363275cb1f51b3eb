#include "features/feature_spec.h"

#include <yaml-cpp/yaml.h>

#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

namespace vigil::features {

namespace {

constexpr int64_t kDayMs = 86'400'000;
constexpr int kMaxWindowDays = static_cast<int>(FeatureSpec::kMaxHistorySpanMs / kDayMs);

const std::set<std::string>& known_keys() {
  static const std::set<std::string> keys = {"entity",
                                             "prefix",
                                             "time",
                                             "amount",
                                             "windows_days",
                                             "calendar",
                                             "allowed_lateness_ms",
                                             "max_entities_per_partition"};
  return keys;
}

bool valid_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

int64_t FeatureSpec::longest_window_ms() const {
  return windows_days.empty() ? 0 : static_cast<int64_t>(windows_days.back()) * kDayMs;
}

std::vector<std::string> FeatureSpec::output_names() const {
  std::vector<std::string> names = {"tx_amount"};
  if (calendar) {
    names.emplace_back("tx_during_weekend");
    names.emplace_back("tx_during_night");
  }
  for (int d : windows_days) {
    names.push_back(prefix + "_nb_tx_" + std::to_string(d) + "d");
    names.push_back(prefix + "_avg_amount_" + std::to_string(d) + "d");
  }
  return names;
}

std::string FeatureSpec::canonical() const {
  std::string s;
  s += "entity=" + entity + "\n";
  s += "time=" + time + "\n";
  s += "amount=" + amount + "\n";
  s += "prefix=" + prefix + "\n";
  s += "windows_days=";
  for (size_t i = 0; i < windows_days.size(); ++i) {
    s += (i ? "," : "") + std::to_string(windows_days[i]);
  }
  s += "\ncalendar=" + std::string(calendar ? "true" : "false") + "\n";
  s += "allowed_lateness_ms=" + std::to_string(allowed_lateness_ms) + "\n";
  // max_entities_per_partition bounds memory; it changes no feature of a transaction whose
  // history is complete, so it is not part of the meaning.
  return s;
}

std::string FeatureSpec::hash() const {
  uint64_t h = 14695981039346656037ULL;  // FNV-1a, 64 bits
  for (unsigned char c : canonical()) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016" PRIx64, h);
  return std::string("fnv1a64:") + hex;
}

Result<FeatureSpec> parse_feature_spec(const std::string& yaml_text, const std::string& where) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Result<FeatureSpec>::Error(StatusCode::kInvalidArgument, where + ": " + e.what());
  }
  if (!root.IsMap()) {
    return Result<FeatureSpec>::Error(StatusCode::kInvalidArgument,
                                      where + ": must be a mapping of keys to values");
  }
  FeatureSpec spec;
  std::vector<std::string> errors;
  auto fail = [&](const std::string& key, const std::string& why) {
    errors.push_back(where + ": '" + key + "' " + why);
  };
  for (const auto& kv : root) {
    if (!kv.first.IsScalar()) {
      errors.push_back(where + ": keys must be names");
      continue;
    }
    const auto key = kv.first.Scalar();
    if (known_keys().count(key) == 0) fail(key, "is not a known key");
  }
  auto read_name = [&](const char* key, std::string& out) {
    if (!root[key]) return;
    try {
      out = root[key].as<std::string>();
    } catch (const YAML::Exception&) {
      fail(key, "must be a string");
      return;
    }
    if (!valid_name(out)) fail(key, "must be a non-empty name of letters, digits, '_', '.', '-'");
  };
  read_name("entity", spec.entity);
  read_name("time", spec.time);
  read_name("amount", spec.amount);
  read_name("prefix", spec.prefix);
  if (root["windows_days"]) {
    const YAML::Node w = root["windows_days"];
    if (!w.IsSequence() || w.size() == 0) {
      fail("windows_days", "must be a non-empty list of whole days");
    } else {
      spec.windows_days.clear();
      for (size_t i = 0; i < w.size(); ++i) {
        int d = 0;
        try {
          d = w[i].as<int>();
        } catch (const YAML::Exception&) {
          fail("windows_days", "[" + std::to_string(i) + "] must be a whole number of days");
          continue;
        }
        if (d < 1 || d > kMaxWindowDays) {
          fail("windows_days", "[" + std::to_string(i) + "] = " + std::to_string(d) +
                                   " is outside [1, " + std::to_string(kMaxWindowDays) + "]");
        } else if (!spec.windows_days.empty() && d <= spec.windows_days.back()) {
          fail("windows_days", "must be increasing (" + std::to_string(d) + " after " +
                                   std::to_string(spec.windows_days.back()) + ")");
        }
        spec.windows_days.push_back(d);
      }
    }
  }
  if (root["calendar"]) {
    try {
      spec.calendar = root["calendar"].as<bool>();
    } catch (const YAML::Exception&) {
      fail("calendar", "must be true or false");
    }
  }
  if (root["allowed_lateness_ms"]) {
    try {
      spec.allowed_lateness_ms = root["allowed_lateness_ms"].as<int64_t>();
      if (spec.allowed_lateness_ms < 0 ||
          spec.allowed_lateness_ms > FeatureSpec::kMaxHistorySpanMs) {
        fail("allowed_lateness_ms",
             "must be within [0, " + std::to_string(FeatureSpec::kMaxHistorySpanMs) + "]");
      }
    } catch (const YAML::Exception&) {
      fail("allowed_lateness_ms", "must be a whole number of ms");
    }
  }
  if (root["max_entities_per_partition"]) {
    try {
      const auto n = root["max_entities_per_partition"].as<int64_t>();
      if (n < 1) fail("max_entities_per_partition", "must be at least 1");
      spec.max_entities_per_partition = static_cast<size_t>(n < 1 ? 1 : n);
    } catch (const YAML::Exception&) {
      fail("max_entities_per_partition", "must be a whole number");
    }
  }
  if (errors.empty() &&
      spec.longest_window_ms() + spec.allowed_lateness_ms > FeatureSpec::kMaxHistorySpanMs) {
    fail("allowed_lateness_ms", "plus the longest window must be at most " +
                                    std::to_string(kMaxWindowDays) +
                                    " days (the history keeps event times as 32-bit ms offsets)");
  }
  if (!errors.empty()) {
    std::string msg;
    for (const auto& e : errors) msg += (msg.empty() ? "" : "\n") + e;
    return Result<FeatureSpec>::Error(StatusCode::kInvalidArgument, msg);
  }
  return spec;
}

Result<FeatureSpec> load_feature_spec(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Result<FeatureSpec>::Error(StatusCode::kNotFound, "cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return parse_feature_spec(text.str(), path);
}

}  // namespace vigil::features

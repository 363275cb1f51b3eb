#include "features/feature_spec.h"

#include <yaml-cpp/yaml.h>

#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

namespace vigil::features {

namespace {

constexpr int kMaxWindowDays = static_cast<int>(FeatureSpec::kMaxHistorySpanMs / kDayMs);

const std::set<std::string>& known_keys() {
  static const std::set<std::string> keys = {"entity",
                                             "prefix",
                                             "time",
                                             "amount",
                                             "windows_days",
                                             "calendar",
                                             "allowed_lateness_ms",
                                             "max_entities_per_partition",
                                             "terminal"};
  return keys;
}

const std::set<std::string>& known_terminal_keys() {
  static const std::set<std::string> keys = {"field", "prefix", "delay_days", "windows_days"};
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
  if (terminal) {
    for (int d : terminal->windows.windows_days) {
      names.push_back(terminal->prefix + "_nb_tx_" + std::to_string(d) + "d");
      names.push_back(terminal->prefix + "_risk_" + std::to_string(d) + "d");
    }
  }
  return names;
}

std::string FeatureSpec::canonical() const {
  std::string s;
  s += "entity=" + entity + "\n";
  s += "time=" + time + "\n";
  s += "amount=" + amount + "\n";
  s += "prefix=" + prefix + "\n";
  auto days = [](const std::vector<int>& list) {
    std::string out;
    for (size_t i = 0; i < list.size(); ++i) out += (i ? "," : "") + std::to_string(list[i]);
    return out;
  };
  s += "windows_days=" + days(windows_days);
  s += "\ncalendar=" + std::string(calendar ? "true" : "false") + "\n";
  s += "allowed_lateness_ms=" + std::to_string(allowed_lateness_ms) + "\n";
  // Only when present: a spec without terminal features keeps the hash it always had.
  if (terminal) {
    s += "terminal.field=" + terminal->field + "\n";
    s += "terminal.prefix=" + terminal->prefix + "\n";
    s += "terminal.delay_days=" + std::to_string(terminal->windows.delay_days) + "\n";
    s += "terminal.windows_days=" + days(terminal->windows.windows_days) + "\n";
  }
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
  // A name at `node[key]`, reported as `label`.
  auto read_name = [&](const YAML::Node& node, const char* key, const std::string& label,
                       std::string& out) {
    if (!node[key]) return;
    try {
      out = node[key].as<std::string>();
    } catch (const YAML::Exception&) {
      fail(label, "must be a string");
      return;
    }
    if (!valid_name(out)) fail(label, "must be a non-empty name of letters, digits, '_', '.', '-'");
  };
  // An increasing list of whole days, each within [1, max_days].
  auto read_days = [&](const YAML::Node& w, const std::string& label, int max_days,
                       std::vector<int>& out) {
    if (!w.IsSequence() || w.size() == 0) {
      fail(label, "must be a non-empty list of whole days");
      return;
    }
    out.clear();
    for (size_t i = 0; i < w.size(); ++i) {
      int d = 0;
      try {
        d = w[i].as<int>();
      } catch (const YAML::Exception&) {
        fail(label, "[" + std::to_string(i) + "] must be a whole number of days");
        continue;
      }
      if (d < 1 || d > max_days) {
        fail(label, "[" + std::to_string(i) + "] = " + std::to_string(d) + " is outside [1, " +
                        std::to_string(max_days) + "]");
      } else if (!out.empty() && d <= out.back()) {
        fail(label, "must be increasing (" + std::to_string(d) + " after " +
                        std::to_string(out.back()) + ")");
      }
      out.push_back(d);
    }
  };
  read_name(root, "entity", "entity", spec.entity);
  read_name(root, "time", "time", spec.time);
  read_name(root, "amount", "amount", spec.amount);
  read_name(root, "prefix", "prefix", spec.prefix);
  if (root["windows_days"]) {
    read_days(root["windows_days"], "windows_days", kMaxWindowDays, spec.windows_days);
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
  if (root["terminal"]) {
    const YAML::Node t = root["terminal"];
    if (!t.IsMap()) {
      fail("terminal", "must be a mapping of field, prefix, delay_days and windows_days");
    } else {
      FeatureSpec::Terminal term;
      constexpr int kMaxReach = FeatureSpec::Terminal::kMaxReachDays;
      for (const auto& kv : t) {
        const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
        if (known_terminal_keys().count(key) == 0) fail("terminal." + key, "is not a known key");
      }
      read_name(t, "field", "terminal.field", term.field);
      read_name(t, "prefix", "terminal.prefix", term.prefix);
      if (t["delay_days"]) {
        try {
          term.windows.delay_days = t["delay_days"].as<int>();
          if (term.windows.delay_days < 0 || term.windows.delay_days >= kMaxReach) {
            fail("terminal.delay_days",
                 "must be within [0, " + std::to_string(kMaxReach - 1) + "]");
          }
        } catch (const YAML::Exception&) {
          fail("terminal.delay_days", "must be a whole number of days");
        }
      }
      if (t["windows_days"]) {
        read_days(t["windows_days"], "terminal.windows_days", kMaxReach, term.windows.windows_days);
      }
      if (term.prefix == spec.prefix) {
        fail("terminal.prefix", "must differ from 'prefix' (" + spec.prefix +
                                    "): the features would have the same names");
      }
      if (term.windows.reach_days() > kMaxReach) {
        fail("terminal.windows_days",
             "plus delay_days must be at most " + std::to_string(kMaxReach) + " days");
      }
      spec.terminal = std::move(term);
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

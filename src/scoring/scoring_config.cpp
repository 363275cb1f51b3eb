#include "scoring/scoring_config.h"

#include <algorithm>
#include <map>

#include "common/comma_list.h"

namespace vigil::scoring {

namespace {

// name -> version of "name=version,..."; what is malformed goes to `errors`, naming `key`.
std::map<std::string, std::string> version_map(const std::string& key, const std::string& list,
                                               std::vector<std::string>* errors) {
  std::map<std::string, std::string> out;
  for (const std::string& item : split_commas(list)) {
    const size_t eq = item.find('=');
    const std::string name = trimmed(item.substr(0, eq));
    const std::string version = eq == std::string::npos ? "" : trimmed(item.substr(eq + 1));
    if (name.empty() || version.empty() ||
        version.find_first_not_of("0123456789") != std::string::npos) {
      if (errors) errors->push_back(key + ": '" + item + "' is not name=version");
      continue;
    }
    if (!out.emplace(name, version).second && errors) {
      errors->push_back(key + ": '" + name + "' is listed twice");
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> ModelConfig::validate() const {
  std::vector<std::string> e;
  if (repository.empty()) e.push_back("model.repository must not be empty");
  if (name.empty()) e.push_back("model.name must not be empty");
  if (device != "auto" && device != "cpu" && device.rfind("cuda", 0) != 0) {
    e.push_back("model.device must be cpu, cuda, cuda:N or auto, got '" + device + "'");
  }
  if (intra_op_threads < 1 || intra_op_threads > 256) {
    e.push_back("model.intra_op_threads must be within [1, 256]");
  }
  if (reload_interval.count() < 0) e.push_back("model.reload_interval_ms must be >= 0");
  if (stable.count() < 0) e.push_back("model.stable_ms must be >= 0");
  if (!shadow_version.empty() && !version.empty() && shadow_version == version) {
    e.push_back("model.shadow_version must differ from model.version");
  }
  if (!shadow_version.empty() &&
      shadow_version.find_first_not_of("0123456789") != std::string::npos) {
    e.push_back("model.shadow_version must be a version number, got '" + shadow_version + "'");
  }
  std::vector<std::string> seen;
  const std::vector<std::string> also = also_served();
  for (const std::string& n : also) {
    if (n == "*") {
      if (also.size() > 1)
        e.push_back("model.also_serve: * stands alone, got '" + also_serve + "'");
    } else if (n.find_first_of("/\\ ") != std::string::npos || n == "." || n == "..") {
      e.push_back("model.also_serve: '" + n + "' is not a model name");
    } else if (std::find(seen.begin(), seen.end(), n) != seen.end()) {
      e.push_back("model.also_serve: '" + n + "' is listed twice");
    }
    seen.push_back(n);
  }
  const bool every = also == std::vector<std::string>{"*"};
  const auto pins = version_map("model.also_versions", also_versions, &e);
  const auto shadows = version_map("model.also_shadow_versions", also_shadow_versions, &e);
  for (const auto* m : {&pins, &shadows}) {
    const std::string key = m == &pins ? "model.also_versions" : "model.also_shadow_versions";
    for (const auto& [n, v] : *m) {
      if (n == name) {
        e.push_back(key + ": '" + n + "' is model.name: use model." +
                    (m == &pins ? "version" : "shadow_version"));
      } else if (!every && std::find(seen.begin(), seen.end(), n) == seen.end()) {
        e.push_back(key + ": '" + n + "' is not in model.also_serve");
      }
    }
  }
  for (const auto& [n, v] : shadows) {
    auto pin = pins.find(n);
    if (pin != pins.end() && pin->second == v) {
      e.push_back("model.also_shadow_versions: " + n + "'s shadow must differ from its version");
    }
  }
  return e;
}

std::vector<std::string> ModelConfig::pinned_or_shadowed() const {
  std::vector<std::string> names;
  for (const auto* list : {&also_versions, &also_shadow_versions}) {
    for (const auto& [n, v] : version_map("", *list, nullptr)) names.push_back(n);
  }
  return names;
}

ModelConfig ModelConfig::for_model(const std::string& other) const {
  ModelConfig c = *this;
  c.name = other;
  if (other == name) return c;
  const auto pins = version_map("", also_versions, nullptr);
  const auto shadows = version_map("", also_shadow_versions, nullptr);
  auto pin = pins.find(other);
  auto shadow = shadows.find(other);
  c.version = pin == pins.end() ? "" : pin->second;
  c.shadow_version = shadow == shadows.end() ? "" : shadow->second;
  return c;
}

std::vector<std::string> ModelConfig::also_served() const {
  std::vector<std::string> names;
  for (std::string& n : split_commas(also_serve)) {
    if (n != name) names.push_back(std::move(n));
  }
  return names;
}

std::vector<std::string> ExplainConfig::validate() const {
  std::vector<std::string> e;
  // The model's width is not known before it loads: a larger k is clamped to it then.
  if (top_k > 1024) e.push_back("explain.top_k must be within [0, 1024]");
  return e;
}

std::vector<std::string> ScoringConfig::validate() const {
  std::vector<std::string> e;
  if (max_batch_size < 1 || max_batch_size > 65536) {
    e.push_back("scoring.max_batch_size must be within [1, 65536]");
  }
  if (max_delay.count() < 0 || max_delay.count() > 10'000'000) {
    e.push_back("scoring.max_delay_us must be within [0, 10000000]");
  }
  if (workers < 0 || workers > 256) e.push_back("scoring.workers must be within [0, 256]");
  if (queue_capacity < 1) e.push_back("scoring.queue_capacity must be >= 1");
  if (queue_capacity < max_batch_size) {
    e.push_back("scoring.queue_capacity must be >= scoring.max_batch_size");
  }
  if (!(high_watermark > 0.0 && high_watermark <= 1.0)) {
    e.push_back("scoring.high_watermark must be within (0, 1]");
  }
  if (!(low_watermark >= 0.0 && low_watermark < high_watermark)) {
    e.push_back("scoring.low_watermark must be within [0, scoring.high_watermark)");
  }
  if (watchdog_stall.count() < 100) e.push_back("scoring.watchdog_stall_ms must be >= 100");
  if (watchdog_liveness < watchdog_stall) {
    e.push_back("scoring.watchdog_liveness_ms must be >= scoring.watchdog_stall_ms");
  }
  return e;
}

}  // namespace vigil::scoring

#include "scoring/model_repository.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "features/feature_spec.h"

namespace vigil::scoring {

namespace fs = std::filesystem;

std::vector<int> list_model_versions(const std::string& repository, const std::string& name) {
  std::vector<int> versions;
  std::error_code ec;
  const fs::path dir = fs::path(repository) / name;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string v = it->path().filename().string();
    if (v.empty() || !std::all_of(v.begin(), v.end(), ::isdigit) || v.size() > 9) continue;
    if (fs::is_regular_file(it->path() / "model.pt")) versions.push_back(std::stoi(v));
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

std::vector<std::string> list_scoring_models(const std::string& repository) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(repository, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path yaml = it->path() / "model.yaml";
    const std::string name = it->path().filename().string();
    if (!fs::is_regular_file(yaml) || list_model_versions(repository, name).empty()) continue;
    try {
      const YAML::Node kind = YAML::LoadFile(yaml.string())["kind"];
      if (kind && kind.IsScalar() && kind.as<std::string>() == "recommender") continue;
    } catch (const YAML::Exception&) {
      // Listed: loading it reports what is wrong with its model.yaml.
    }
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<VersionFile> scan_model_versions(const std::string& repository,
                                             const std::string& name) {
  std::vector<VersionFile> files;
  for (int v : list_model_versions(repository, name)) {
    const fs::path p = fs::path(repository) / name / std::to_string(v) / "model.pt";
    std::error_code ec1, ec2;
    const auto size = fs::file_size(p, ec1);
    const auto mtime = fs::last_write_time(p, ec2);
    if (ec1 || ec2) continue;  // removed meanwhile
    files.push_back(
        {v, size,
         std::chrono::duration_cast<std::chrono::nanoseconds>(mtime.time_since_epoch()).count()});
  }
  return files;
}

namespace {

// The fields of model.yaml into `info`; every problem goes to `errors`.
void read_model_yaml(const YAML::Node& root, const std::string& path, ModelInfo& info,
                     std::vector<std::string>& errors) {
  const std::string& name = info.name;
  try {
    if (root["name"] && root["name"].as<std::string>() != name) {
      errors.push_back(path + ": name '" + root["name"].as<std::string>() +
                       "' does not match folder '" + name + "'");
    }
    if (!root["inputs"] || !root["inputs"].IsSequence() || root["inputs"].size() == 0) {
      errors.push_back(path + ": 'inputs' must be a non-empty list of feature names");
    } else {
      std::set<std::string> seen;
      for (const auto& n : root["inputs"]) {
        auto s = n.as<std::string>();
        if (!seen.insert(s).second) {
          errors.push_back(path + ": input '" + s + "' is listed twice");
        }
        info.input_names.push_back(s);
      }
    }
    if (root["output"] && root["output"]["name"]) {
      info.output_name = root["output"]["name"].as<std::string>();
    }
    if (root["threshold"]) {
      info.threshold = root["threshold"].as<float>();
      if (!(info.threshold >= 0.0f && info.threshold <= 1.0f)) {
        errors.push_back(path + ": threshold must be within [0, 1]");
      }
    }
    if (root["description"]) info.description = root["description"].as<std::string>();
    if (root["feature_spec_hash"]) {
      info.feature_spec_hash = root["feature_spec_hash"].as<std::string>();
    }
    if (root["baseline"]) {
      for (const auto& b : root["baseline"]) info.baseline.push_back(b.as<float>());
      if (info.baseline.size() != info.input_names.size()) {
        errors.push_back(path + ": 'baseline' has " + std::to_string(info.baseline.size()) +
                         " values for " + std::to_string(info.input_names.size()) + " inputs");
      }
    }
  } catch (const YAML::Exception& e) {
    errors.push_back(path + ": " + e.what());
  }
}

// A model of raw transactions has a features.yaml beside its model.yaml: the features vigil
// computes for it, which must be its inputs, in order, under the spec hash model.yaml records
// (what it was trained on: `vigil-features hash`).
void check_feature_spec(const std::string& repository, const std::string& name,
                        const std::string& yaml_path, ModelInfo& info,
                        std::vector<std::string>& errors) {
  const fs::path spec_path = fs::path(repository) / name / "features.yaml";
  if (!fs::exists(spec_path)) {
    if (!info.feature_spec_hash.empty()) {
      errors.push_back(yaml_path + ": records feature_spec_hash " + info.feature_spec_hash +
                       " but there is no " + spec_path.string());
    }
    return;
  }
  auto spec = features::load_feature_spec(spec_path.string());
  if (!spec) {
    errors.push_back(spec.error());
    return;
  }
  const std::string hash = spec->hash();
  if (info.feature_spec_hash.empty()) {
    errors.push_back(yaml_path +
                     ": has no feature_spec_hash; the model must record the hash of "
                     "the spec it was trained on (" +
                     spec_path.string() + " is " + hash + ")");
  } else if (info.feature_spec_hash != hash) {
    errors.push_back(yaml_path + ": the model was trained on feature spec " +
                     info.feature_spec_hash + ", but " + spec_path.string() + " is " + hash);
  }
  if (!info.input_names.empty() && info.input_names != spec->output_names()) {
    std::string names;
    for (const auto& n : spec->output_names()) names += (names.empty() ? "" : ", ") + n;
    errors.push_back(yaml_path + ": 'inputs' must be the features of " + spec_path.string() +
                     ", in order: " + names);
  }
  info.feature_spec_path = spec_path.string();
}

}  // namespace

Result<ModelInfo> load_model_info(const std::string& repository, const std::string& name,
                                  const std::string& version) {
  const fs::path yaml_path = fs::path(repository) / name / "model.yaml";
  std::vector<std::string> errors;
  ModelInfo info;
  info.name = name;

  YAML::Node root;
  try {
    root = YAML::LoadFile(yaml_path.string());
  } catch (const YAML::BadFile&) {
    return Result<ModelInfo>::Error("model repository: cannot read " + yaml_path.string());
  } catch (const YAML::Exception& e) {
    return Result<ModelInfo>::Error(yaml_path.string() + ": " + e.what());
  }
  read_model_yaml(root, yaml_path.string(), info, errors);

  const auto versions = list_model_versions(repository, name);
  if (!version.empty()) {
    if (fs::is_regular_file(fs::path(repository) / name / version / "model.pt")) {
      info.version = version;
    } else {
      errors.push_back("model " + name + ": version " + version + " has no model.pt");
    }
  } else if (versions.empty()) {
    errors.push_back("model " + name + ": no version folder with a model.pt under " +
                     (fs::path(repository) / name).string());
  } else {
    info.version = std::to_string(versions.back());
  }
  check_feature_spec(repository, name, yaml_path.string(), info, errors);
  if (!errors.empty()) {
    std::string msg;
    for (const auto& e : errors) msg += (msg.empty() ? "" : "\n") + e;
    return Result<ModelInfo>::Error(msg);
  }
  info.path = (fs::path(repository) / name / info.version / "model.pt").string();
  std::ifstream text(yaml_path);
  std::stringstream ss;
  ss << text.rdbuf();
  info.metadata_text = ss.str();
  return info;
}

}  // namespace vigil::scoring

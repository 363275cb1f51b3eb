// The model repository, laid out like Triton's:
//
//   <repository>/<name>/model.yaml        inputs (ordered), output, threshold, description
//   <repository>/<name>/<version>/model.pt TorchScript, one folder per integer version
//
// The highest version folder that holds a model.pt is served.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "scoring/model.h"

namespace vigil::scoring {

// Reads model.yaml and picks the version to serve (the highest, or `version` when not empty).
// Every problem found (missing file, missing key, wrong type, no version) is listed in the
// error, one per line.
Result<ModelInfo> load_model_info(const std::string& repository, const std::string& name,
                                  const std::string& version = "");

// The scoring models in the repository, by name (ascending): folders with a model.yaml and at
// least one version with a model.pt, except recommenders (model.yaml `kind: recommender`).
std::vector<std::string> list_scoring_models(const std::string& repository);

// Integer version folders of a model that contain model.pt, ascending.
std::vector<int> list_model_versions(const std::string& repository, const std::string& name);

// A version folder's model.pt as last seen: the repository watcher loads a version only once
// its file has stayed the same (size and modification time) for a while, so a version being
// copied in is not loaded half-written.
struct VersionFile {
  int version = 0;
  uintmax_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const VersionFile& o) const {
    return version == o.version && size == o.size && mtime_ns == o.mtime_ns;
  }
};
std::vector<VersionFile> scan_model_versions(const std::string& repository,
                                             const std::string& name);

}  // namespace vigil::scoring

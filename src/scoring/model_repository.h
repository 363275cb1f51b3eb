// The model repository, laid out like Triton's:
//
//   <repository>/<name>/model.yaml        inputs (ordered), output, threshold, description
//   <repository>/<name>/<version>/model.pt TorchScript, one folder per integer version
//
// The highest version folder that holds a model.pt is served.
#pragma once

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

// Integer version folders of a model that contain model.pt, ascending.
std::vector<int> list_model_versions(const std::string& repository, const std::string& name);

}  // namespace vigil::scoring

// Files other processes read while vigil runs (the bound HTTP port, the embedded cluster's
// address): written to a temporary name and renamed into place, so a reader sees the old
// content or the new, never half of it.
#pragma once

#include <string>

#include "common/status.h"

namespace vigil {

Status write_file_atomically(const std::string& path, const std::string& content);

}  // namespace vigil

#include "common/files.h"

#include <filesystem>
#include <fstream>

namespace vigil {

Status write_file_atomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    if (!(f << content) || !f.flush()) return Status::Error("cannot write '" + tmp + "'");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::Error("cannot write '" + path + "': " + ec.message());
  return Status::Ok();
}

}  // namespace vigil

#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace vigil {

std::shared_ptr<spdlog::logger> logger(const std::string& name) {
  if (auto l = spdlog::get(name)) return l;
  try {
    return spdlog::stderr_color_mt(name);
  } catch (const spdlog::spdlog_ex&) {  // created concurrently by another thread
    return spdlog::get(name);
  }
}

}  // namespace vigil

#include "app/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace vigil {

void init_logging(const std::string& level) {
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  spdlog::set_level(spdlog::level::from_str(level));
}

std::shared_ptr<spdlog::logger> logger(const std::string& name) {
  if (auto l = spdlog::get(name)) return l;
  try {
    return spdlog::stderr_color_mt(name);
  } catch (const spdlog::spdlog_ex&) {  // created concurrently by another thread
    return spdlog::get(name);
  }
}

}  // namespace vigil

#include "app/logging.h"

#include <spdlog/spdlog.h>

namespace vigil {

void init_logging(const std::string& level) {
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace vigil

// Named spdlog loggers shared by the components ("vigil", "kafka", "redis", "http", ...).
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace vigil {

// Sets the global level and the pattern; safe to call more than once.
void init_logging(const std::string& level);

// A named logger writing to stderr (created on first use).
std::shared_ptr<spdlog::logger> logger(const std::string& name);

}  // namespace vigil

// The one way components get a logger: vigil::logger("kafka") returns the named spdlog logger
// (stderr, created on first use, shared by every caller of that name). On per-record paths use
// a RateLimitedLog, which lets one line through per interval and says how many it held back.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "common/rate_limit.h"

namespace vigil {

std::shared_ptr<spdlog::logger> logger(const std::string& name);

class RateLimitedLog {
 public:
  RateLimitedLog(std::string name, std::chrono::milliseconds every)
      : name_(std::move(name)), limit_(every) {}

  template <typename... Args>
  void log(spdlog::level::level_enum level, spdlog::format_string_t<Args...> format,
           Args&&... args) {
    uint64_t suppressed = 0;
    if (!limit_.allow(suppressed)) return;
    auto l = logger(name_);
    l->log(level, format, std::forward<Args>(args)...);
    if (suppressed > 0) l->log(level, "({} similar lines suppressed before this one)", suppressed);
  }
  template <typename... Args>
  void warn(spdlog::format_string_t<Args...> format, Args&&... args) {
    log(spdlog::level::warn, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void error(spdlog::format_string_t<Args...> format, Args&&... args) {
    log(spdlog::level::err, format, std::forward<Args>(args)...);
  }

 private:
  const std::string name_;
  RateLimit limit_;
};

}  // namespace vigil

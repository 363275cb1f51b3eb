// The one way components get a logger: vigil::logger("kafka") returns the named spdlog logger
// (stderr, created on first use, shared by every caller of that name). On per-record paths use
// a RateLimitedLog, which lets one line through per interval and says how many it held back.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/rate_limit.h"

namespace vigil {

std::shared_ptr<spdlog::logger> logger(const std::string& name);

// `s` made safe to log when it comes from outside (a request target, a header, a transaction
// id, an error message quoting them): control characters (below 0x20, and 0x7f) become \n, \r,
// \t or \xHH and a backslash becomes \\, so that such text can neither end the log line and
// forge the next one nor send terminal escapes. Other bytes (UTF-8 included) pass as they are.
// Allocates: for error and debug paths.
std::string log_escape(std::string_view s);

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

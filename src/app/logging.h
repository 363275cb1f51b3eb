// The process's logging set-up; components get their loggers from common/log.h.
#pragma once

#include <memory>
#include <string>

#include "common/log.h"

namespace vigil {

// Sets the global level and the pattern; safe to call more than once.
void init_logging(const std::string& level);

}  // namespace vigil

// mode=serve: the streaming service (Kafka in, Kafka + Redis out, HTTP side-port).
#pragma once

#include "config/app_config.h"

namespace vigil::app {

// Runs until SIGTERM/SIGINT; returns the process exit code.
int run_service(const config::AppConfig& config);

}  // namespace vigil::app

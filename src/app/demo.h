// mode=demo: scores a sample of transactions through the real queue, batcher and model and
// prints a summary. No Kafka, Redis or HTTP involved.
#pragma once

#include "config/app_config.h"

namespace vigil::app {

int run_demo(const config::AppConfig& config);

}  // namespace vigil::app

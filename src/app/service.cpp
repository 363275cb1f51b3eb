#include "app/service.h"

#include "app/logging.h"

namespace vigil::app {

int run_service(const config::AppConfig&) {
  logger("vigil")->error("mode=serve is not available yet; use --mode=demo");
  return 1;
}

}  // namespace vigil::app

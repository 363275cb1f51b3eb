#include "http/http_config.h"

namespace vigil::http {

std::vector<std::string> HttpConfig::validate() const {
  std::vector<std::string> e;
  if (!enabled) return e;
  if (port < 0 || port > 65535) e.push_back("http.port must be within [0, 65535]");
  if (threads < 1 || threads > 64) e.push_back("http.threads must be within [1, 64]");
  if (max_body_bytes < 256) e.push_back("http.max_body_bytes must be >= 256");
  if (max_connections < 1) e.push_back("http.max_connections must be >= 1");
  if (header_timeout.count() < 1) e.push_back("http.header_timeout_ms must be >= 1");
  if (read_timeout.count() < 1) e.push_back("http.read_timeout_ms must be >= 1");
  if (idle_timeout.count() < 1) e.push_back("http.idle_timeout_ms must be >= 1");
  if (request_timeout.count() < 1) e.push_back("http.request_timeout_ms must be >= 1");
  if (!admin_token.empty() && admin_token == auth_token)
    e.push_back("http.admin_token must differ from http.auth_token");
  if (max_instances < 1) e.push_back("http.max_instances must be >= 1");
  if (events_interval.count() < 50 || events_interval.count() > 60000)
    e.push_back("http.events_interval_ms must be within [50, 60000]");
  if (max_event_subscribers > 1024) e.push_back("http.max_event_subscribers must be <= 1024");
  return e;
}

}  // namespace vigil::http

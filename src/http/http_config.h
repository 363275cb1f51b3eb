// Configuration of the HTTP side-port (keys http.*).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/config_fields.h"

namespace vigil::http {

struct HttpConfig {
  bool enabled = true;
  std::string address = "0.0.0.0";
  int port = 8080;                                  // 0 = ephemeral, written to port_file
  std::string port_file;                            // where the bound port is written; empty = none
  int threads = 1;                                  // io_context threads
  size_t max_body_bytes = 1 << 20;                  // larger bodies get 413
  size_t max_connections = 1024;                    // at the cap, see the field's description
  std::chrono::milliseconds header_timeout{5000};   // a request's header must arrive within
  std::chrono::milliseconds read_timeout{10000};    // whole request must arrive within
  std::chrono::milliseconds idle_timeout{60000};    // keep-alive idle limit
  std::chrono::milliseconds request_timeout{5000};  // scoring must answer within
  size_t max_instances = 4096;                      // instances per request
  std::string auth_token;                           // secret; empty = no auth on scoring routes
  std::string auth_token_file;                      // read the token from this file
  std::string admin_token;                          // secret; empty = repository routes off (403)
  std::string admin_token_file;                     // read the admin token from this file
  bool publish_scores = false;  // HTTP-scored transactions also go to the scores topic
  std::chrono::milliseconds events_interval{1000};  // live view: one update per interval
  size_t max_event_subscribers = 16;  // live view: /v1/events streams at once; 0 = off

  std::vector<std::string> validate() const;

  template <typename V>
  void fields(V& v) {
    v("enabled", enabled, "", "serve the HTTP side-port");
    v("address", address, "", "address the HTTP side-port binds");
    v("port", port, "", "HTTP port (0 = ephemeral, see http.port_file)");
    v("port_file", port_file, "", "file the bound HTTP port is written to; empty = none");
    v("threads", threads, "threads", "HTTP io_context threads");
    v("max_body_bytes", max_body_bytes, "bytes", "larger request bodies get 413");
    v("max_connections", max_connections, "connections",
      "concurrent connections at most; at the cap a new connection displaces the oldest one that "
      "has not sent a whole request header yet (closed at once), else it is closed at once");
    v("header_timeout_ms", header_timeout, "ms",
      "a new connection must send a whole request header within this (a keep-alive one: from "
      "the request's first byte), else it is closed");
    v("read_timeout_ms", read_timeout, "ms", "a request must arrive whole within this");
    v("idle_timeout_ms", idle_timeout, "ms", "keep-alive connections idle longer are closed");
    v("request_timeout_ms", request_timeout, "ms", "scoring must answer within this, else 503");
    v("max_instances", max_instances, "instances", "instances per scoring request at most");
    v("auth_token", auth_token, "",
      "bearer token required on the scoring routes, score lookups and the live view's stream "
      "(secret)",
      config::FieldFlag::kSecret);
    v("auth_token_file", auth_token_file, "", "file holding the bearer token");
    v("admin_token", admin_token, "",
      "bearer token required on the repository routes (/v2/repository/...: index, load, "
      "unload), which answer 403 while it is empty (secret; must differ from http.auth_token)",
      config::FieldFlag::kSecret);
    v("admin_token_file", admin_token_file, "", "file holding the admin bearer token");
    v("publish_scores", publish_scores, "",
      "also send /predict instances that carry a transaction_id to the scores topic, like "
      "streamed ones (Redis gets them either way), so every scored transaction can be audited");
    v("events_interval_ms", events_interval, "ms",
      "live view (GET / and GET /v1/events): one update of the figures per interval");
    v("max_event_subscribers", max_event_subscribers, "streams",
      "live view: /v1/events streams open at once (more get 503); 0 = live view off");
  }
};

}  // namespace vigil::http

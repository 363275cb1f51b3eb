// Configuration of the HTTP side-port (keys http.*).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace vigil::http {

struct HttpConfig {
  bool enabled = true;
  std::string address = "0.0.0.0";
  int port = 8080;                                  // 0 = ephemeral, written to port_file
  std::string port_file;                            // where the bound port is written; empty = none
  int threads = 1;                                  // io_context threads
  size_t max_body_bytes = 1 << 20;                  // larger bodies get 413
  size_t max_connections = 1024;                    // further connections are closed at once
  std::chrono::milliseconds read_timeout{10000};    // whole request must arrive within
  std::chrono::milliseconds idle_timeout{60000};    // keep-alive idle limit
  std::chrono::milliseconds request_timeout{5000};  // scoring must answer within
  size_t max_instances = 4096;                      // instances per request
  std::string auth_token;                           // secret; empty = no auth on scoring routes
  std::string auth_token_file;                      // read the token from this file

  std::vector<std::string> validate() const;
};

}  // namespace vigil::http

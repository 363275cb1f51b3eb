// HttpServer: the HTTP side-port (Boost.Beast on Boost.Asio). Owns the io_context threads, the
// listening socket and the connections; request -> response logic is the Router's.
//
// Per connection: HTTP/1.1 keep-alive and pipelining. Requests are read ahead while earlier ones
// are being scored (so a pipelining client's rows can share a batch), at most
// kMaxPipelinedRequests at once, and answered in order. Bounds:
//   http.max_body_bytes     enforced by the parser: a Content-Length over it is refused with 413
//                           from the headers alone, a chunked body as soon as it passes it
//   16 KiB + 4 KiB          what a connection buffers unparsed: a request header over 16 KiB, or
//                           a chunk-size line (with extensions) or trailer that does not end
//                           within the buffer, is answered 400 and the connection closed
//   http.header_timeout_ms  a new connection must send a whole request header within it of its
//                           accept (a keep-alive one: of the request's first byte), else it is
//                           closed (an idle socket does not hold a slot for long)
//   http.read_timeout_ms    a request (headers + body) must arrive whole within it, else the
//                           connection is closed (a client trickling its body is cut off); also
//                           bounds writing each response
//   http.idle_timeout_ms    a keep-alive connection with nothing in flight is closed after it
//   http.request_timeout_ms a request not answered within it gets 503 + Retry-After; the
//                           late completion is then ignored
//   http.max_connections    at the cap, a new connection displaces the oldest connection that
//                           has not sent a whole request header yet; when there is none, the
//                           new one is closed at once (both counted)
//
// Threads: start() launches http.threads io threads; stop() (or the destructor) joins them.
// Every method is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "common/status.h"
#include "http/http_config.h"
#include "http/http_deps.h"

namespace vigil::http {

class Router;
class HttpStats;

inline constexpr size_t kMaxPipelinedRequests = 16;  // per connection, read but not yet answered

class HttpServer {
 public:
  HttpServer(const HttpConfig& config, HttpDeps deps);
  ~HttpServer();  // stop(0)
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds http.address:http.port (0 = an ephemeral port), writes the bound port to
  // http.port_file when set, and starts the io threads. An error names the address or file.
  // Call once.
  Status start();

  // The bound port (0 before start()).
  uint16_t port() const;

  // First phase of shutdown: scoring routes answer 503 + Retry-After and readiness fails, while
  // everything else (and requests already queued) keeps being served. Idempotent.
  void begin_shutdown();

  // Second phase: stops accepting, lets each connection finish the requests it has already read
  // (their responses say Connection: close), waits for them up to `grace`, then closes what is
  // left and joins the io threads. Late scoring completions are dropped harmlessly. Implies
  // begin_shutdown(). Idempotent; blocks until joined.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));

  Router& router();
  const HttpStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::http

// A blocking HTTP/1.1 test client on one TCP connection (Boost.Beast), with a deadline on every
// operation so that a test fails instead of hanging. Also sends raw bytes, for pipelining,
// trickling and malformed-request tests. Not thread-safe: one per test thread.
// The Beast stream and its read/write operations live in http_client.cpp, compiled once: a
// test that includes this header does not instantiate them again (~40 s of compile per test
// under ASan).
#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil::testing {

class HttpClient {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;
  using Headers = std::vector<std::pair<std::string, std::string>>;

  // Connects to 127.0.0.1:port; a failure is kept in connect_error().
  explicit HttpClient(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // The connect error, if any.
  boost::beast::error_code connect_error() const;

  static Request make(boost::beast::http::verb method, std::string target, std::string body = {},
                      const Headers& headers = {});
  // The request as it goes on the wire (for pipelined bursts sent with write_raw).
  static std::string wire(const Request& req);

  boost::beast::error_code write(const Request& req);
  boost::beast::error_code write_raw(std::string_view bytes);

  // Reads one response; an error (eof, timeout, reset) leaves `out` unspecified. A timeout of
  // 0 is the client's.
  boost::beast::error_code read(Response& out,
                                std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  // Appends raw bytes to `into` until it holds `delimiter` (or the client's timeout passes).
  boost::beast::error_code read_until(std::string& into, std::string_view delimiter);

  // write + read; an error is reported as status 0 with the error text as body.
  Response request(boost::beast::http::verb method, std::string target, std::string body = {},
                   const Headers& headers = {});

  // Waits up to `within` for the server to close the connection (EOF or reset), discarding
  // what arrives. True if it closed, false if it was still open at the deadline.
  bool wait_closed(std::chrono::milliseconds within);

  // Closes the connection from this side.
  void close();

 private:
  struct Connection;
  std::unique_ptr<Connection> conn_;
};

}  // namespace vigil::testing

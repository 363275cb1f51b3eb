// A blocking HTTP/1.1 test client on one TCP connection (Boost.Beast), with a deadline on every
// operation so that a test fails instead of hanging. Also sends raw bytes, for pipelining,
// trickling and malformed-request tests. Not thread-safe: one per test thread.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
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

  explicit HttpClient(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(10))
      : timeout_(timeout) {
    namespace net = boost::asio;
    stream_.expires_after(timeout_);
    stream_.async_connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                          [this](boost::beast::error_code ec) { connect_error_ = ec; });
    run();
  }

  // The connect error, if any.
  boost::beast::error_code connect_error() const { return connect_error_; }

  static Request make(boost::beast::http::verb method, std::string target, std::string body = {},
                      const Headers& headers = {}) {
    Request req{method, target, 11};
    req.set(boost::beast::http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method == boost::beast::http::verb::post) {
      req.set(boost::beast::http::field::content_type, "application/json");
      req.body() = std::move(body);
    }
    req.prepare_payload();
    return req;
  }

  boost::beast::error_code write(const Request& req) {
    boost::beast::error_code result;
    stream_.expires_after(timeout_);
    boost::beast::http::async_write(stream_, req,
                                    [&](boost::beast::error_code ec, size_t) { result = ec; });
    run();
    return result;
  }

  boost::beast::error_code write_raw(std::string_view bytes) {
    boost::beast::error_code result;
    stream_.expires_after(timeout_);
    boost::asio::async_write(stream_, boost::asio::buffer(bytes.data(), bytes.size()),
                             [&](boost::beast::error_code ec, size_t) { result = ec; });
    run();
    return result;
  }

  // Reads one response; an error (eof, timeout, reset) leaves `out` unspecified.
  boost::beast::error_code read(Response& out,
                                std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    boost::beast::error_code result;
    out = {};
    stream_.expires_after(timeout.count() > 0 ? timeout : timeout_);
    boost::beast::http::async_read(stream_, buffer_, out,
                                   [&](boost::beast::error_code ec, size_t) { result = ec; });
    run();
    return result;
  }

  // write + read; an error is reported as status 0 with the error text as body.
  Response request(boost::beast::http::verb method, std::string target, std::string body = {},
                   const Headers& headers = {}) {
    Response res;
    auto ec = write(make(method, std::move(target), std::move(body), headers));
    if (!ec) ec = read(res);
    if (ec) {
      res = {};
      res.result(0u);
      res.body() = "client error: " + ec.message();
    }
    return res;
  }

  // Waits up to `within` for the server to close the connection (EOF or reset), discarding
  // what arrives. True if it closed, false if it was still open at the deadline.
  bool wait_closed(std::chrono::milliseconds within) {
    const auto until = std::chrono::steady_clock::now() + within;
    char scratch[4096];
    for (;;) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= until) return false;
      boost::beast::error_code result;
      stream_.expires_after(until - now);
      stream_.async_read_some(boost::asio::buffer(scratch),
                              [&](boost::beast::error_code ec, size_t) { result = ec; });
      run();
      if (result == boost::beast::error::timeout) return false;
      if (result) return true;  // eof, reset
    }
  }

  boost::beast::tcp_stream& stream() { return stream_; }

 private:
  void run() {
    ioc_.restart();
    ioc_.run();
  }

  std::chrono::milliseconds timeout_;
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_{ioc_};
  boost::beast::flat_buffer buffer_;
  boost::beast::error_code connect_error_;
};

}  // namespace vigil::testing

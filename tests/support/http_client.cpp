#include "support/http_client.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <sstream>

namespace vigil::testing {

namespace http = boost::beast::http;
using boost::beast::error_code;

struct HttpClient::Connection {
  explicit Connection(std::chrono::milliseconds t) : timeout(t) {}

  // Runs the operation just started to completion (or to the stream's deadline).
  void run() {
    ioc.restart();
    ioc.run();
  }

  std::chrono::milliseconds timeout;
  boost::asio::io_context ioc;
  boost::beast::tcp_stream stream{ioc};
  boost::beast::flat_buffer buffer;
  error_code connect_error;
};

HttpClient::HttpClient(uint16_t port, std::chrono::milliseconds timeout)
    : conn_(std::make_unique<Connection>(timeout)) {
  namespace net = boost::asio;
  conn_->stream.expires_after(conn_->timeout);
  conn_->stream.async_connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                              [this](error_code ec) { conn_->connect_error = ec; });
  conn_->run();
}

HttpClient::~HttpClient() = default;

error_code HttpClient::connect_error() const {
  return conn_->connect_error;
}

HttpClient::Request HttpClient::make(http::verb method, std::string target, std::string body,
                                     const Headers& headers) {
  Request req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || method == http::verb::post) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
  }
  req.prepare_payload();
  return req;
}

std::string HttpClient::wire(const Request& req) {
  std::ostringstream out;
  out << req;
  return out.str();
}

error_code HttpClient::write(const Request& req) {
  error_code result;
  conn_->stream.expires_after(conn_->timeout);
  http::async_write(conn_->stream, req, [&](error_code ec, size_t) { result = ec; });
  conn_->run();
  return result;
}

error_code HttpClient::write_raw(std::string_view bytes) {
  error_code result;
  conn_->stream.expires_after(conn_->timeout);
  boost::asio::async_write(conn_->stream, boost::asio::buffer(bytes.data(), bytes.size()),
                           [&](error_code ec, size_t) { result = ec; });
  conn_->run();
  return result;
}

error_code HttpClient::read(Response& out, std::chrono::milliseconds timeout) {
  error_code result;
  out = {};
  conn_->stream.expires_after(timeout.count() > 0 ? timeout : conn_->timeout);
  http::async_read(conn_->stream, conn_->buffer, out, [&](error_code ec, size_t) { result = ec; });
  conn_->run();
  return result;
}

error_code HttpClient::read_until(std::string& into, std::string_view delimiter) {
  error_code result;
  conn_->stream.expires_after(conn_->timeout);
  boost::asio::async_read_until(conn_->stream, boost::asio::dynamic_buffer(into),
                                std::string(delimiter),
                                [&](error_code ec, size_t) { result = ec; });
  conn_->run();
  return result;
}

HttpClient::Response HttpClient::request(http::verb method, std::string target, std::string body,
                                         const Headers& headers) {
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

bool HttpClient::wait_closed(std::chrono::milliseconds within) {
  const auto until = std::chrono::steady_clock::now() + within;
  char scratch[4096];
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return false;
    error_code result;
    conn_->stream.expires_after(until - now);
    conn_->stream.async_read_some(boost::asio::buffer(scratch),
                                  [&](error_code ec, size_t) { result = ec; });
    conn_->run();
    if (result == boost::beast::error::timeout) return false;
    if (result) return true;  // eof, reset
  }
}

void HttpClient::close() {
  conn_->stream.close();
}

}  // namespace vigil::testing

#include "http/responses.h"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/json.hpp>
#include <charconv>

#include "common/json_text.h"

#ifndef VIGIL_VERSION
#define VIGIL_VERSION "0.0.0"
#endif

namespace vigil::http {

namespace bhttp = boost::beast::http;
namespace json = boost::json;

const char* server_version() {
  return VIGIL_VERSION;
}

namespace {
constexpr const char* kRetryAfterSeconds = "1";
}  // namespace

Response make_response(unsigned status, std::string body, const char* content_type) {
  Response res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::server, "vigil/" VIGIL_VERSION);
  res.set(bhttp::field::content_type, content_type);
  res.body() = std::move(body);
  return res;
}

Response json_response(unsigned status, const json::value& v) {
  return make_response(status, json::serialize(v));
}

void append_wire(const Response& res, std::string& out) {
  const unsigned version = res.version();
  const unsigned status = res.result_int();
  const std::string_view reason = res.reason();
  size_t size = 32 + reason.size() + res.body().size();
  for (const auto& f : res) size += f.name_string().size() + f.value().size() + 4;
  out.reserve(out.size() + size);
  out += "HTTP/";
  out += static_cast<char>('0' + version / 10);
  out += '.';
  out += static_cast<char>('0' + version % 10);
  out += ' ';
  char code[3] = {static_cast<char>('0' + status / 100 % 10),
                  static_cast<char>('0' + status / 10 % 10), static_cast<char>('0' + status % 10)};
  out.append(code, sizeof code);
  out += ' ';
  out += reason;
  out += "\r\n";
  for (const auto& f : res) {
    out += f.name_string();
    out += ": ";
    out += f.value();
    out += "\r\n";
  }
  out += "\r\n";
  out += res.body();
}

void append_float(std::string& out, float f) {
  append_number(out, f);
}

double as_short_double(float f) {
  std::string s;
  append_float(s, f);
  return std::stod(s);
}

Response error_response(unsigned status, std::string_view message) {
  std::string body = "{\"error\":";
  append_json_string(body, std::string(message));
  body += '}';
  Response res = make_response(status, std::move(body));
  if (status == 503) res.set(bhttp::field::retry_after, kRetryAfterSeconds);
  return res;
}

unsigned http_status(const Status& error) {
  switch (error.code()) {
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kOk:
    case StatusCode::kUnknown:
    case StatusCode::kInternal:
      break;
  }
  return 500;
}

Response error_response(const Status& error) {
  return error_response(http_status(error), error.message());
}

}  // namespace vigil::http

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

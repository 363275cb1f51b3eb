// The side-port's response helpers: JSON and error responses, and float formatting, shared
// by the router's handlers and the scoring call.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/fwd.hpp>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace vigil::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
using Respond = std::function<void(Response)>;

inline constexpr const char* kJson = "application/json";

// vigil's version, as the Server header and /v2 say it.
const char* server_version();

Response make_response(unsigned status, std::string body, const char* content_type = kJson);
Response json_response(unsigned status, const boost::json::value& v);

// {"error": message} with `status`; 503 also gets Retry-After, 405 gets nothing extra (the
// caller sets Allow).
Response error_response(unsigned status, std::string_view message);
// The HTTP status for a failed Status, by its code (400, 404, 409, 503; anything else 500).
unsigned http_status(const Status& error);
// error_response(http_status(error), error.message()).
Response error_response(const Status& error);

// Appends `res` as it goes on the wire (status line, its fields in order, the blank line, the
// body): the bytes Beast's serializer writes for it, in one piece, so that an answer leaves in
// one send of one buffer. Call after prepare_payload().
void append_wire(const Response& res, std::string& out);

// The shortest text that reads back as `f` (std::to_chars).
void append_float(std::string& out, float f);
// The float as the double its shortest text denotes (0.98f -> 0.98, not 0.9800000190734863).
double as_short_double(float f);

}  // namespace vigil::http

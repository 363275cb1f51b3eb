// Percent-decoding (RFC 3986) with Boost.URL: one decoder for URL path segments, query values and
// the credentials of redis:// URLs, instead of hand-written ones.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace vigil {

// `s` with every %XX escape decoded; nullopt when an escape is malformed ('%' not followed by
// two hex digits). Every other character, '+' included, stays as it is.
std::optional<std::string> percent_decode(std::string_view s);

}  // namespace vigil

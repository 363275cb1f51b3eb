#include "common/percent.h"

#include <boost/url/pct_string_view.hpp>

namespace vigil {

std::optional<std::string> percent_decode(std::string_view s) {
  auto encoded = boost::urls::make_pct_string_view(s);
  if (!encoded) return std::nullopt;
  return encoded->decode();
}

}  // namespace vigil

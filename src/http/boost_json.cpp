// Boost.JSON is used header-only: its definitions are compiled here, once for the whole
// program. No other translation unit may include <boost/json/src.hpp>.
//
// GCC 12 with -fsanitize=address reports false -Warray-bounds / -Wstringop-overflow inside
// Boost.JSON's array relocation (a memmove it cannot prove in range); it is third-party code,
// so those warnings are silenced for this include only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#include <boost/json/src.hpp>
#pragma GCC diagnostic pop

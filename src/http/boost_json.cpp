// Boost.JSON is used header-only: its definitions are compiled here, once for the whole
// program. No other translation unit may include <boost/json/src.hpp>.
//
// GCC 12 with -fsanitize=address reports false -Warray-bounds / -Wstringop-overflow inside
// Boost.JSON's array relocation (a memmove it cannot prove in range); it is third-party code,
// so those warnings are silenced for this include only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
#include <boost/json/src.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

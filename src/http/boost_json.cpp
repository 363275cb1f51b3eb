// Boost.JSON is used header-only: its definitions are compiled here, once for the whole
// program. No other translation unit may include <boost/json/src.hpp>.
#include <boost/json/src.hpp>

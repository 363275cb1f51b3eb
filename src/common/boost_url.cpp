// Boost.URL is used header-only: its definitions are compiled here, once for the whole program.
// No other translation unit may include <boost/url/src.hpp>.
#include <boost/url/src.hpp>

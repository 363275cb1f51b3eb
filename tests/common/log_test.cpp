// log_escape: text from outside can neither end a log line nor send terminal escapes.
#include "common/log.h"

#include <gtest/gtest.h>

#include <string>

namespace vigil {
namespace {

TEST(LogEscape, ControlCharactersCannotForgeALogLine) {
  EXPECT_EQ(log_escape("t-1\n[2024-01-01 00:00:00] [http] [info] forged"),
            "t-1\\n[2024-01-01 00:00:00] [http] [info] forged");
  EXPECT_EQ(log_escape("a\rb\tc"), "a\\rb\\tc");
  EXPECT_EQ(log_escape(std::string("nul\0end", 7)), "nul\\x00end");
  EXPECT_EQ(log_escape("\x1b[31mred\x7f"), "\\x1b[31mred\\x7f");
  EXPECT_EQ(log_escape("\x01\x1f"), "\\x01\\x1f");
}

TEST(LogEscape, BackslashesAreDoubledSoEscapesStayUnambiguous) {
  EXPECT_EQ(log_escape("a\\nb"), "a\\\\nb");  // a literal backslash-n, not a newline
}

TEST(LogEscape, PrintableTextAndUtf8PassUnchanged) {
  EXPECT_EQ(log_escape(""), "");
  EXPECT_EQ(log_escape("POST /predict?x=1 \"quoted\" caf\xc3\xa9 ~"),
            "POST /predict?x=1 \"quoted\" caf\xc3\xa9 ~");
}

}  // namespace
}  // namespace vigil

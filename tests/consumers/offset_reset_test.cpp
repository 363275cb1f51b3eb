// parse_offset_reset: the records librdkafka skips on an offset reset, read from its log line.
#include <gtest/gtest.h>

#include "consumers/kafka_source.h"

namespace vigil::consumers {
namespace {

TEST(OffsetReset, ReadsThePartitionTheSkippedRangeAndTheCauseFromLibrdkafkasLine) {
  // As librdkafka 2.0.2 logged it when the mock's retention removed unread records.
  const auto r = parse_offset_reset(
      "transactions12 [3]: offset reset (at offset 3500, broker 3) to cached BEGINNING offset "
      "10625: fetch failed due to requested offset not available on the broker: Broker: Offset "
      "out of range");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->partition, 3);
  EXPECT_EQ(r->from, 3500);
  EXPECT_EQ(r->to, 10625);
  EXPECT_EQ(r->why,
            "fetch failed due to requested offset not available on the broker: Broker: Offset out "
            "of range");
}

TEST(OffsetReset, ATopicNameWithBracketsAndAResetWithoutCacheAreRead) {
  const auto r = parse_offset_reset(
      "in[x] [12]: offset reset (at offset 7, broker 1) to BEGINNING offset 9: gone");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->partition, 12);
  EXPECT_EQ(r->from, 7);
  EXPECT_EQ(r->to, 9);
}

TEST(OffsetReset, OtherOffsetLinesAreNotResets) {
  EXPECT_FALSE(parse_offset_reset("transactions [0]: offset reset (at offset INVALID, broker 1) "
                                  "to BEGINNING: no previously committed offset")
                   .has_value());
  EXPECT_FALSE(parse_offset_reset("transactions [0]: fetch from offset 12").has_value());
  EXPECT_FALSE(parse_offset_reset("").has_value());
}

}  // namespace
}  // namespace vigil::consumers

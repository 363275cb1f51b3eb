#include "common/byte_buffer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace vigil {
namespace {

TEST(ByteBuffer, KeepsWhatWasAppendedThroughGrowth) {
  ByteBuffer b;
  std::string expected;
  for (int i = 0; i < 1000; ++i) {
    const std::string piece = std::to_string(i) + ",";
    b.append(piece);
    expected += piece;
  }
  EXPECT_EQ(b.view(), expected);
  EXPECT_GE(b.capacity(), b.size());
}

TEST(ByteBuffer, RoomTakenByItsBoundIsGivenBackAfterWriting) {
  ByteBuffer b;
  b.append("key");
  char* p = b.grow(100);
  EXPECT_EQ(b.size(), 103u);
  std::memcpy(p, "value", 5);
  b.trim(p + 5);
  EXPECT_EQ(b.view(), "keyvalue");
  // Room taken past the capacity moves the contents; what was written stays.
  p = b.grow(b.capacity() + 1);
  std::memcpy(p, "!", 1);
  b.trim(p + 1);
  EXPECT_EQ(b.view(), "keyvalue!");
}

TEST(ByteBuffer, ClearKeepsTheBufferForReuse) {
  ByteBuffer b;
  b.append(std::string(5000, 'x'));
  const size_t capacity = b.capacity();
  const char* data = b.data();
  b.clear();
  EXPECT_EQ(b.size(), 0u);
  b.append(std::string(4000, 'y'));
  EXPECT_EQ(b.capacity(), capacity);
  EXPECT_EQ(b.data(), data);
  EXPECT_EQ(b.view(), std::string(4000, 'y'));
}

}  // namespace
}  // namespace vigil

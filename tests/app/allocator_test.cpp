#include "app/allocator.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdlib>
#include <cstring>

// Single-threaded: setenv and unsetenv race with nothing.
// NOLINTBEGIN(concurrency-mt-unsafe)
namespace vigil::app {
namespace {

TEST(Allocator, KeepsAMiBBlockInTheHeapInsteadOfAFreshMapping) {
  ::unsetenv("GLIBC_TUNABLES");
  const std::string what = tune_allocator();
  if (what.find("refused") != std::string::npos) {
    GTEST_SKIP() << "this build's allocator takes no mallopt (a sanitizer's): " << what;
  }
  EXPECT_EQ(what, "malloc: mmap threshold 32 MiB, trim threshold 64 MiB");
  // glibc's own threshold starts at 128 KiB: a first 4 MiB block would be a mapping of its own.
  const size_t mapped_before = mallinfo2().hblks;
  void* block = std::malloc(4 << 20);
  ASSERT_NE(block, nullptr);
  std::memset(block, 1, 4 << 20);
  EXPECT_EQ(mallinfo2().hblks, mapped_before);
  std::free(block);
  // Nor is the freed block handed back: the heap keeps it for the next one.
  const size_t heap_after_free = mallinfo2().arena;
  void* again = std::malloc(4 << 20);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(mallinfo2().arena, heap_after_free);
  std::free(again);
}

TEST(Allocator, LeavesGlibcsTunablesToAnOperatorWhoSetThem) {
  ::setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2", 1);
  EXPECT_EQ(tune_allocator(), "malloc: GLIBC_TUNABLES set, glibc's malloc tunables as given");
  ::unsetenv("GLIBC_TUNABLES");
}

}  // namespace
}  // namespace vigil::app
// NOLINTEND(concurrency-mt-unsafe)

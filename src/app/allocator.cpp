#include "app/allocator.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace vigil::app {

namespace {

// Blocks up to this size come from the heap, not from a fresh mmap each: librdkafka's message
// sets, compression buffers and fetch responses, and the delivery stage's batch buffers, reach
// hundreds of KiB to MiB. glibc's own default starts at 128 KiB and only rises as such blocks
// are freed; 32 MiB is the most it would rise to.
constexpr int kMmapThreshold = 32 * 1024 * 1024;
// Free memory at the top of a heap is handed back to the kernel only above this. glibc's default
// (twice the dynamic mmap threshold, 256 KiB at first) handed back, and page-faulted in again,
// the buffers of every produce and fetch: measured with perf in stream_bench --velocity
// --deployed, page faults under sysmalloc, memcpy and memset were 11% of vigil's CPU, and vigil's
// CPU per event fell 10-20% with these two settings. A thread's heap (its arena) is 64 MiB at
// most, so this keeps a busy thread's heap whole; RSS stays at its high-water mark, flat.
constexpr int kTrimThreshold = 64 * 1024 * 1024;

}  // namespace

// Called first in main, before any other thread exists: getenv and mallopt race with nothing.
// NOLINTBEGIN(concurrency-mt-unsafe)
std::string tune_allocator() {
#ifdef __GLIBC__
  if (const char* t = std::getenv("GLIBC_TUNABLES");
      t != nullptr && std::strstr(t, "glibc.malloc.")) {
    return "malloc: GLIBC_TUNABLES set, glibc's malloc tunables as given";
  }
  const bool ok = mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 &&
                  mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
  return ok ? "malloc: mmap threshold 32 MiB, trim threshold 64 MiB"
            : "malloc: mallopt refused the thresholds, glibc's defaults kept";
#else
  return "malloc: not glibc, its defaults kept";
#endif
}
// NOLINTEND(concurrency-mt-unsafe)

}  // namespace vigil::app

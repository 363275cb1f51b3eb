// glibc malloc's settings for a long-running scorer.
#pragma once

#include <string>

namespace vigil::app {

// Fixes glibc's mmap and trim thresholds so that memory freed on the per-record paths stays in
// the heap (see allocator.cpp); none of it where GLIBC_TUNABLES sets a glibc.malloc.* tunable
// (the operator's choice wins). Returns what it did, for the start-up log. Call it first in
// main, before any thread starts.
std::string tune_allocator();

}  // namespace vigil::app

#!/usr/bin/env bash
# Builds vigil and runs its tests: the release suite (unit + integration), the concurrency
# tests under ThreadSanitizer, and the unit + integration suites under ASan+UBSan.
# Installs missing Debian packages first. Usage: scripts/test.sh [--fast] (--fast: release only)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

JOBS=${JOBS:-$(nproc)}
fast=0
[ "${1:-}" = "--fast" ] && fast=1

step() { printf '\n=== %s ===\n' "$*"; }

step "release build"
cmake --preset release >/dev/null
cmake --build --preset release -j "$JOBS"
step "release tests"
ctest --preset release -j "$JOBS"

if [ "$fast" = 0 ]; then
  step "ThreadSanitizer build (concurrency tests)"
  cmake --preset tsan >/dev/null
  cmake --build --preset tsan -j "$JOBS" --target vigil_concurrency_tests
  step "ThreadSanitizer tests"
  ctest --preset tsan -j "$JOBS"

  step "ASan+UBSan build"
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$JOBS"
  step "ASan+UBSan tests"
  ctest --preset asan -j "$JOBS"
fi
echo
echo "scripts/test.sh: all test passes green"

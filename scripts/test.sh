#!/usr/bin/env bash
# Builds vigil and runs its tests: the release suite (unit + integration, then the
# process-level fault tests), the concurrency tests under ThreadSanitizer, the unit +
# integration suites under ASan+UBSan, and each libFuzzer target for a bounded time.
# Installs missing Debian packages first. Usage: scripts/test.sh [--fast] (--fast: release only)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

JOBS=${JOBS:-$(nproc)}
fast=0
[ "${1:-}" = "--fast" ] && fast=1

step() { printf '\n=== %s ===\n' "$*"; }

step "style (clang-format, as committed in .clang-format)"
git ls-files -- '*.cpp' '*.h' | xargs clang-format --dry-run --Werror
echo "clang-format: $(git ls-files -- '*.cpp' '*.h' | wc -l) files formatted"

step "release build"
cmake --preset release >/dev/null
cmake --build --preset release -j "$JOBS"
step "clang-tidy (the checks in .clang-tidy, on src/; any finding fails)"
run-clang-tidy -p build/release -quiet -j "$JOBS" "$PWD/src/.*\.cpp\$" > build/release/clang-tidy.log 2>&1 || {
  grep -E "(warning|error):" build/release/clang-tidy.log | sort -u
  echo "clang-tidy: findings above (full log: build/release/clang-tidy.log)"
  exit 1
}
echo "clang-tidy: $(git ls-files 'src/*.cpp' | wc -l) files, no finding"

step "release tests"
ctest --preset release -j "$JOBS" -LE faults
step "fault tests (processes killed for real; run one at a time)"
export VIGIL_FAULTS_SUMMARY="$PWD/build/release/faults-summary.txt"
rm -f "$VIGIL_FAULTS_SUMMARY"
ctest --preset release -L faults -j 1
echo "fault test summary (by transaction id):"
cat "$VIGIL_FAULTS_SUMMARY"

if [ "$fast" = 0 ]; then
  step "ThreadSanitizer build (concurrency tests)"
  cmake --preset tsan >/dev/null
  cmake --build --preset tsan -j "$JOBS" --target vigil_concurrency_tests
  step "ThreadSanitizer tests"
  ctest --preset tsan -j "$JOBS"

  step "ASan+UBSan build"
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$JOBS" --target vigil_sanitized_tests
  step "ASan+UBSan tests"
  # One at a time: the integration tests are timing-driven and ASan slows them several-fold;
  # with two running together a clean-stop test once saw 582 records scored again (not yet
  # explained; the test now says whether duplicates were replays or produce retries).
  ctest --preset asan -j 1

  step "fuzzing (libFuzzer + ASan/UBSan, bounded time per target)"
  FUZZ_SECONDS=${FUZZ_SECONDS:-30} bash scripts/fuzz.sh
fi
echo
echo "scripts/test.sh: all test passes green"

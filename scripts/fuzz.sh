#!/usr/bin/env bash
# Builds vigil's libFuzzer targets (fuzz/, clang + ASan + UBSan) in build/fuzz and runs each for
# a bounded time on a temporary copy of its committed corpus (fuzz/corpus/<target>), so the
# repository is never modified. Exits non-zero if any target crashes, leaks, times out or trips
# a sanitizer; the input that did it is kept under build/fuzz/crashes/<target>/.
#
# Usage: scripts/fuzz.sh [target ...]        (default: all three)
#   FUZZ_SECONDS=30   seconds per target
#   JOBS=$(nproc)     build parallelism
# Reproduce a crash: build/fuzz/fuzz/<target> build/fuzz/crashes/<target>/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
JOBS=${JOBS:-$(nproc)}
BUILD=build/fuzz
ALL_TARGETS=(fuzz_event_decoder fuzz_http_router fuzz_config_loader)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${ALL_TARGETS[@]}")

# Per target: the longest input (bytes) and the dictionary. The decoder's limit is above the
# event size cap it is built with (2048), so oversized records are tried too.
declare -A MAX_LEN=([fuzz_event_decoder]=4096 [fuzz_http_router]=8192 [fuzz_config_loader]=4096)
declare -A DICT=([fuzz_event_decoder]=fuzz/json.dict [fuzz_http_router]=fuzz/json.dict
                 [fuzz_config_loader]=fuzz/config_loader.dict)

for t in "${targets[@]}"; do
  if [ -z "${MAX_LEN[$t]:-}" ]; then
    echo "fuzz.sh: unknown target '$t' (known: ${ALL_TARGETS[*]})" >&2
    exit 2
  fi
done
if ! command -v clang++ >/dev/null || ! command -v clang >/dev/null; then
  echo "fuzz.sh: clang is missing; run scripts/install-deps.sh" >&2
  exit 2
fi

start=$SECONDS
# The libraries the targets link are instrumented too (coverage, ASan, UBSan): the flags go in
# CMAKE_CXX_FLAGS. vigil's code is written against GCC's warnings; clang-only warnings in it
# stay warnings here instead of failing the fuzz build under -Werror.
SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CLANG_ONLY="-Wno-error=unused-private-field -Wno-error=unknown-warning-option"
CLANG_ONLY+=" -Wno-error=gnu-statement-expression"
mkdir -p "$BUILD"
if ! CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DVIGIL_FUZZ=ON -DVIGIL_BUILD_TESTS=OFF \
      -DVIGIL_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS="$SAN $CLANG_ONLY" >"$BUILD/configure.log" 2>&1; then
  cat "$BUILD/configure.log" >&2
  echo "fuzz.sh: configure failed" >&2
  exit 1
fi
if ! cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]}" >"$BUILD/build.log" 2>&1; then
  grep -E "error|FAILED" "$BUILD/build.log" | head -40 >&2
  echo "fuzz.sh: build failed (full log: $BUILD/build.log)" >&2
  exit 1
fi
echo "fuzz.sh: built ${targets[*]} in $((SECONDS - start)) s"

work=$(mktemp -d "${TMPDIR:-/tmp}/vigil-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Symbolized reports: Debian's llvm-14 puts llvm-symbolizer on PATH only with the `llvm` package.
if ! command -v llvm-symbolizer >/dev/null && [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi

failed=()
for t in "${targets[@]}"; do
  corpus="$work/$t"
  cp -r "fuzz/corpus/$t" "$corpus"
  crashes="$BUILD/crashes/$t"
  mkdir -p "$crashes"
  log="$BUILD/$t.log"
  rc=0
  # -timeout: one input running longer than this is a hang (the router waits 10 s at most).
  "$BUILD/fuzz/$t" "$corpus" -dict="${DICT[$t]}" -max_len="${MAX_LEN[$t]}" \
    -max_total_time="$FUZZ_SECONDS" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$crashes/" </dev/null >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  if [ "$rc" -eq 0 ]; then
    echo "$t: ${runs:-?} runs in ${secs:-$FUZZ_SECONDS} s, no crash"
  else
    artifact=$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$log" | tail -1)
    echo "$t: CRASH after ${runs:-?} runs (exit $rc)"
    echo "    input: ${artifact:-see the log}; log: $log"
    grep -aE "ERROR|SUMMARY|^fuzz_|runtime error|terminate called|what\(\)" "$log" |
      head -8 | sed 's/^/    /'
    failed+=("$t")
  fi
done

echo "fuzz.sh: ${#targets[@]} targets, ${FUZZ_SECONDS} s each, $((SECONDS - start)) s in all"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi

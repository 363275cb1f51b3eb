#!/usr/bin/env bash
# Runs every benchmark in one go and regenerates BENCHMARKS.md from what they printed:
#   1. scoring_bench   the model path (queue -> batcher -> model) against a raw forward, the
#                      default model and a 256-256 one trained for the run; lifecycle costs
#   2. stream_bench    Kafka -> vigil -> Kafka/Redis throughput against a bare consumer, a
#                      zero-work relay and the Python consumer; latency at offered rates: in
#                      one process, then --deployed (the broker and vigil in processes of
#                      their own, vigil's shipped config, a fair relay, Python in 1 and 2
#                      processes); then vigil's memory for 60 s offered more than it takes
#   3. http_bench.sh   POST /predict: vigil, nginx, FastAPI with 1 and 2 workers
#   4. velocity        features_bench (per-event cost, memory per customer, snapshot and
#                      ready-after-assignment with a 1M-customer state, through a real
#                      redis-server), then stream_bench --velocity --deployed (raw
#                      transactions with features computed against ready-made features,
#                      with and without the features logged in score records), and
#                      stream_bench --velocity --ready (a restarted instance's history
#                      ready after assignment, 1M customers); then stream_bench --velocity
#                      --terminal --deployed (fraud_terminal's customer and terminal features,
#                      Redis on, against the same 15 features ready-made)
#   5. http_bench.sh   ENDPOINT=recommend: POST /recommend against nginx
# then bench/make_benchmarks_md.py writes BENCHMARKS.md and the plots in docs/bench/ from the
# captured outputs (docs/bench/results/). About 20 minutes on a 2-core machine; uses the
# binaries already built in build/release (it builds nothing).
#
#   bench/run_all.sh            # the real run: rewrites BENCHMARKS.md and docs/bench/
#   QUICK=1 bench/run_all.sh    # seconds-long cells into /tmp/vigil-bench-quick, to try the
#                               # pipeline; OUT=dir and MD=file choose where either way
# A real run refuses a tree with uncommitted changes, or binaries not built from it (DIRTY=1
# runs anyway, and BENCHMARKS.md then says so in bold at the top).
#   /usr/bin/python3 bench/make_benchmarks_md.py --results docs/bench/results \
#       --plots docs/bench --out BENCHMARKS.md      # regenerate from the captured outputs
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"  # every command runs from the repository root, as BENCHMARKS.md prints it
PYTHON=/usr/bin/python3
QUICK=${QUICK:-}
if [[ -n $QUICK ]]; then
  OUT=${OUT:-/tmp/vigil-bench-quick}
  MD=${MD:-$OUT/BENCHMARKS.md}
else
  OUT=${OUT:-docs/bench}
  MD=${MD:-BENCHMARKS.md}
fi
RESULTS=$OUT/results

for tool in build/release/bench/scoring_bench build/release/bench/stream_bench \
  build/release/bench/features_bench \
  build/release/vigil build/release/vigil-fault-harness \
  /usr/bin/gnuplot /usr/sbin/nginx /usr/bin/redis-server /usr/bin/wrk "$PYTHON"; do
  if [[ ! -x $tool ]]; then
    echo "run_all: $tool is missing (build/release: a release build; the rest:" \
      "scripts/install-deps.sh)" >&2
    exit 1
  fi
done

WORK=$(mktemp -d /tmp/vigil-bench.XXXXXX)
cleanup() {
  [[ -f $WORK/redis.pid ]] && kill "$(cat "$WORK/redis.pid")" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$RESULTS"
rm -f "$RESULTS"/*.txt "$RESULTS"/*.tsv "$RESULTS"/*.err
START=$SECONDS

shell_words() {  # the arguments as one types them: a value with spaces in single quotes
  local out=() a
  for a; do
    if [[ $a == *" "* && $a == [A-Z_]*=* ]]; then
      a="${a%%=*}='${a#*=}'"
    elif [[ $a == *" "* ]]; then
      a="'$a'"
    fi
    out+=("$a")
  done
  echo "${out[*]}"
}

run_bench() {  # name command...: stdout to the screen and $RESULTS/name.txt, stderr to name.err
  local name=$1 t0=$SECONDS
  shift
  local words=("$@")
  [[ ${words[0]} == env ]] && words=("${words[@]:1}")
  printf '%s\t%s\n' "$name" "$(shell_words "${words[@]}")" >>"$RESULTS/commands.tsv"
  echo "== $name: $(shell_words "${words[@]}")"
  if ! "$@" 2>"$RESULTS/$name.err" | tee "$RESULTS/$name.txt"; then
    echo "run_all: $name failed; its stderr ends with:" >&2
    tail -n 30 "$RESULTS/$name.err" >&2
    exit 1
  fi
  [[ -s $RESULTS/$name.err ]] || rm -f "$RESULTS/$name.err"  # kept only when it says something
  printf '%s\t%d\n' "$name" $((SECONDS - t0)) >>"$RESULTS/durations.tsv"
  echo
}

# --- the machine and the tree, before anything runs ----------------------------------------
changes=$(git status --porcelain | awk '{print $NF}' \
  | grep -v -e '^docs/bench/' -e '^BENCHMARKS.md$' | paste -sd' ' - || true)
# BENCHMARKS.md names a commit: it is written only from that commit's clean tree, with
# binaries built from it (QUICK=1 runs anywhere; DIRTY=1 runs anyway and says so in bold).
if [[ -z $QUICK && -z ${DIRTY:-} ]]; then
  if [[ -n $changes ]]; then
    echo "run_all: uncommitted changes ($changes): commit them first (or DIRTY=1)" >&2
    exit 1
  fi
  if ! ninja -C build/release -n vigil vigil-fault-harness scoring_bench stream_bench features_bench \
    | grep -q "no work to do"; then
    echo "run_all: build/release is not built from this tree: rebuild it first" >&2
    exit 1
  fi
fi
{
  printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'commit\t%s\n' "$(git rev-parse --short HEAD) $(git log -1 --format=%s)"
  printf 'uncommitted\t%s\n' "${changes:-none}"
  built=$(date -u -r build/release/vigil '+%Y-%m-%d %H:%M UTC')
  printf 'binaries\t%s\n' "build/release, vigil built $built"
  printf 'cores\t%s\n' "$(nproc)"
  printf 'cpu\t%s\n' "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  printf 'memory\t%s\n' "$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  # shellcheck disable=SC1091  # a system file
  printf 'os\t%s\n' "$(. /etc/os-release && echo "$PRETTY_NAME")"
  printf 'kernel\t%s\n' "$(uname -r)"
  printf 'gpu\t%s\n' "$(nvidia-smi -L 2>/dev/null | head -n 1 || true)"
  printf 'load\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RESULTS/machine.tsv"
printf 'name\tcommand\n' >"$RESULTS/commands.tsv"
printf 'name\tseconds\n' >"$RESULTS/durations.tsv"
cat "$RESULTS/machine.tsv"
echo

# --- 1. the model path -----------------------------------------------------------------------
if [[ -n $QUICK ]]; then
  scoring_args=(--seconds 0.3 --batches '1,32') wide_args=(--seconds 0.3 --batches 32)
else
  scoring_args=(--seconds 1.5 --batches '1,32,256,1024')
  wide_args=(--seconds 1.5 --batches '32,256,1024')
fi
run_bench scoring build/release/bench/scoring_bench "${scoring_args[@]}" --lifecycle-batch 256
run_bench train_256 "$PYTHON" tools/train_model.py --hidden 256,256 --name fraud_mlp_256 \
  --out "$WORK/models" --no-reference --no-sample
run_bench scoring_256 build/release/bench/scoring_bench "${wide_args[@]}" \
  --model "$WORK/models/fraud_mlp_256/1/model.pt" --lifecycle-batch 0

# --- 2. streaming ----------------------------------------------------------------------------
if [[ -n $QUICK ]]; then
  stream_args=(--events 20000 --seconds 1 --rates '10000,50000')
  overload_seconds=15
else
  stream_args=(--events 120000 --seconds 4 --rates '10000,25000,50000,100000,150000')
  overload_seconds=60
fi
run_bench stream build/release/bench/stream_bench "${stream_args[@]}"
run_bench stream_deployed build/release/bench/stream_bench --deployed "${stream_args[@]}"
# Issue 21's memory under overload: 60 s offered as much as the load producer reaches.
run_bench overload build/release/bench/stream_bench --deployed --overload 600000 \
  --seconds "$overload_seconds"

# --- 3. HTTP ---------------------------------------------------------------------------------
if [[ -n $QUICK ]]; then
  http_env=(DURATION=1s WARMUP=1s "CONNECTIONS=1 64")
else
  http_env=(DURATION=5s WARMUP=1s "CONNECTIONS=1 16 64 256")
fi
run_bench http env "${http_env[@]}" RESULTS_DIR="$RESULTS" bench/http_bench.sh

# --- 4. velocity features --------------------------------------------------------------------
# features_bench writes its snapshot to a Redis of its own (its contents are replaced).
REDIS_PORT=$((20000 + RANDOM % 20000))
/usr/bin/redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize yes --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log" >/dev/null
if [[ -n $QUICK ]]; then
  features_args=(--customers 20000 --warm-days 3)
  velocity_args=(--events 20000 --rates 10000 --seconds 1)
  ready_args=(--customers 20000)
  terminal_args=(--events 20000 --rates 10000 --seconds 1)
else
  features_args=() velocity_args=(--events 300000) ready_args=(--customers 1000000)
  terminal_args=(--events 300000 --rates '10000,50000')
fi
run_bench features build/release/bench/features_bench "${features_args[@]}" \
  --redis-url "redis://127.0.0.1:$REDIS_PORT"
run_bench velocity build/release/bench/stream_bench --velocity --deployed "${velocity_args[@]}"
# The same with features.log: false (score records without their features): what logging them
# costs, apart from computing them.
run_bench velocity_nolog env STREAM_BENCH_NO_FEATURE_LOG=1 \
  build/release/bench/stream_bench --velocity --deployed --no-latency "${velocity_args[@]}"
# A restarted instance's history: snapshots loaded, the log after them replayed.
run_bench velocity_ready build/release/bench/stream_bench --velocity --ready "${ready_args[@]}"
# Terminal risk (issue 23): fraud_terminal (customer and terminal features, the terminals'
# state shared in Redis) against the same model on events carrying the 15 features; Redis on.
run_bench terminal build/release/bench/stream_bench --velocity --terminal --deployed \
  "${terminal_args[@]}"

# --- 5. recommendations ----------------------------------------------------------------------
# Issue 24: POST /recommend (Scout, 10,000 terminals) against nginx answering the same bytes.
run_bench recommend env "${http_env[@]}" ENDPOINT=recommend "SERVERS=vigil nginx-1w" \
  bench/http_bench.sh

# --- BENCHMARKS.md and the plots -------------------------------------------------------------
printf 'total_seconds\t%d\n' $((SECONDS - START)) >>"$RESULTS/machine.tsv"
"$PYTHON" bench/make_benchmarks_md.py --results "$RESULTS" --plots "$OUT" --out "$MD"
echo "run_all: $((SECONDS - START)) s in all; wrote $MD and the plots in $OUT"

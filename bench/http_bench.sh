#!/usr/bin/env bash
# POST /predict with one instance per request, driven by wrk at several concurrencies, against
# vigil (HTTP only: Kafka and Redis off) and against bench/fastapi_baseline.py (FastAPI + uvicorn
# + PyTorch, the same TorchScript model and request shape), measured in the same run.
#
#   bench/http_bench.sh                      # vigil from build/release/vigil
#   VIGIL=build/h-http/vigil DURATION=20s CONNECTIONS="1 16 64" FASTAPI_WORKERS=2 bench/http_bench.sh
#   VIGIL_FLAGS="--scoring.max_delay_us=100" bench/http_bench.sh   # extra vigil flags
#
# Prints one row per server and concurrency: requests/s, p50 and p99 latency (ms) and errors
# (non-2xx answers, socket errors). wrk runs on the same machine and takes CPU from the server:
# compare the two servers with each other, not with numbers from another machine.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VIGIL=${VIGIL:-$ROOT/build/release/vigil}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-"1 16 64"}
NPROC=$(nproc)
FASTAPI_WORKERS=${FASTAPI_WORKERS:-$NPROC}   # both servers may use every core
VIGIL_FLAGS=${VIGIL_FLAGS:-}                 # e.g. --scoring.max_delay_us=100
WRK_THREADS=${WRK_THREADS:-2}
PYTHON=/usr/bin/python3                      # the Debian python has fastapi, uvicorn, torch

for tool in wrk curl "$PYTHON"; do
  command -v "$tool" >/dev/null || { echo "http_bench: $tool is not installed" >&2; exit 1; }
done
[[ -x "$VIGIL" ]] || { echo "http_bench: no vigil binary at $VIGIL (set VIGIL=...)" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# One instance: the first row of the Python reference data, in model order.
"$PYTHON" - "$ROOT/tests/data/fraud_mlp_v1_reference.json" >"$WORK/body.json" <<'EOF'
import json, sys
ref = json.load(open(sys.argv[1]))
print(json.dumps({"instances": [ref["rows"][0]]}), end="")
EOF

cat >"$WORK/predict.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$WORK/body.json", "r")
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %.1f %.3f %.3f %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000.0, latency:percentile(99) / 1000.0,
    e.status, e.connect + e.read + e.write + e.timeout))
end
EOF

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_ready() {  # url, seconds
  for _ in $(seq 1 $(($2 * 10))); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "http_bench: $1 did not answer within $2 s" >&2
  return 1
}

# --- vigil -----------------------------------------------------------------------------------
(cd "$ROOT" && exec "$VIGIL" --config "$ROOT/config/vigil.yaml" --mode=serve \
  --kafka.enabled=false --redis.url= --http.address=127.0.0.1 --http.port=0 \
  --http.port_file="$WORK/vigil.port" --log.level=warn $VIGIL_FLAGS) >"$WORK/vigil.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do [[ -s "$WORK/vigil.port" ]] && break; sleep 0.1; done
[[ -s "$WORK/vigil.port" ]] || { echo "http_bench: vigil did not start:" >&2; cat "$WORK/vigil.log" >&2; exit 1; }
VIGIL_URL="http://127.0.0.1:$(cat "$WORK/vigil.port")"
wait_ready "$VIGIL_URL/ready" 60

# --- FastAPI baseline ----------------------------------------------------------------------
FASTAPI_PORT=$(free_port)
"$PYTHON" "$ROOT/bench/fastapi_baseline.py" --port "$FASTAPI_PORT" --workers "$FASTAPI_WORKERS" \
  >"$WORK/fastapi.log" 2>&1 &
PIDS+=($!)
FASTAPI_URL="http://127.0.0.1:$FASTAPI_PORT"
wait_ready "$FASTAPI_URL/health" 120 || { cat "$WORK/fastapi.log" >&2; exit 1; }

# Same request, same score (sanity check before timing anything).
echo "vigil:   $(curl -fsS -H 'Content-Type: application/json' --data-binary @"$WORK/body.json" "$VIGIL_URL/predict")"
echo "fastapi: $(curl -fsS -H 'Content-Type: application/json' --data-binary @"$WORK/body.json" "$FASTAPI_URL/predict")"
echo

run_wrk() {  # url connections
  local threads=$WRK_THREADS
  ((threads > $2)) && threads=$2
  wrk -t "$threads" -c "$2" -d "$DURATION" -s "$WORK/predict.lua" "$1/predict" | grep '^RESULT' \
    || echo "RESULT 0 0 0 0 0"
}

printf "%-8s %11s %12s %10s %10s %8s\n" server connections "requests/s" "p50 ms" "p99 ms" errors
for c in $CONNECTIONS; do
  for server in vigil fastapi; do
    url=$VIGIL_URL
    [[ $server == fastapi ]] && url=$FASTAPI_URL
    DURATION=2s run_wrk "$url" "$c" >/dev/null  # warm-up at this concurrency
    read -r _ rps p50 p99 status_err sock_err < <(run_wrk "$url" "$c")
    printf "%-8s %11d %12.0f %10.2f %10.2f %8d\n" "$server" "$c" "$rps" "$p50" "$p99" \
      $((status_err + sock_err))
  done
done
echo
echo "wrk $DURATION per cell after a 2 s warm-up; $NPROC cores shared by wrk ($WRK_THREADS threads) and the server;"
echo "vigil: $(basename "$VIGIL") --mode=serve (Kafka, Redis off) $VIGIL_FLAGS; fastapi: $FASTAPI_WORKERS uvicorn worker(s)."

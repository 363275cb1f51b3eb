#!/usr/bin/env bash
# POST /predict driven by wrk at several concurrencies, in one run, against:
#   vigil           HTTP only (--mode=serve, Kafka and Redis off), the shipped config
#   nginx-1w        nginx with 1 and with 2 worker processes answering a fixed body as long as
#   nginx-2w        vigil's answer: the cost of HTTP alone on this machine, with no parsing and
#                   no model (the ceiling)
#   fastapi-1w      bench/fastapi_baseline.py as FastAPI is deployed (uvicorn with httptools and
#   fastapi-2w      uvloop, async endpoint, pydantic, TCP_NODELAY; the same TorchScript model and
#                   request shape) with 1 and with 2 uvicorn worker processes
#   fastapi-h11-2w  the same with a sync endpoint on the pure-Python h11 parser, 2 workers (an
#                   extra row: the slower way FastAPI is sometimes run)
# and two request bodies: one instance (the first row of the Python reference data) and 32
# instances (its first 32 rows; vigil and FastAPI score all 32).
#
#   bench/http_bench.sh                                   # vigil from build/release/vigil
#   DURATION=2s CONNECTIONS="1 64" BODIES=1 bench/http_bench.sh     # a quick look
#   SERVERS="vigil nginx" VIGIL=build/h-http/vigil bench/http_bench.sh
#   VIGIL_FLAGS="--scoring.max_delay_us=100" bench/http_bench.sh    # extra vigil flags
#   RESULTS_DIR=/tmp/r bench/http_bench.sh                # also writes /tmp/r/http.tsv
#   ENDPOINT=recommend bench/http_bench.sh                # POST /recommend instead (issue 24):
#       vigil and nginx only, one body ({"customer_id", "k": 10} of a customer Scout knows)
#
# Prints one table per body (requests/s, p50 and p99 latency, errors = non-2xx answers and
# socket errors), the ratios of vigil to the others and the issue's targets, MET or NOT MET
# (a benchmark: it does not fail on a missed target). wrk runs on the same machine and takes
# CPU from the server: compare the servers with each other, not with another machine.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VIGIL=${VIGIL:-$ROOT/build/release/vigil}
DURATION=${DURATION:-5s}                     # measured, per cell
WARMUP=${WARMUP:-1s}                         # at the same concurrency, before each cell
CONNECTIONS=${CONNECTIONS:-"1 16 64 256"}
BODIES=${BODIES:-"1 32"}                     # instances per request
SERVERS=${SERVERS:-"vigil nginx-1w nginx-2w fastapi-1w fastapi-2w fastapi-h11-2w"}
VIGIL_FLAGS=${VIGIL_FLAGS:-}                 # e.g. --scoring.max_delay_us=100
NGINX=${NGINX:-/usr/sbin/nginx}
RESULTS_DIR=${RESULTS_DIR:-}
ENDPOINT=${ENDPOINT:-predict}                # predict, or recommend
if [[ $ENDPOINT == recommend ]]; then
  BODIES=1
  SERVERS=${SERVERS/fastapi-h11-2w/}
  SERVERS=${SERVERS/fastapi-1w/}
  SERVERS=${SERVERS/fastapi-2w/}
elif [[ $ENDPOINT != predict ]]; then
  echo "http_bench: ENDPOINT must be predict or recommend" >&2
  exit 2
fi
export ENDPOINT
PYTHON=/usr/bin/python3                      # the Debian python has fastapi, uvicorn, torch
NPROC=$(nproc)

has_server() { [[ " $SERVERS " == *" $1 "* ]]; }

for tool in wrk curl "$PYTHON"; do
  command -v "$tool" >/dev/null || { echo "http_bench: $tool is not installed" >&2; exit 1; }
done
[[ -x "$VIGIL" ]] || { echo "http_bench: no vigil binary at $VIGIL (set VIGIL=...)" >&2; exit 1; }
has_nginx() { has_server nginx-1w || has_server nginx-2w; }
if has_nginx && [[ ! -x "$NGINX" ]]; then
  echo "http_bench: no nginx at $NGINX (Debian package nginx-light; or SERVERS without nginx)" >&2
  exit 1
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Request bodies: the first N rows of the Python reference data, in model order.
# With ENDPOINT=recommend: one customer of the shipped Scout model, its top 10.
for n in $BODIES; do
  if [[ $ENDPOINT == recommend ]]; then
    printf '{"customer_id":"C000123","k":10}' >"$WORK/body-$n.json"
  else
    "$PYTHON" - "$ROOT/tests/data/fraud_mlp_v1_reference.json" "$n" >"$WORK/body-$n.json" <<'EOF'
import json, sys
ref = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
assert len(ref["rows"]) >= n, f"the reference data has only {len(ref['rows'])} rows"
print(json.dumps({"instances": ref["rows"][:n]}), end="")
EOF
  fi
  cat >"$WORK/predict-$n.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$WORK/body-$n.json", "r")
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
done

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

post() {  # url body-file: the answer's body
  curl -fsS -H 'Content-Type: application/json' --data-binary @"$2" "$1/$ENDPOINT"
}

declare -A URL

# --- vigil -----------------------------------------------------------------------------------
if has_server vigil || has_nginx; then  # nginx copies the length of vigil's answers
  # shellcheck disable=SC2086  # VIGIL_FLAGS holds several flags
  (cd "$ROOT" && exec "$VIGIL" --config "$ROOT/config/vigil.yaml" --mode=serve \
    --kafka.enabled=false --redis.url= --http.address=127.0.0.1 --http.port=0 \
    --http.port_file="$WORK/vigil.port" --log.level=warn $VIGIL_FLAGS) >"$WORK/vigil.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 300); do [[ -s "$WORK/vigil.port" ]] && break; sleep 0.1; done
  [[ -s "$WORK/vigil.port" ]] || { echo "http_bench: vigil did not start:" >&2; cat "$WORK/vigil.log" >&2; exit 1; }
  URL[vigil]="http://127.0.0.1:$(cat "$WORK/vigil.port")"
  wait_ready "${URL[vigil]}/ready" 60
fi

# --- FastAPI baselines: as deployed with 1 and 2 uvicorn workers, and the sync/h11 row -------
for name in fastapi-1w fastapi-2w fastapi-h11-2w; do
  has_server "$name" || continue
  workers=${name##*-}
  workers=${workers%w}
  style=deployed
  [[ $name == *h11* ]] && style=sync-h11
  port=$(free_port)
  "$PYTHON" "$ROOT/bench/fastapi_baseline.py" --port "$port" --workers "$workers" \
    --style "$style" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  URL[$name]="http://127.0.0.1:$port"
  wait_ready "${URL[$name]}/health" 120 || { cat "$WORK/$name.log" >&2; exit 1; }
done

# --- nginx: 1 and 2 worker processes, unprivileged, own config and files in $WORK/nginx-Nw -----
# One listening port per request body; POST /predict there is answered by `return` with
# vigil's own answer to that body (the same length, byte for byte; nginx reads and discards
# the request body). Keep-alive is unlimited like vigil's, so wrk never reconnects.
for workers in 1 2; do
  has_server "nginx-${workers}w" || continue
  NGX=$WORK/nginx-${workers}w
  mkdir -p "$NGX/client_body" "$NGX/proxy" "$NGX/fastcgi" "$NGX/uwsgi" "$NGX/scgi"
  servers=""
  for n in $BODIES; do
    if [[ ! -s $WORK/vigil-answer-$n.json ]]; then
      post "${URL[vigil]}" "$WORK/body-$n.json" >"$WORK/vigil-answer-$n.json"
    fi
    # nginx expands $ and \ inside the string: vigil's JSON has neither, but make sure.
    answer=$(tr "\$\\\\'" '___' <"$WORK/vigil-answer-$n.json")
    port=$(free_port)
    URL[nginx-${workers}w-$n]="http://127.0.0.1:$port"
    servers+="  server {
    listen 127.0.0.1:$port;
    location = /$ENDPOINT {
      client_max_body_size 1m;
      default_type application/json;
      return 200 '$answer';
    }
    location = /health { return 200 'ok'; }
  }
"
  done
  cat >"$NGX/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $workers;
pid $NGX/nginx.pid;
lock_file $NGX/nginx.lock;
error_log $NGX/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $NGX/client_body;
  proxy_temp_path $NGX/proxy;
  fastcgi_temp_path $NGX/fastcgi;
  uwsgi_temp_path $NGX/uwsgi;
  scgi_temp_path $NGX/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
$servers}
EOF
  run_as=()
  if ((EUID == 0)); then  # drop root: nobody owns the files nginx writes
    chmod 711 "$WORK"
    chown -R nobody "$NGX"
    run_as=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
  fi
  "${run_as[@]}" "$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" \
    >"$WORK/nginx-${workers}w.log" 2>&1 &
  PIDS+=($!)
  read -ra first <<<"$BODIES"
  wait_ready "${URL[nginx-${workers}w-${first[0]}]}/health" 20 \
    || { cat "$WORK/nginx-${workers}w.log" "$NGX/error.log" >&2; exit 1; }
done

# Same request, same answer (sanity check before timing anything): the scores of vigil and
# FastAPI, and nginx's body length against vigil's.
for n in $BODIES; do
  echo "sanity, $n instance(s) per request:"
  for server in $SERVERS; do
    if [[ $server == nginx-* ]]; then
      answer=$(post "${URL[$server-$n]}" "$WORK/body-$n.json")
      vigil_bytes=$(wc -c <"$WORK/vigil-answer-$n.json")
      printf "  %-15s %d bytes (vigil's answer: %d bytes)\n" "$server:" "${#answer}" "$vigil_bytes"
    elif ((n == 1)) || [[ $ENDPOINT == recommend ]]; then
      printf "  %-15s %s\n" "$server:" "$(post "${URL[$server]}" "$WORK/body-$n.json")"
    else
      "$PYTHON" -c 'import json, sys; s = [p["score"] for p in json.load(sys.stdin)["predictions"]]
print("  %-15s %d scores, first %.7g, last %.7g" % (sys.argv[1] + ":", len(s), s[0], s[-1]))' \
        "$server" < <(post "${URL[$server]}" "$WORK/body-$n.json")
    fi
  done
done
echo

run_wrk() {  # server connections instances duration: "RESULT rps p50_ms p99_ms status_err sock_err"
  local threads=$(($2 < 2 ? $2 : 2)) url=${URL[$1]:-}
  [[ $1 == nginx-* ]] && url=${URL[$1-$3]}
  wrk -t "$threads" -c "$2" -d "$4" -s "$WORK/predict-$3.lua" "$url/$ENDPOINT" \
    | grep '^RESULT' || echo "RESULT 0 0 0 0 1"
}

TSV=$WORK/http.tsv
printf "body\tserver\tconnections\trps\tp50_ms\tp99_ms\terrors\n" >"$TSV"
for n in $BODIES; do
  for c in $CONNECTIONS; do
    for server in $SERVERS; do  # the servers interleaved at each concurrency: drift hits all
      run_wrk "$server" "$c" "$n" "$WARMUP" >/dev/null
      read -r _ rps p50 p99 status_err sock_err < <(run_wrk "$server" "$c" "$n" "$DURATION")
      printf "%s\t%s\t%d\t%s\t%s\t%s\t%d\n" "$n" "$server" "$c" "$rps" "$p50" "$p99" \
        $((status_err + sock_err)) >>"$TSV"
    done
  done
done

"$PYTHON" "$ROOT/bench/http_report.py" "$TSV"
echo
echo "wrk $DURATION per cell after a $WARMUP warm-up at the same concurrency," \
  "min(2, connections) threads; $NPROC cores shared by wrk and the server."
echo "vigil: $(basename "$VIGIL") --mode=serve (Kafka, Redis off)${VIGIL_FLAGS:+ $VIGIL_FLAGS};"
if has_nginx; then
  echo "nginx-Nw: nginx $("$NGINX" -v 2>&1 | sed 's|.*/||') with N worker processes, a fixed" \
    "body as long as vigil's answer;"
fi
if [[ $SERVERS == *fastapi* ]]; then
  uvicorn_version=$("$PYTHON" -c 'import uvicorn; print(uvicorn.__version__)')
  echo "fastapi-Nw: bench/fastapi_baseline.py as deployed (uvicorn $uvicorn_version, httptools," \
    "uvloop, async endpoint) with N worker process(es); fastapi-h11-2w: --style sync-h11."
fi
if [[ -n $RESULTS_DIR ]]; then
  mkdir -p "$RESULTS_DIR"
  cp "$TSV" "$RESULTS_DIR/http.tsv"
  echo "results: $RESULTS_DIR/http.tsv"
fi

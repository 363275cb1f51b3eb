#!/usr/bin/env bash
# Runs vigil on its embedded default, from nothing: installs missing Debian packages, builds,
# starts a local redis-server on a free loopback port, starts vigil with its embedded Kafka
# (librdkafka mock cluster) and the HTTP side-port, then feeds it with vigil-loadgen, which
# prints live progress and a summary read back from the scores topic and Redis.
# vigil keeps running afterwards (try the curl lines it prints); Ctrl-C stops everything.
#
# With --data velocity it serves fraud_velocity instead, a model of raw transactions whose
# velocity features vigil computes in the stream, and feeds it simulated raw transactions
# (tools/simulate_transactions.py, about --count of them) keyed by customer, with kcat.
# With --data terminal it serves fraud_terminal (customer and terminal risk features, the
# terminals' state shared in Redis) and feeds it the same transactions and their fraud reports
# (topic fraud.reports) a simulated day at a time: the day's transactions, then the reports
# made that day, then a second for the shared state's copy to be read again.
#
# usage: scripts/run.sh [--once] [--rate N] [--count N] [--data mlp|velocity|terminal]
#        (env: VIGIL_HTTP_PORT, default 8080)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

once=0; rate=2000; count=20000; data=mlp
while [ $# -gt 0 ]; do
  case "$1" in
    --once) once=1 ;;
    --data) data=$2; shift ;;
    --rate) rate=$2; shift ;;
    --count) count=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
case "$data" in
  mlp) model_args=() ;;
  velocity) model_args=(--model.name=fraud_velocity) ;;
  terminal) model_args=(--model.name=fraud_terminal) ;;
  *) echo "unknown --data $data (mlp, velocity or terminal)" >&2; exit 2 ;;
esac

bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target vigil vigil-loadgen

RUN_DIR=$(mktemp -d /tmp/vigil-run.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port)
HTTP_PORT=${VIGIL_HTTP_PORT:-8080}

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "run.sh: stopping vigil and redis-server"
  [ -n "${VIGIL_PID:-}" ] && kill -TERM "$VIGIL_PID" 2>/dev/null && wait "$VIGIL_PID" 2>/dev/null || true
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "run.sh: logs in $RUN_DIR"
}
trap cleanup INT TERM EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$RUN_DIR" \
  >"$RUN_DIR/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

"$ROOT/build/release/vigil" --config config/vigil.yaml \
  --redis.url="redis://127.0.0.1:$REDIS_PORT" \
  --kafka.embedded.bootstrap_file="$RUN_DIR/bootstrap" \
  --http.port="$HTTP_PORT" --http.port_file="$RUN_DIR/http_port" "${model_args[@]}" \
  2> >(tee "$RUN_DIR/vigil.log" >&2) &
VIGIL_PID=$!

# The load starts once vigil is ready (model loaded, partitions assigned), so the summary shows
# steady-state latency rather than the group join.
ready=0
for _ in $(seq 600); do
  PORT=$(cat "$RUN_DIR/http_port" 2>/dev/null || true)
  if [ -n "$PORT" ] && python3 -c "import sys, urllib.request
sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:$PORT/ready', timeout=1).status == 200 else 1)" \
      2>/dev/null; then
    ready=1; break
  fi
  kill -0 "$VIGIL_PID" 2>/dev/null || { echo "run.sh: vigil exited" >&2; exit 1; }
  sleep 0.1
done
[ "$ready" = 1 ] || echo "run.sh: vigil not ready after 60 s; starting the load anyway" >&2

if [ "$data" = velocity ] || [ "$data" = terminal ]; then
  # About `count` raw transactions: customers make about 2 a day, over 40 days.
  customers=$(( count / 80 > 20 ? count / 80 : 20 ))
  python3 tools/simulate_transactions.py --customers "$customers" --terminals $((customers * 2)) \
    --days 40 --seed 0 --out "$RUN_DIR/raw.jsonl" --reports "$RUN_DIR/reports.jsonl"
  broker=$(cut -d, -f1 "$RUN_DIR/bootstrap")
  # Key<TAB>record lines for kcat, per simulated day: transactions keyed by customer_id
  # (days/<day>.tx), reports by transaction_id (days/<day>.rep).
  mkdir -p "$RUN_DIR/days"
  python3 -c 'import json, sys
out = sys.argv[3]
def write(path, ext, key, field):
    for line in open(path, encoding="utf-8"):
        r = json.loads(line)
        with open(f"{out}/{r[field] // 86400000}.{ext}", "a", encoding="utf-8") as f:
            f.write(r[key] + "\t" + line.rstrip("\n") + "\n")
write(sys.argv[1], "tx", "customer_id", "event_time_ms")
write(sys.argv[2], "rep", "transaction_id", "reported_at_ms")' \
    "$RUN_DIR/raw.jsonl" "$RUN_DIR/reports.jsonl" "$RUN_DIR/days"
  for day in $(ls "$RUN_DIR/days" | cut -d. -f1 | sort -un); do
    if [ -f "$RUN_DIR/days/$day.tx" ]; then
      kcat -P -b "$broker" -t transactions -K $'\t' -X linger.ms=5 < "$RUN_DIR/days/$day.tx"
    fi
    if [ "$data" = terminal ] && [ -f "$RUN_DIR/days/$day.rep" ]; then
      kcat -P -b "$broker" -t fraud.reports -K $'\t' -X linger.ms=5 < "$RUN_DIR/days/$day.rep"
      sleep 1.2  # the reports reach Redis, then every copy reads them (refresh_ms 1000)
    fi
  done
  produced="$(wc -l < "$RUN_DIR/raw.jsonl") raw transactions keyed by customer_id"
  if [ "$data" = terminal ]; then
    produced="$produced and $(wc -l < "$RUN_DIR/reports.jsonl") fraud reports"
  fi
  echo "run.sh: produced $produced"
  sleep 3
  echo "run.sh: the last scores, each with the features vigil computed:"
  kcat -b "$broker" -t scores -C -o -2 -e -q 2>/dev/null || true
else
  "$ROOT/build/release/vigil-loadgen" --bootstrap-file="$RUN_DIR/bootstrap" \
    --rate="$rate" --count="$count" --redis-url="redis://127.0.0.1:$REDIS_PORT" || true
fi

PORT=$(cat "$RUN_DIR/http_port" 2>/dev/null || echo "$HTTP_PORT")
if [ "$data" = velocity ]; then
  instance='[57.3,0,0,3,41.2,12,48.9,55,50.1]'  # the features, as the stream computes them
elif [ "$data" = terminal ]; then
  instance='[57.3,0,0,3,41.2,12,48.9,55,50.1,4,0,31,0.03,120,0.02]'
else
  instance='[0,-1.36,-0.07,2.54,1.38,-0.34,0.46,0.24,0.1,0.36,0.09,-0.55,-0.62,-0.99,-0.31,1.47,-0.47,0.21,0.03,0.4,0.25,-0.02,0.28,-0.11,0.07,0.13,-0.19,0.13,-0.02,149.62]'
fi
cat <<MSG

vigil is still running (embedded Kafka at $(cat "$RUN_DIR/bootstrap"), Redis on port $REDIS_PORT):
  curl -s localhost:$PORT/ready
  curl -s localhost:$PORT/metrics | grep ^vigil_
  curl -s -XPOST localhost:$PORT/predict -d '{"instances":[$instance]}'
  kcat -b $(cat "$RUN_DIR/bootstrap" | cut -d, -f1) -t scores -C -o -5 -e
Ctrl-C stops everything.
MSG
if [ "$once" = 1 ]; then exit 0; fi
wait "$VIGIL_PID"

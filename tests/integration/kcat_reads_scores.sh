#!/usr/bin/env bash
# Proves that outside Kafka clients can use a running vigil's embedded cluster: kcat (a
# plain librdkafka CLI) produces transactions to it using the address from the bootstrap
# file, and reads the scores back from the `scores` topic.
# usage: kcat_reads_scores.sh <path to vigil binary> <source dir>
set -euo pipefail
VIGIL=$1
SRC=$2
command -v kcat >/dev/null || { echo "kcat not installed"; exit 1; }
DIR=$(mktemp -d)
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT

"$VIGIL" --model.repository="$SRC/models" --redis.url= --http.enabled=false \
  --kafka.embedded.bootstrap_file="$DIR/bootstrap" --log.level=warn &
PID=$!
for _ in $(seq 200); do [ -s "$DIR/bootstrap" ] && break; sleep 0.05; done
[ -s "$DIR/bootstrap" ] || { echo "FAIL: vigil wrote no bootstrap file"; exit 1; }
B=$(cat "$DIR/bootstrap")

N=50
for i in $(seq 1 $N); do
  printf 'kc-%d:{"transaction_id":"kc-%d","features":[%d,-1.36,-0.07,2.54,1.38,-0.34,0.46,0.24,0.1,0.36,0.09,-0.55,-0.62,-0.99,-0.31,1.47,-0.47,0.21,0.03,0.4,0.25,-0.02,0.28,-0.11,0.07,0.13,-0.19,0.13,-0.02,149.62]}\n' "$i" "$i" "$i"
done > "$DIR/events"
kcat -b "$B" -t transactions -P -K: -l "$DIR/events"

# Read the scores topic with kcat until all N ids are there (or 60 s).
for _ in $(seq 60); do
  kcat -b "$B" -t scores -C -e -q -f '%k %s\n' > "$DIR/scores" 2>/dev/null || true
  got=$(grep -c '^kc-' "$DIR/scores" || true)
  [ "$got" -ge "$N" ] && break
  sleep 1
done
got=$(cut -d' ' -f1 "$DIR/scores" | grep '^kc-' | sort -u | wc -l)
echo "kcat read $got distinct scores of $N from $B"
head -2 "$DIR/scores"
[ "$got" -eq "$N" ] || { echo "FAIL: expected $N scores"; exit 1; }
grep -q '"model_name":"fraud_mlp"' "$DIR/scores" || { echo "FAIL: not a vigil score"; exit 1; }
echo "kcat_reads_scores: ok"

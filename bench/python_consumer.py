#!/usr/bin/python3
"""The baseline for bench/stream_bench: the Kafka consumer a team would write in an afternoon.

    /usr/bin/python3 bench/python_consumer.py --bootstrap HOST:PORT --events 20000 \
        [--redis-url redis://127.0.0.1:6379]

A plain single-process confluent_kafka + PyTorch loop doing what vigil's streaming path does:
consume a batch of JSON transactions, score them with one forward pass of the same TorchScript
model (one LibTorch thread), produce one JSON score per transaction to the output topic (key =
transaction id), optionally SET each score in Redis (one pipeline per batch), then flush the
producer and commit the batch's offsets synchronously (at-least-once). The clock starts at the
first message and stops once --events records are scored, delivered and committed; the last line
on stdout is `python_consumer events=N seconds=S events_per_s=R first_ts=T0 last_ts=T1` (T0, T1:
wall-clock seconds of the first message and of the last commit).

Scaled out to several processes (this machine has 2 cores), each takes a share of the
partitions: --partitions 0-7 (or 0,2,4) assigns those from the beginning, without a group
rebalance, and --events then defaults to what they hold (their high watermarks at start).
Use the Debian python (/usr/bin/python3): it has confluent_kafka, redis, torch and yaml.
"""
import argparse
import json
import os
import sys
import time

import torch
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_model(model_dir: str):
    with open(os.path.join(model_dir, "model.yaml")) as f:
        spec = yaml.safe_load(f)
    versions = sorted(int(v) for v in os.listdir(model_dir)
                      if v.isdigit() and os.path.exists(os.path.join(model_dir, v, "model.pt")))
    version = str(versions[-1])
    module = torch.jit.load(os.path.join(model_dir, version, "model.pt"), map_location="cpu")
    module.eval()
    return spec, version, module


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", default="transactions")
    ap.add_argument("--output-topic", default="scores")
    ap.add_argument("--group", default="python-consumer")
    ap.add_argument("--model-dir", default=os.path.join(ROOT, "models", "fraud_mlp"))
    ap.add_argument("--redis-url", default="", help="empty = no Redis")
    ap.add_argument("--redis-prefix", default="vigil:score:", help="key prefix, as vigil's")
    ap.add_argument("--ttl", type=int, default=86400)
    ap.add_argument("--events", type=int, default=0,
                    help="stop after this many records (required without --partitions)")
    ap.add_argument("--partitions", default="",
                    help="assign these partitions (0-7 or 0,2,4) instead of subscribing")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--timeout-s", type=float, default=300)
    ap.add_argument("--session-timeout-ms", type=int, default=6000)
    args = ap.parse_args()

    torch.set_num_threads(1)
    spec, version, module = load_model(args.model_dir)
    model_name = spec.get("name", os.path.basename(os.path.normpath(args.model_dir)))
    inputs = list(spec["inputs"])
    threshold = float(spec.get("threshold", 0.5))

    rds = None
    if args.redis_url:
        import redis
        rds = redis.Redis.from_url(args.redis_url)
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap, "group.id": args.group,
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "session.timeout.ms": args.session_timeout_ms, "heartbeat.interval.ms": 500,
        "fetch.wait.max.ms": 10,
    })
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 5})
    if args.partitions:
        parts = []
        for item in args.partitions.split(","):
            lo, _, hi = item.partition("-")
            parts.extend(range(int(lo), int(hi or lo) + 1))
        if args.events <= 0:
            for p in parts:
                low, high = consumer.get_watermark_offsets(TopicPartition(args.topic, p),
                                                           timeout=10)
                args.events += high - low
        consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in parts])
    elif args.events > 0:
        consumer.subscribe([args.topic])
    else:
        ap.error("--events is required without --partitions")

    deadline = time.monotonic() + args.timeout_s
    start = None
    done = 0
    try:
        while done < args.events:
            if time.monotonic() > deadline:
                print(f"python_consumer: timed out after {args.timeout_s}s with {done} of "
                      f"{args.events} events", file=sys.stderr)
                return 1
            msgs = consumer.consume(num_messages=min(args.batch, args.events - done), timeout=0.1)
            if not msgs:
                continue
            if start is None:
                start = time.perf_counter()
                first_ts = time.time()
            ids, rows = [], []
            for m in msgs:
                done += 1  # consumed, whether or not it can be scored
                if m.error():
                    print(f"python_consumer: {m.error()}", file=sys.stderr)
                    continue
                try:
                    event = json.loads(m.value())
                    features = event["features"]
                    if isinstance(features, dict):
                        features = [features[name] for name in inputs]
                    rows.append([float(v) for v in features])
                    ids.append(str(event["transaction_id"]))
                except (ValueError, KeyError, TypeError) as e:
                    print(f"python_consumer: skipping bad event: {e!r}", file=sys.stderr)
            if rows:
                with torch.inference_mode():
                    scores = module(torch.tensor(rows, dtype=torch.float32)).reshape(-1).tolist()
                now_ms = int(time.time() * 1000)
                pipe = rds.pipeline(transaction=False) if rds is not None else None
                for tid, score in zip(ids, scores):
                    value = json.dumps({"transaction_id": tid, "score": score,
                                        "is_fraud": score >= threshold, "model_name": model_name,
                                        "model_version": version, "scored_at_ms": now_ms})
                    producer.produce(args.output_topic, key=tid, value=value)
                    producer.poll(0)
                    if pipe is not None:
                        pipe.set(args.redis_prefix + tid, value, ex=args.ttl)
                if pipe is not None:
                    pipe.execute()
            if producer.flush(max(deadline - time.monotonic(), 1.0)) > 0:
                print("python_consumer: scores not delivered before the timeout", file=sys.stderr)
                return 1
            consumer.commit(asynchronous=False)
        seconds = time.perf_counter() - start
        print(f"python_consumer events={done} seconds={seconds:.3f} "
              f"events_per_s={done / seconds:.1f} first_ts={first_ts:.6f} last_ts={time.time():.6f}")
        return 0
    finally:
        consumer.close()


if __name__ == "__main__":
    sys.exit(main())

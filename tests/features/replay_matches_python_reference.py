#!/usr/bin/env python3
"""vigil-features replay against an independent Python computation of the same features.

Generates raw transactions with tools/simulate_transactions.py (seeded), shuffles some of
them a little out of time order (as a log may hold them) and adds a few bad lines; runs
`vigil-features replay`; recomputes every feature here, by brute force over the log read so
far, straight from features.yaml's definition; and requires every row to match (relative
error <= 1e-6, the issue's bound; amounts are taken as float32, as vigil feeds them to the
model) and every bad line to be refused with its reason.

usage: replay_matches_python_reference.py <vigil-features> <source dir>
"""
import bisect
import csv
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
from datetime import datetime, timezone

DAY_MS = 86_400_000


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def reference(events, windows_days):
    """Features of each event from the events before it in the log (and itself)."""
    history = {}  # customer -> sorted list of (time, index, amount)
    out = []
    for i, e in enumerate(events):
        t = e["event_time_ms"]
        h = history.setdefault(e["customer_id"], [])
        bisect.insort(h, (t, i, f32(e["amount"])))
        dt = datetime.fromtimestamp(t / 1000, tz=timezone.utc)
        row = [f32(e["amount"]), 1.0 if dt.weekday() >= 5 else 0.0, 1.0 if dt.hour < 6 else 0.0]
        for d in windows_days:
            inside = [a for (ht, _, a) in h if t - d * DAY_MS < ht <= t]
            row += [float(len(inside)), sum(inside) / len(inside)]
        out.append(row)
    return out


def main():
    binary, src = sys.argv[1], sys.argv[2]
    spec = os.path.join(src, "models", "fraud_velocity", "features.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.jsonl")
        subprocess.run([sys.executable, os.path.join(src, "tools", "simulate_transactions.py"),
                        "--customers", "150", "--terminals", "300", "--days", "45",
                        "--seed", "7", "--out", raw], check=True)
        with open(raw, encoding="utf-8") as f:
            events = [json.loads(line) for line in f]
        # Some events a few hours out of order (within the spec's day of lateness), some
        # sharing a timestamp, some exactly one window after an earlier one of their customer.
        rng = random.Random(3)
        for i in range(1, len(events) - 1, 17):
            events[i], events[i + 1] = events[i + 1], events[i]
        for i in range(5, len(events), 29):
            events[i]["event_time_ms"] = events[i - 1]["event_time_ms"]
        edges = 0
        for i in range(100, len(events), 31):
            w = rng.choice((1, 7, 30)) * DAY_MS
            target = events[i - 1]["event_time_ms"] - w
            j = i - 1
            while j > 0 and events[j]["event_time_ms"] > target:
                j -= 1
            if not target - DAY_MS // 2 <= events[j]["event_time_ms"] <= target:
                continue  # no event of the right age: too early in the log for this window
            events[i]["customer_id"] = events[j]["customer_id"]
            events[i]["event_time_ms"] = events[j]["event_time_ms"] + w
            edges += 1
        if edges < 100:
            sys.exit(f"only {edges} window-edge events")
        bad = [
            ('{"transaction_id":"B1","amount":1.0,"event_time_ms":1}', "missing_field"),
            ('{"transaction_id":"B2","customer_id":"C1","amount":-3,"event_time_ms":1}',
             "out_of_range"),
            ('{"transaction_id":"B3","customer_id":"C1","amount":1.0}', "missing_field"),
            ('{"transaction_id":"B4","customer_id":"C1","amount":1.0,"event_time_ms":"x"}',
             "wrong_type"),
        ]
        lines = [json.dumps(e) for e in events]
        for k, (text, _) in enumerate(bad):
            lines.insert(200 + 100 * k, text)
        mixed = os.path.join(tmp, "mixed.jsonl")
        with open(mixed, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

        out = os.path.join(tmp, "features.csv")
        run = subprocess.run([binary, "replay", "--spec", spec, "--in", mixed, "--out", out,
                              "--column", "tx_fraud"], capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"vigil-features failed ({run.returncode}): {run.stderr}")
        for text, reason in bad:
            tid = json.loads(text)["transaction_id"]
            line_no = lines.index(text) + 1
            if f"mixed.jsonl:{line_no}: {reason}:" not in run.stderr:
                sys.exit(f"bad line {tid} (line {line_no}) not refused as {reason}:\n{run.stderr}")

        with open(out, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if len(rows) != len(events):
            sys.exit(f"{len(rows)} rows for {len(events)} good events")
        want = reference(events, [1, 7, 30])
        names = ["tx_amount", "tx_during_weekend", "tx_during_night"]
        for d in (1, 7, 30):
            names += [f"customer_nb_tx_{d}d", f"customer_avg_amount_{d}d"]
        worst = 0.0
        for i, (row, ref, e) in enumerate(zip(rows, want, events)):
            if row["transaction_id"] != e["transaction_id"] or row["history"] != "complete":
                sys.exit(f"row {i}: {row['transaction_id']} {row['history']}, "
                         f"expected {e['transaction_id']} complete")
            if row["tx_fraud"] != str(e["tx_fraud"]):
                sys.exit(f"row {i}: tx_fraud {row['tx_fraud']} != {e['tx_fraud']}")
            for name, r in zip(names, ref):
                got = float(row[name])
                err = abs(got - r) / max(abs(r), 1e-12)
                worst = max(worst, err)
                if err > 1e-6:
                    sys.exit(f"row {i} ({e['transaction_id']}): {name} = {got}, reference {r}")
        print(f"replay matches the Python reference: {len(rows)} rows x {len(names)} features "
              f"({edges} on a window edge), worst relative error {worst:.2e}; {len(bad)} bad "
              f"lines refused with their reason")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""vigil-features replay's terminal risk features against an independent Python computation.

Generates raw transactions and their fraud reports with tools/simulate_transactions.py
(seeded), adds repeated reports (some earlier than the first), reports of transactions never
read and a few bad lines; runs `vigil-features replay --reports` with fraud_velocity's spec
plus a `terminal` block; recomputes every terminal feature here by brute force from
src/features/terminal_days.h's definition (the W whole UTC days before day(t) - delay, the
frauds reported before day(t), each transaction counted once on its earliest report day, risk
at most 1 and 0 without transactions); and requires every row to match (relative error
<= 1e-6) and every bad line to be refused with its reason.

usage: terminal_replay_matches_python_reference.py <vigil-features> <source dir>
"""
import csv
import json
import os
import random
import subprocess
import sys
import tempfile

DAY_MS = 86_400_000
DELAY = 7
WINDOWS = (1, 7, 30)


def reference(events, reports):
    """The terminal features of each event, from all events and reports."""
    days_of = {}  # terminal -> list of transaction days
    for e in events:
        days_of.setdefault(e["terminal_id"], []).append(e["event_time_ms"] // DAY_MS)
    first = {}  # transaction id -> [terminal, tx day, earliest report day]
    for r in reports:
        if not r["is_fraud"]:
            continue
        day = r["reported_at_ms"] // DAY_MS
        if r["transaction_id"] not in first:
            first[r["transaction_id"]] = [r["terminal_id"], r["event_time_ms"] // DAY_MS, day]
        else:
            first[r["transaction_id"]][2] = min(first[r["transaction_id"]][2], day)
    frauds_of = {}  # terminal -> list of (tx day, report day)
    for terminal, tx_day, report_day in first.values():
        frauds_of.setdefault(terminal, []).append((tx_day, report_day))
    out = []
    for e in events:
        d = e["event_time_ms"] // DAY_MS
        m = e["terminal_id"]
        row = []
        for w in WINDOWS:
            lo, hi = d - DELAY - w, d - DELAY  # days lo .. hi - 1
            nb = sum(1 for x in days_of.get(m, ()) if lo <= x < hi)
            frauds = sum(1 for (x, r) in frauds_of.get(m, ()) if lo <= x < hi and r < d)
            row += [float(nb), 0.0 if nb == 0 else min(1.0, frauds / nb)]
        out.append(row)
    return out


def main():
    binary, src = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        raw, rep = os.path.join(tmp, "raw.jsonl"), os.path.join(tmp, "reports.jsonl")
        subprocess.run([sys.executable, os.path.join(src, "tools", "simulate_transactions.py"),
                        "--customers", "150", "--terminals", "1000", "--days", "60",
                        "--seed", "11", "--out", raw, "--reports", rep], check=True)
        with open(raw, encoding="utf-8") as f:
            events = [json.loads(line) for line in f]
        with open(rep, encoding="utf-8") as f:
            reports = [json.loads(line) for line in f]
        rng = random.Random(5)
        # Repeats: later ones, and earlier ones arriving after the first; reports of
        # transactions never read; a genuine verdict (counts nothing).
        for r in rng.sample(reports, len(reports) // 5):
            again = dict(r)
            shift = rng.choice((-1, 1)) * rng.randrange(DAY_MS // 2, 5 * DAY_MS)
            again["reported_at_ms"] = max(r["event_time_ms"], r["reported_at_ms"] + shift)
            reports.insert(rng.randrange(len(reports) + 1), again)
        for k in range(20):
            e = rng.choice(events)
            reports.append({"transaction_id": f"X{k}", "terminal_id": e["terminal_id"],
                            "event_time_ms": e["event_time_ms"] - DAY_MS,
                            "reported_at_ms": e["event_time_ms"], "is_fraud": True})
        reports.append(dict(reports[0], transaction_id="G1", is_fraud=False))
        bad_reports = [
            ('{"transaction_id":"R1","event_time_ms":1,"reported_at_ms":2,"is_fraud":true}',
             "missing_field"),
            ('{"transaction_id":"R2","terminal_id":"M1","event_time_ms":5,"reported_at_ms":4,'
             '"is_fraud":true}', "out_of_range"),
            ('{"transaction_id":"R3","terminal_id":"M1","event_time_ms":1,"reported_at_ms":2,'
             '"is_fraud":"yes"}', "wrong_type"),
        ]
        report_lines = [json.dumps(r) for r in reports]
        for k, (text, _) in enumerate(bad_reports):
            report_lines.insert(50 + 100 * k, text)
        bad_tx = ('{"transaction_id":"B1","customer_id":"C1","amount":1.0,'
                  '"event_time_ms":1522541801790}', "missing_field")
        tx_lines = [json.dumps(e) for e in events]
        tx_lines.insert(300, bad_tx[0])
        mixed_tx, mixed_rep = os.path.join(tmp, "tx.jsonl"), os.path.join(tmp, "rep.jsonl")
        with open(mixed_tx, "w", encoding="utf-8") as f:
            f.write("\n".join(tx_lines) + "\n")
        with open(mixed_rep, "w", encoding="utf-8") as f:
            f.write("\n".join(report_lines) + "\n")

        with open(os.path.join(src, "models", "fraud_velocity", "features.yaml"),
                  encoding="utf-8") as f:
            spec_text = f.read()
        spec = os.path.join(tmp, "features.yaml")
        with open(spec, "w", encoding="utf-8") as f:
            f.write(spec_text + f"terminal:\n  field: terminal_id\n  prefix: terminal\n"
                    f"  delay_days: {DELAY}\n  windows_days: [{', '.join(map(str, WINDOWS))}]\n")

        out = os.path.join(tmp, "features.csv")
        run = subprocess.run([binary, "replay", "--spec", spec, "--in", mixed_tx, "--reports",
                              mixed_rep, "--out", out], capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"vigil-features failed ({run.returncode}): {run.stderr}")
        for text, reason in bad_reports:
            line_no = report_lines.index(text) + 1
            if f"rep.jsonl:{line_no}: {reason}:" not in run.stderr:
                sys.exit(f"bad report line {line_no} not refused as {reason}:\n{run.stderr}")
        line_no = tx_lines.index(bad_tx[0]) + 1
        if f"tx.jsonl:{line_no}: {bad_tx[1]}: missing or empty field 'terminal_id'" \
                not in run.stderr:
            sys.exit(f"the transaction without a terminal was not refused:\n{run.stderr}")

        with open(out, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if len(rows) != len(events):
            sys.exit(f"{len(rows)} rows for {len(events)} good events")
        want = reference(events, reports)
        names = []
        for w in WINDOWS:
            names += [f"terminal_nb_tx_{w}d", f"terminal_risk_{w}d"]
        worst, risky = 0.0, 0
        for i, (row, ref, e) in enumerate(zip(rows, want, events)):
            if row["transaction_id"] != e["transaction_id"]:
                sys.exit(f"row {i}: {row['transaction_id']}, expected {e['transaction_id']}")
            risky += ref[-1] > 0
            for name, r in zip(names, ref):
                got = float(row[name])
                err = abs(got - r) / max(abs(r), 1e-12)
                worst = max(worst, err)
                if err > 1e-6:
                    sys.exit(f"row {i} ({e['transaction_id']}, {e['terminal_id']}): {name} = "
                             f"{got}, reference {r}")
        if risky < len(rows) // 20:
            sys.exit(f"only {risky} rows with a terminal risk above 0: the test proves little")
        print(f"terminal features match the Python reference: {len(rows)} rows x {len(names)} "
              f"features ({risky} with a 30-day risk above 0), worst relative error "
              f"{worst:.2e}; {len(reports)} reports; bad lines refused with their reason")


if __name__ == "__main__":
    main()

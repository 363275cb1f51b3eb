#!/usr/bin/env python3
"""Seeded, deterministic raw-transaction generator after the transaction simulator described
in "Reproducible Machine Learning for Credit Card Fraud Detection - Practical Handbook"
(Le Borgne, Siblini, Lebichot, Bontempi; ULB MLG and Worldline), written from its prose.

Customers sit at random places on a 100 x 100 grid, each with a mean amount ~ U(5, 100), a
standard deviation of half that, and a mean number of transactions per day ~ U(0, 4).
Terminals sit at random places too; a customer uses the terminals within radius 5. Each day
a customer makes Poisson(mean) transactions at random times of day (around midday, as the
handbook draws them), on one of its terminals chosen uniformly; amounts ~ N(mean, std),
redrawn uniformly in [0, 2 mean] when negative.

Fraud scenarios, marked in tx_fraud (1) and tx_fraud_scenario (1, 2, 3):
  1. every amount above 220 is fraud;
  2. each day 2 random terminals are compromised: all their transactions in the next 28 days
     are fraud;
  3. each day 3 random customers are compromised: a third of their transactions in the next
     14 days have their amount multiplied by 5 and are fraud.

Writes one JSON object per line, in event-time order (ties by transaction id):
  {"transaction_id", "customer_id", "terminal_id", "amount", "event_time_ms",
   "tx_fraud", "tx_fraud_scenario"}
vigil reads the first five; the labels are for training (tools/train_model.py).

With --reports FILE, the reports of the frauds, as a fraud.reports topic carries them (vigil's
terminal risk features), one JSON object per line in report-time order (ties by id):
  {"transaction_id", "customer_id", "terminal_id", "event_time_ms", "reported_at_ms",
   "is_fraud": true, "source"}
The handbook only assumes that labels are known after a week; the delays here are this
generator's own: an analyst confirms 60% of the frauds 1 hour to 2 days after the transaction,
the cardholder's chargeback reports the other 40% 2 to 21 days after it, and 15% of all frauds
get both reports (the later one a repeat, counted once). The reports come from a random stream
of their own, so adding them changes no transaction.

The same seed and arguments always give the same bytes (Python's own random.Random, no
numpy), so a run, a test and a training set can be rebuilt from the command alone.
"""
import argparse
import json
import math
import random
import sys
from datetime import datetime, timezone

DAY_S = 86400


def make_customers(rng, n):
    out = []
    for i in range(n):
        x, y = rng.uniform(0, 100), rng.uniform(0, 100)
        mean_amount = rng.uniform(5, 100)
        out.append({
            "id": i, "x": x, "y": y, "mean_amount": mean_amount, "std_amount": mean_amount / 2,
            "mean_nb_tx_per_day": rng.uniform(0, 4),
        })
    return out


def make_terminals(rng, n):
    return [(rng.uniform(0, 100), rng.uniform(0, 100)) for _ in range(n)]


def terminals_within(customers, terminals, r):
    """For each customer, the ids of the terminals within distance r (grid buckets of size r)."""
    cells = {}
    for t, (x, y) in enumerate(terminals):
        cells.setdefault((int(x // r), int(y // r)), []).append(t)
    out = []
    for c in customers:
        cx, cy = int(c["x"] // r), int(c["y"] // r)
        near = []
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for t in cells.get((cx + dx, cy + dy), ()):
                    tx, ty = terminals[t]
                    if math.hypot(c["x"] - tx, c["y"] - ty) < r:
                        near.append(t)
        out.append(sorted(near))
    return out


def poisson(rng, lam):
    # Knuth's method: fine for the small means drawn here (< 4).
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def generate(args):
    rng = random.Random(args.seed)
    customers = make_customers(rng, args.customers)
    terminals = make_terminals(rng, args.terminals)
    near = terminals_within(customers, terminals, args.radius)
    start = datetime.strptime(args.start_date, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    start_ms = int(start.timestamp()) * 1000

    txs = []  # (time_ms, customer, terminal, amount)
    for day in range(args.days):
        for c in customers:
            if not near[c["id"]]:
                continue
            for _ in range(poisson(rng, c["mean_nb_tx_per_day"])):
                # Around midday, as the handbook draws times of day.
                second = int(rng.gauss(DAY_S / 2, 20000))
                if not 0 < second < DAY_S:
                    continue
                amount = rng.gauss(c["mean_amount"], c["std_amount"])
                if amount < 0:
                    amount = rng.uniform(0, c["mean_amount"] * 2)
                terminal = near[c["id"]][rng.randrange(len(near[c["id"]]))]
                ms = start_ms + (day * DAY_S + second) * 1000 + rng.randrange(1000)
                txs.append([ms, c["id"], terminal, round(amount, 2), 0, 0])
    txs.sort(key=lambda t: (t[0], t[1]))

    # Scenario 1: large amounts.
    for t in txs:
        if t[3] > 220:
            t[4], t[5] = 1, 1
    # Scenarios 2 and 3, day by day.
    by_day = [[] for _ in range(args.days)]
    for t in txs:
        by_day[(t[0] - start_ms) // (DAY_S * 1000)].append(t)
    compromised_terminals = {}  # terminal -> last day compromised
    compromised_customers = {}  # customer -> last day compromised
    for day in range(args.days):
        for term in rng.sample(range(args.terminals), 2):
            compromised_terminals[term] = day + 28 - 1
        for cust in rng.sample(range(args.customers), 3):
            compromised_customers[cust] = day + 14 - 1
        # A compromise drawn on day d covers days d .. d + 27 (terminals) or d + 13 (customers);
        # drawn again, it runs from the later draw.
        for t in by_day[day]:
            last = compromised_terminals.get(t[2])
            if last is not None and day <= last:
                t[4], t[5] = 1, 2
        for t in by_day[day]:
            last = compromised_customers.get(t[1])
            if last is not None and day <= last and rng.random() < 1 / 3:
                t[3] = round(t[3] * 5, 2)
                t[4], t[5] = 1, 3
    return txs, start_ms


def make_reports(txs, seed):
    """The fraud reports of `txs`' frauds: (reported_at_ms, transaction index, source)."""
    rng = random.Random(seed + 7919)
    hour_ms, day_ms = 3600 * 1000, DAY_S * 1000
    reports = []
    for i, t in enumerate(txs):
        if not t[4]:
            continue
        analyst = t[0] + rng.randrange(hour_ms, 2 * day_ms)
        chargeback = t[0] + rng.randrange(2 * day_ms, 21 * day_ms)
        first = rng.random() < 0.6
        reports.append((analyst if first else chargeback, i, "analyst" if first else "chargeback"))
        if rng.random() < 0.15:
            reports.append((chargeback if first else analyst, i,
                            "chargeback" if first else "analyst"))
    reports.sort(key=lambda r: (r[0], r[1]))
    return reports


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=5000)
    p.add_argument("--terminals", type=int, default=10000)
    p.add_argument("--days", type=int, default=120)
    p.add_argument("--radius", type=float, default=5.0)
    p.add_argument("--start-date", default="2018-04-01")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="-", help="JSON lines file ('-': stdout)")
    p.add_argument("--reports", default="", help="also write the frauds' reports to this file")
    args = p.parse_args()
    txs, _ = generate(args)
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")
    frauds = 0
    for i, (ms, cust, term, amount, fraud, scenario) in enumerate(txs):
        frauds += fraud
        out.write(json.dumps({
            "transaction_id": f"T{i:09d}", "customer_id": f"C{cust:06d}",
            "terminal_id": f"M{term:06d}", "amount": amount, "event_time_ms": ms,
            "tx_fraud": fraud, "tx_fraud_scenario": scenario,
        }, separators=(",", ":")) + "\n")
    if out is not sys.stdout:
        out.close()
    if args.reports:
        reports = make_reports(txs, args.seed)
        with open(args.reports, "w", encoding="utf-8") as f:
            for reported_at, i, source in reports:
                ms, cust, term = txs[i][0], txs[i][1], txs[i][2]
                f.write(json.dumps({
                    "transaction_id": f"T{i:09d}", "customer_id": f"C{cust:06d}",
                    "terminal_id": f"M{term:06d}", "event_time_ms": ms,
                    "reported_at_ms": reported_at, "is_fraud": True, "source": source,
                }, separators=(",", ":")) + "\n")
        print(f"simulate_transactions: {len(reports)} fraud reports to {args.reports}",
              file=sys.stderr)
    print(f"simulate_transactions: {len(txs)} transactions, {frauds} fraudulent "
          f"({100.0 * frauds / max(1, len(txs)):.2f}%), {args.customers} customers, "
          f"{args.terminals} terminals, {args.days} days from {args.start_date}",
          file=sys.stderr)


if __name__ == "__main__":
    main()

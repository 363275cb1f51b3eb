#!/usr/bin/env python3
"""The 15 features of fraud_terminal for every transaction, computed by brute force in Python.

Customer features from tests/features/replay_matches_python_reference.py (the events before
each one in the log, itself included) and terminal features from
tests/features/terminal_replay_matches_python_reference.py (the W whole days before day(t) -
7 and the frauds reported before day(t)): both independent of src/features.

usage: terminal_reference.py <events.jsonl> <reports.jsonl> <out.csv>
"""
import csv
import importlib.util
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name):
    path = os.path.join(HERE, "..", "features", name + ".py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    events_path, reports_path, out_path = sys.argv[1:4]
    with open(events_path, encoding="utf-8") as f:
        events = [json.loads(line) for line in f]
    with open(reports_path, encoding="utf-8") as f:
        reports = [json.loads(line) for line in f]
    customer = load("replay_matches_python_reference").reference(events, (1, 7, 30))
    terminal = load("terminal_replay_matches_python_reference").reference(events, reports)
    with open(out_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        for e, c, t in zip(events, customer, terminal):
            w.writerow([e["transaction_id"]] + [repr(float(x)) for x in c + t])
    return 0


if __name__ == "__main__":
    sys.exit(main())

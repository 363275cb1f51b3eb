#!/usr/bin/python3
"""The tables, ratios and target checks of bench/http_bench.sh, from its http.tsv.

    /usr/bin/python3 bench/http_report.py http.tsv

Printed by http_bench.sh after the run, and imported by bench/make_benchmarks_md.py for
BENCHMARKS.md, so both say the same thing. Standard library only.
"""
import csv
import os
import sys
from typing import Dict, List, NamedTuple, Optional

# nginx-Nw: N worker processes answering a fixed body (the HTTP ceiling); fastapi-Nw: FastAPI as
# deployed (uvicorn with httptools + uvloop, async endpoint) with N workers; fastapi-h11-2w: the
# slower sync endpoint on the pure-Python h11 parser, an extra row.
SERVERS = ["vigil", "nginx-1w", "nginx-2w", "fastapi-1w", "fastapi-2w", "fastapi-h11-2w"]
# The references vigil's req/s is set against, in the ratio table's column order.
REFERENCES = ["nginx-1w", "nginx-2w", "fastapi-2w", "fastapi-1w", "fastapi-h11-2w"]
BODY_NAMES = {"1": "single instance", "32": "32 instances"}


class Cell(NamedTuple):
    body: str
    server: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


class Target(NamedTuple):
    what: str
    measured: str
    met: Optional[bool]  # None: not measured in this run


def load(path: str) -> List[Cell]:
    with open(path, newline="") as f:
        return [Cell(r["body"], r["server"], int(r["connections"]), float(r["rps"]),
                     float(r["p50_ms"]), float(r["p99_ms"]), int(r["errors"]))
                for r in csv.DictReader(f, delimiter="\t")]


def body_name(body: str) -> str:
    return BODY_NAMES.get(body, f"{body} instances")


def bodies(cells: List[Cell]) -> List[str]:
    return list(dict.fromkeys(c.body for c in cells))


def connections(cells: List[Cell], body: str) -> List[int]:
    return sorted({c.connections for c in cells if c.body == body})


def index(cells: List[Cell]) -> Dict[tuple, Cell]:
    return {(c.body, c.server, c.connections): c for c in cells}


def ratio(a: Optional[Cell], b: Optional[Cell]) -> Optional[float]:
    if a is None or b is None or b.rps <= 0:
        return None
    return a.rps / b.rps


def ratio_rows(cells: List[Cell], body: str) -> List[tuple]:
    """(connections, vigil / each of REFERENCES...); None where missing."""
    at = index(cells)
    rows = []
    for conns in connections(cells, body):
        vigil = at.get((body, "vigil", conns))
        rows.append((conns,) + tuple(ratio(vigil, at.get((body, other, conns)))
                                     for other in REFERENCES))
    return rows


def share_target(at: Dict[tuple, Cell], conns: int, floor: float) -> Target:
    r = ratio(at.get(("1", "vigil", conns)), at.get(("1", "nginx-1w", conns)))
    return Target(f"{conns} connections: vigil >= {100 * floor:.0f} % of nginx-1w req/s",
                  "-" if r is None else f"{100 * r:.1f} %", None if r is None else r >= floor)


def recommend_targets(cells: List[Cell]) -> List[Target]:
    """Issue 24's: POST /recommend at 64 connections, p99 and req/s against nginx-1w."""
    at = index(cells)
    v64 = at.get(("1", "vigil", 64))
    out = [Target("64 connections: vigil p99 <= 2 ms (10,000 terminals)",
                  "-" if v64 is None else f"{v64.p99_ms:.3f} ms",
                  None if v64 is None else v64.p99_ms <= 2.0)]
    r = ratio(v64, at.get(("1", "nginx-1w", 64)))
    out.append(Target("64 connections: vigil / nginx-1w req/s",
                      "-" if r is None else f"{100 * r:.1f} %", None))
    return out


def targets(cells: List[Cell]) -> List[Target]:
    """The targets of issue 21 (same run, single-instance body), then the FastAPI ratios."""
    if os.environ.get("ENDPOINT") == "recommend":
        return recommend_targets(cells)
    at = index(cells)
    v64, v1 = at.get(("1", "vigil", 64)), at.get(("1", "vigil", 1))
    n1 = at.get(("1", "nginx-1w", 1))
    out = [share_target(at, 64, 0.85)]
    out.append(Target("64 connections: vigil p99 <= 2 ms",
                      "-" if v64 is None else f"{v64.p99_ms:.3f} ms",
                      None if v64 is None else v64.p99_ms <= 2.0))
    out.append(share_target(at, 256, 0.80))
    if v1 is None or n1 is None:
        out.append(Target("1 connection: vigil p50 <= nginx-1w p50 + 25 us", "-", None))
    else:
        over = 1000 * (v1.p50_ms - n1.p50_ms)
        out.append(Target("1 connection: vigil p50 <= nginx-1w p50 + 25 us",
                          f"{1000 * v1.p50_ms:.0f} us ({over:+.0f} us)", over <= 25))
    for other in ("fastapi-2w", "fastapi-1w"):  # reported beside the targets, no bar
        r = ratio(v64, at.get(("1", other, 64)))
        out.append(Target(f"64 connections: vigil / {other} (deployed) req/s",
                          "-" if r is None else f"{r:.1f}x", None))
    return out


def verdict(t: Target) -> str:
    if t.met is None:
        return "(reported)" if t.measured != "-" else "not measured"
    return "MET" if t.met else "NOT MET"


def pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def times(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:.1f}x"


def print_report(cells: List[Cell]) -> None:
    for body in bodies(cells):
        if os.environ.get("ENDPOINT") == "recommend":
            print("POST /recommend, one customer's top 10 per request")
        else:
            print(f"POST /predict, {body_name(body)} per request")
        print(f"{'server':<15} {'connections':>11} {'req/s':>10} {'p50 ms':>8} {'p50 us':>7}"
              f" {'p99 ms':>8} {'errors':>7}")
        for c in cells:
            if c.body == body:
                print(f"{c.server:<15} {c.connections:>11} {c.rps:>10.0f} {c.p50_ms:>8.3f}"
                      f" {1000 * c.p50_ms:>7.0f} {c.p99_ms:>8.3f} {c.errors:>7}")
        print()
        print(f"vigil req/s against the others, {body_name(body)}")
        print(f"{'connections':>11} {'of nginx-1w':>12} {'of nginx-2w':>12} {'/ fastapi-2w':>13}"
              f" {'/ fastapi-1w':>13} {'/ h11-2w':>9}")
        for conns, n1, n2, f2, f1, h2 in ratio_rows(cells, body):
            print(f"{conns:>11} {pct(n1):>12} {pct(n2):>12} {times(f2):>13} {times(f1):>13}"
                  f" {times(h2):>9}")
        print()
    print("targets" if os.environ.get("ENDPOINT") == "recommend"
          else "targets (single instance per request)")
    for t in targets(cells):
        print(f"  {t.what:<52} {t.measured:>18}  {verdict(t)}")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print_report(load(sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

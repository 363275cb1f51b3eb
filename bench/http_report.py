#!/usr/bin/python3
"""The tables, ratios and target checks of bench/http_bench.sh, from its http.tsv.

    /usr/bin/python3 bench/http_report.py http.tsv

Printed by http_bench.sh after the run, and imported by bench/make_benchmarks_md.py for
BENCHMARKS.md, so both say the same thing. Standard library only.
"""
import csv
import sys
from typing import Dict, List, NamedTuple, Optional

SERVERS = ["vigil", "nginx", "fastapi-1w", "fastapi-2w"]
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
    """(connections, vigil/nginx, vigil/fastapi-2w, vigil/fastapi-1w); None where missing."""
    at = index(cells)
    rows = []
    for conns in connections(cells, body):
        vigil = at.get((body, "vigil", conns))
        rows.append((conns,) + tuple(ratio(vigil, at.get((body, other, conns)))
                                     for other in ("nginx", "fastapi-2w", "fastapi-1w")))
    return rows


def targets(cells: List[Cell]) -> List[Target]:
    """The issue's targets, single-instance body."""
    at = index(cells)
    v64, v1 = at.get(("1", "vigil", 64)), at.get(("1", "vigil", 1))
    out = []
    r = ratio(v64, at.get(("1", "nginx", 64)))
    out.append(Target("64 connections: vigil >= 70 % of nginx req/s",
                      "-" if r is None else f"{100 * r:.1f} %", None if r is None else r >= 0.70))
    r = ratio(v64, at.get(("1", "fastapi-2w", 64)))
    out.append(Target("64 connections: vigil >= 10x FastAPI 2 workers",
                      "-" if r is None else f"{r:.1f}x", None if r is None else r >= 10))
    out.append(Target("64 connections: vigil p99 <= 2 ms",
                      "-" if v64 is None else f"{v64.p99_ms:.3f} ms",
                      None if v64 is None else v64.p99_ms <= 2.0))
    out.append(Target("1 connection: vigil p50 <= 0.100 ms",
                      "-" if v1 is None else f"{v1.p50_ms:.3f} ms ({1000 * v1.p50_ms:.0f} us)",
                      None if v1 is None else v1.p50_ms <= 0.100))
    return out


def verdict(t: Target) -> str:
    return "not measured" if t.met is None else ("MET" if t.met else "NOT MET")


def pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def times(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:.1f}x"


def print_report(cells: List[Cell]) -> None:
    for body in bodies(cells):
        print(f"POST /predict, {body_name(body)} per request")
        print(f"{'server':<11} {'connections':>11} {'req/s':>10} {'p50 ms':>8} {'p50 us':>7}"
              f" {'p99 ms':>8} {'errors':>7}")
        for c in cells:
            if c.body == body:
                print(f"{c.server:<11} {c.connections:>11} {c.rps:>10.0f} {c.p50_ms:>8.3f}"
                      f" {1000 * c.p50_ms:>7.0f} {c.p99_ms:>8.3f} {c.errors:>7}")
        print()
        print(f"vigil req/s against the others, {body_name(body)}")
        print(f"{'connections':>11} {'of nginx':>10} {'/ fastapi-2w':>13} {'/ fastapi-1w':>13}")
        for conns, nginx, f2, f1 in ratio_rows(cells, body):
            print(f"{conns:>11} {pct(nginx):>10} {times(f2):>13} {times(f1):>13}")
        print()
    print("targets (single instance per request)")
    for t in targets(cells):
        print(f"  {t.what:<48} {t.measured:>18}  {verdict(t)}")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print_report(load(sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

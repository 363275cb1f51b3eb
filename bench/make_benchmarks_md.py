#!/usr/bin/python3
"""Writes BENCHMARKS.md and its plots from the outputs that bench/run_all.sh captured.

    /usr/bin/python3 bench/make_benchmarks_md.py --results docs/bench/results \\
        --plots docs/bench --out BENCHMARKS.md

Every figure in the file comes from those outputs; the fixed paragraphs below only explain
what the benchmarks measure. scoring_bench and stream_bench print tables for people, not a
machine-readable form, so their tables are parsed here: a line that no longer matches stops
the generator with the line it expected. The HTTP figures come from http_bench.sh's
http.tsv through bench/http_report.py, which also prints them in the shell. Plots: gnuplot.
Standard library only.
"""
import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_report  # noqa: E402  (the HTTP tables and targets, shared with http_bench.sh)

HTTP_COLORS = {"vigil": "#d62728", "nginx-1w": "#2ca02c", "nginx-2w": "#98df8a",
               "fastapi-1w": "#1f77b4", "fastapi-2w": "#9467bd", "fastapi-h11-2w": "#8c564b"}


class FormatChanged(Exception):
    pass


def need(pattern: str, text: str, what: str) -> re.Match:
    m = re.search(pattern, text, re.M)
    if m is None:
        raise FormatChanged(f"{what}: no line matching /{pattern}/")
    return m


def read_tsv(path: str) -> Dict[str, str]:
    with open(path, newline="") as f:
        return {row[0]: row[1] for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
                if len(row) >= 2}


# --- parsing the benchmarks' printed tables -------------------------------------------------

SCORING_ROW = re.compile(
    r"^\s*(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)%\s+(\d+)\s+([\d.]+)%"
    r"\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", re.M)
CPU_ROW = re.compile(r"^cpu\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)%\s*$", re.M)
SCORING_KEYS = ["batch", "raw", "raw_p50", "raw_p99", "path", "path_raw", "prod", "prod_raw",
                "req_p50", "req_p99", "avg_batch"]
LIFECYCLE_ROW = re.compile(r"^(\S.*?)\s{2,}(\d+)\s+(\d+)\s+([\d.]+)%\s*$", re.M)


def parse_scoring(text: str) -> dict:
    head = need(r"^scoring_bench: model (\S+), width (\d+), device (\S+), (\d+) worker\(s\), "
                r"intra-op threads (\d+), ([\d.]+) s per cell", text, "scoring_bench header")
    rows = [dict(zip(SCORING_KEYS, (float(x) for x in m.groups())))
            for m in SCORING_ROW.finditer(text)]
    if not rows:
        raise FormatChanged("scoring_bench: no batch rows")
    out = {"model": head[1], "device": head[3], "workers": int(head[4]),
           "intra_op": int(head[5]), "seconds": head[6], "rows": rows, "lifecycle": None,
           "cpu": [(int(m[1]), float(m[2]), float(m[3]), float(m[4]))
                   for m in CPU_ROW.finditer(text)]}
    life = re.search(r"^model lifecycle costs at batch (\d+)", text, re.M)
    if life:
        out["lifecycle"] = {
            "batch": int(life[1]),
            "rows": [(m[1], float(m[2]), float(m[3]), float(m[4]))
                     for m in LIFECYCLE_ROW.finditer(text[life.end():])]}
    return out


THROUGHPUT_ROW = re.compile(r"^(raw|relay|vigil, Redis off|vigil, Redis on|python)(:.*?)\s{2,}"
                            r"(\d+)(?:  (.*))?$", re.M)
LATENCY_ROW = re.compile(r"^\s+(vigil|relay)\s+(\d+)/s\s+p50\s+(\d+) us\s+p99\s+(\d+) us\s+"
                         r"p99\.9\s+(\d+) us\s+max\s+(\d+) us\s+\((\d+)/(\d+)\)", re.M)


def parse_stream(text: str) -> dict:
    head = need(r"^stream_bench: (\d+) events on (\d+) partitions", text, "stream_bench header")
    tp = {m[1]: {"label": m[1] + m[2], "rate": float(m[3]), "ratio": m[4] or ""}
          for m in THROUGHPUT_ROW.finditer(text)}
    for key in ("raw", "relay", "vigil, Redis off", "vigil, Redis on"):
        if key not in tp:
            raise FormatChanged(f"stream_bench: no throughput row '{key}'")
    steady = need(r"steady state \(25%\.\.75% delivered\): Redis on (\d+) events/s, "
                  r"Redis off (\d+)", text, "stream_bench steady state")
    redis = need(r"Redis on: (\d+) of (\d+) scores written to Redis.*?consumer paused (\d+) "
                 r"times \(Redis off: (\d+)\); (\d+) batches, (\d+) events per batch", text,
                 "stream_bench Redis line")
    alloc = need(r"allocations per event in steady state.*?Redis on ([\d.]+), Redis off ([\d.]+)",
                 text, "stream_bench allocations")
    forward = need(r"LibTorch's forward pass: (\d+) allocations per batch \(measured alone at "
                   r"(\d+) rows\), ([\d.]+) per event at (\d+) events per batch", text,
                   "stream_bench forward allocations")
    latency: Dict[int, dict] = {}
    for m in LATENCY_ROW.finditer(text):
        latency.setdefault(int(m[2]), {})[m[1]] = {
            "p50": int(m[3]), "p99": int(m[4]), "p999": int(m[5]), "max": int(m[6]),
            "seen": int(m[7]), "sent": int(m[8])}
    lat_head = re.search(r"^latency: .*?(\d+) s per rate after (\d+) s warm-up", text, re.M)
    return {"events": int(head[1]), "partitions": int(head[2]), "tp": tp,
            "steady_on": float(steady[1]), "steady_off": float(steady[2]),
            "redis_written": int(redis[1]), "redis_of": int(redis[2]),
            "pauses_on": int(redis[3]), "pauses_off": int(redis[4]),
            "batches": int(redis[5]), "per_batch": int(redis[6]),
            "alloc_on": float(alloc[1]), "alloc_off": float(alloc[2]),
            "fwd_allocs": int(forward[1]), "fwd_rows": int(forward[2]),
            "fwd_per_event": float(forward[3]),
            "latency": {r: v for r, v in sorted(latency.items()) if "vigil" in v and "relay" in v},
            "latency_cell": (f"{lat_head[1]} s per rate after {lat_head[2]} s of warm-up"
                             if lat_head else "")}


# --- Markdown helpers -----------------------------------------------------------------------

def table(headers: List[str], rows: List[list], align: Optional[str] = None) -> str:
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def num(x: float) -> str:
    return f"{x:,.0f}"


def met(ok: Optional[bool]) -> str:
    return "not measured" if ok is None else ("**met**" if ok else "**not met**")


def duration(seconds: int) -> str:
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def cmd(commands: Dict[str, str], name: str) -> str:
    return f"`{commands[name]}`"


# --- plots ----------------------------------------------------------------------------------

def gnuplot(script: str) -> None:
    subprocess.run(["/usr/bin/gnuplot"], input=script, text=True, check=True)


def plot_http(cells, png_rps: str, png_p99: str, tmp: str) -> None:
    panels = []
    for body in http_report.bodies(cells):
        series = []
        for server in http_report.SERVERS:
            pts = sorted((c.connections, c.rps, c.p99_ms) for c in cells
                         if c.body == body and c.server == server)
            if not pts:
                continue
            path = os.path.join(tmp, f"http-{body}-{server}.dat")
            with open(path, "w") as f:
                f.writelines(f"{c} {rps} {p99}\n" for c, rps, p99 in pts)
            series.append((server, path))
        conns = http_report.connections(cells, body)
        panels.append((http_report.body_name(body), series, conns))

    def script(png: str, column: int, ylabel: str, yformat: str, title: str) -> str:
        s = [f"set terminal pngcairo size {620 * len(panels)},440 font 'sans,10'",
             f"set output '{png}'",
             f"set multiplot layout 1,{len(panels)} title '{title}'",
             "set logscale xy", "set grid", "set key outside right top", "set xlabel 'connections'",
             f"set ylabel '{ylabel}'", f"set format y '{yformat}'"]
        for name, series, conns in panels:
            s.append("set xtics (" + ", ".join(f"'{c}' {c}" for c in conns) + ")")
            s.append(f"set xrange [{conns[0] / 1.4}:{conns[-1] * 1.4}]")
            s.append(f"set title '{name} per request'")
            s.append("plot " + ", ".join(
                f"'{path}' using 1:{column} with linespoints lw 2 pt 7 "
                f"lc rgb '{HTTP_COLORS.get(server, '#000000')}' title '{server}'"
                for server, path in series))
        s.append("unset multiplot")
        return "\n".join(s) + "\n"

    gnuplot(script(png_rps, 2, "requests/s", "%.0s%c",
                   "POST /predict throughput (wrk, same machine)"))
    gnuplot(script(png_p99, 3, "p99 latency, ms", "%g",
                   "POST /predict p99 latency (wrk, same machine)"))


def plot_stream(latency: Dict[int, dict], png: str, tmp: str) -> None:
    path = os.path.join(tmp, "stream-latency.dat")
    with open(path, "w") as f:
        for rate, r in latency.items():
            f.write(f"{rate} {r['vigil']['p50'] / 1000} {r['vigil']['p99'] / 1000} "
                    f"{r['relay']['p50'] / 1000} {r['relay']['p99'] / 1000}\n")
    gnuplot("\n".join([
        "set terminal pngcairo size 820,440 font 'sans,10'", f"set output '{png}'",
        "set title 'Kafka path: produce call -> score read back, by offered load'",
        "set grid", "set key outside right top", "set xlabel 'offered load, events/s'",
        "set ylabel 'latency, ms'", "set logscale y", "set format y '%g'",
        "set format x '%.0s%c'",
        f"plot '{path}' using 1:3 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'vigil p99', "
        f"'{path}' using 1:2 with linespoints lw 2 pt 7 dt 2 lc rgb '#d62728' title 'vigil p50', "
        f"'{path}' using 1:5 with linespoints lw 2 pt 5 lc rgb '#7f7f7f' title 'relay p99', "
        f"'{path}' using 1:4 with linespoints lw 2 pt 5 dt 2 lc rgb '#7f7f7f' title 'relay p50'",
    ]) + "\n")


# --- the sections ---------------------------------------------------------------------------

def machine_section(m: Dict[str, str], durations: Dict[str, str], results_link: str) -> str:
    total = int(m.get("total_seconds", "0"))
    parts = {"scoring": "model path", "train_256": "training the 256-256 model",
             "scoring_256": "its model path", "stream": "streaming",
             "stream_deployed": "streaming as deployed", "http": "HTTP"}
    per = ", ".join(f"{parts.get(k, k)} {duration(int(v))}" for k, v in durations.items()
                    if k != "name")
    rows = [["cores (nproc)", m["cores"]], ["CPU", m["cpu"]], ["memory", m["memory"]],
            ["OS", m["os"]], ["kernel", m["kernel"]],
            ["GPU", m.get("gpu") or "none (nvidia-smi finds none)"],
            ["load average before the run", m["load"]],
            ["date", m["date"]], ["commit", m["commit"]],
            ["uncommitted changes", m["uncommitted"]], ["binaries", m["binaries"]],
            ["run time", f"{duration(total)} ({per})"]]
    note = ""
    if m["uncommitted"] != "none":
        note = ("\nThe tree had uncommitted changes when it ran (listed above): the binaries in "
                "`build/release` were built from the working tree of their build time, which may "
                "differ from the commit.\n")
    return f"""## Machine and run

Everything — the embedded Kafka broker, Redis, the load generators, wrk and the server under
test — shares the same {m['cores']} cores. Shared machines are noisy: compare the ratios within
one table, not with other machines or other runs. The raw outputs of this run are in
[`{results_link}`]({results_link}); each section names the command that produced it, run from
the repository root.

{table(["machine", ""], rows, "ll")}
{note}"""


def scoring_section(s: dict, wide: Optional[dict], commands: Dict[str, str]) -> str:
    rows = [[int(r["batch"]), num(r["raw"]), num(r["path"]), f"{r['path_raw']:.1f} %",
             num(r["prod"]), f"{r['prod_raw']:.1f} %", f"{r['req_p50']:.3f}",
             f"{r['req_p99']:.3f}", f"{r['avg_batch']:.1f}"] for r in s["rows"]]
    out = [f"""## Scoring engine ({cmd(commands, 'scoring')})

raw = one thread calling the model's forward on pre-packed batches; path = queue → batcher →
model → completion with the queue pre-filled (capacity), rows completed as the stream's are (each
batch handed to one completion, no callback per row); +producer = the same fed live by one
producer thread building requests with a callback each, as HTTP's are (it shares the cores with
the worker). {workers(s)},
intra-op threads {s['intra_op']}, device {s['device']}, {s['seconds']} s per cell.
req p50/p99 are the latencies of the +producer requests.

Default model `fraud_mlp` (30-64-32-1 MLP, `{s['model']}`):

{table(["batch", "raw rows/s", "path rows/s", "path/raw", "+producer rows/s", "+producer/raw",
        "req p50 ms", "req p99 ms", "avg batch"], rows)}
"""]
    big = max(s["rows"], key=lambda r: (r["batch"] == 256, r["batch"]))
    fwd_ns, path_ns = 1e9 / big["raw"], 1e9 / big["path"]
    text = (f"At batch {int(big['batch'])} the default model's forward costs {fwd_ns:.0f} ns per "
            f"row and the path {path_ns:.0f} ns, so the path's own work per request (queue "
            f"hand-off, packing, completion) is {path_ns - fwd_ns:.0f} ns per row")
    if path_ns < fwd_ns:
        text += " (below zero: the medians moved more than the path's own work costs)"
    if wide:
        lo = min(r["path_raw"] for r in wide["rows"])
        hi = max(r["path_raw"] for r in wide["rows"])
        span = f"{lo:.0f}" if round(lo) == round(hi) else f"{lo:.0f}–{hi:.0f}"
        text += (f"; for the 256-256 model below, whose forward costs more, the path "
                 f"delivers {span} % of the raw forward, depending on the batch size")
    text += ". The +producer latencies are those of an open-loop producer: where it offers more "
    text += "than the path takes (batch 1), they are queueing."
    one = next((r for r in s["rows"] if r["batch"] == 1), None)
    if one and one["path"] > one["raw"]:
        text += (" At batch 1 the path beats \"raw\" because raw times each forward call "
                 "individually with the clock.")
    out.append(text + "\n")
    if s["cpu"]:
        crows = [[b, f"{r:.1f}", f"{p:.1f}", f"{q:.1f} %"] for b, r, p, q in s["cpu"]]
        out.append("Raw and path alternate three times per batch size, and the tables give the "
                   "medians. The same rounds by the CPU time of the thread doing the work (its "
                   "own clock, so time the machine gives to others does not count; on this "
                   "shared machine it still moves by tens of percent between runs):\n\n"
                   + table(["batch", "raw ns/row", "path ns/row", "path/raw"], crows) + "\n")
    if wide:
        wrows = [[int(r["batch"]), num(r["raw"]), num(r["path"]), f"{r['path_raw']:.1f} %",
                  num(r["prod"]), f"{r['prod_raw']:.1f} %"] for r in wide["rows"]]
        out.append(f"""A 256-256 hidden model, trained for the run ({cmd(commands, 'train_256')};
the training's accuracy does not matter here, only the model's shape), then
{cmd(commands, 'scoring_256')}:

{table(["batch", "raw rows/s", "path rows/s", "path/raw", "+producer rows/s", "+producer/raw"],
       wrows)}
""")
    life = s["lifecycle"]
    if life and life["rows"]:
        lrows = [[f, num(p), num(w), f"{r:.1f} %"] for f, p, w, r in life["rows"]]
        out.append(f"""### Model lifecycle costs (same command, batch {life['batch']})

Path capacity at batch {life['batch']}, {workers(s)}, each feature against the
plain path measured just before it in the same run. The shadow is a second load of the same
model file (the same work as any same-sized version); reason codes are a forward plus one
backward per batch (LibTorch autograd) and a top-5 per row.

{table(["feature", "plain rows/s", "with it", "ratio"], lrows, "lrrr")}
""")
    return "\n".join(out)


def workers(s: dict) -> str:
    return f"{s['workers']} worker" + ("" if s["workers"] == 1 else "s")


def wrap(text: str, width: int = 96, indent: str = "") -> str:
    """Fills a paragraph to width; a `code span` stays on one line, however long."""
    words = re.findall(r"(?:`[^`]*`|[^\s`])+", text)
    lines, line = [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = indent + word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join(lines + [line])


def reflow(md: str) -> str:
    """Fills the prose paragraphs and list items, whose figures make their lines uneven;
    leaves headings, tables, images, comments and code blocks as they are."""
    out, para, fenced = [], [], False

    def flush():
        if para:
            item = para[0].startswith("- ")
            out.append(wrap(" ".join(p.strip() for p in para), indent="  " if item else ""))
            para.clear()

    for line in md.split("\n"):
        if line.startswith("```"):
            flush()
            fenced = not fenced
            out.append(line)
        elif fenced or not line.strip() or line.startswith(("#", "|", "![", "<!--", "     ")):
            flush()
            out.append(line)
        else:
            if line.startswith("- "):
                flush()
            para.append(line)
    flush()
    return "\n".join(out)


def stream_section(st: dict, commands: Dict[str, str], png: Optional[str]) -> str:
    tp = st["tp"]
    raw, relay = tp["raw"]["rate"], tp["relay"]["rate"]
    off, on = tp["vigil, Redis off"]["rate"], tp["vigil, Redis on"]["rate"]
    py = tp.get("python", {}).get("rate")
    bold = ("vigil, Redis off", "vigil, Redis on")
    rows = [[f"**{r['label']}**" if k in bold else r["label"],
             f"**{num(r['rate'])}**" if k in bold else num(r["rate"]), r["ratio"]]
            for k, r in tp.items()]
    rest = st["alloc_on"] - st["fwd_per_event"]
    targets = [
        ("Redis on ≥ 6x the Python consumer",
         f"{on / py:.1f}x" if py else "-", (on / py >= 6) if py else None),
        ("Redis on ≥ 400,000 events/s end to end",
         f"{num(on)} events/s (steady state {num(st['steady_on'])})", on >= 400_000),
        ("Redis off ≥ 60 % of the bare consumer",
         f"{100 * off / raw:.1f} % (the relay itself: {100 * relay / raw:.1f} % of the bare "
         f"consumer; vigil: {100 * off / relay:.1f} % of the relay)", off / raw >= 0.60),
    ]
    out = [f"""## Streaming, in one process ({cmd(commands, 'stream')})

**In-process figures, vigil's most favourable setting** (the deployed shape is the next
section): one process holds an embedded Kafka (librdkafka mock cluster, 3 brokers), a real
redis-server (child process), vigil's `Service`, and every reference measured in the same run.

### Throughput: {num(st['events'])} pre-loaded events, {st['partitions']} partitions

Clock: first record consumed → last score delivered to `scores` (and, Redis on, last SET
answered by Redis; the Redis write queue is sized for the run so nothing is skipped). relay =
consume → produce with no work (plain librdkafka, linger.ms=1); python =
`bench/python_consumer.py`, the consumer a team would write, same job, Redis on.

{table(["path", "events/s", "ratio"], rows, "lrl")}

- Steady state (25 %..75 % delivered): Redis on {num(st['steady_on'])} events/s, Redis off
  {num(st['steady_off'])}. The end-to-end Redis-on figure includes Redis catching up after the
  Kafka side is done.
- Redis on: {num(st['redis_written'])} of {num(st['redis_of'])} scores written to Redis; the
  consumer paused {st['pauses_on']} times (Redis off: {st['pauses_off']});
  {num(st['batches'])} batches, {st['per_batch']} events per batch.
- C++ heap allocations (global `operator new`, every thread; librdkafka's are C mallocs and
  not counted) in steady state: **{st['alloc_on']:.3f} per event** Redis on,
  {st['alloc_off']:.3f} Redis off. LibTorch's forward pass accounts for {st['fwd_allocs']}
  allocations per batch measured alone at {st['fwd_rows']} rows, {st['fwd_per_event']:.3f} per
  event at {st['per_batch']} events per batch. What is left, {rest:.3f} per event, is per batch
  too (the per-batch histogram tallies): the per-record path from consume to produce allocates
  nothing (ids up to 48 bytes and features up to 32 values are stored inline; the tracker's
  pending offsets live in a reused ring; score bytes in a reused per-batch buffer; Redis
  commands in reused chunks).

{table(["target", "measured", ""], [[t, v, met(ok)] for t, v, ok in targets], "lll")}

A consumer that also produces is far below a bare consumer on this in-process broker (the
relay line): the mock broker answers one message set per partition per fetch and serves the
produce requests on the same thread, so the Redis-off target against the bare consumer
measures the broker as much as vigil; vigil against the relay is the comparison of like with
like.
"""]
    lat = st["latency"]
    if lat:
        def seen(p: dict) -> str:
            return "all" if p["seen"] == p["sent"] else f"{num(p['seen'])} of {num(p['sent'])}"

        lrows = []
        for rate, r in lat.items():
            v, rl = r["vigil"], r["relay"]
            lrows.append([f"{num(rate)}/s", num(v["p50"]), num(v["p99"]), num(v["p999"]),
                          num(v["max"]), seen(v), num(rl["p50"]), num(rl["p99"]),
                          num(rl["p999"]), num(rl["max"]), seen(rl)])
        short = [f"{who} at {num(rate)}/s" for rate, r in lat.items() for who, p in r.items()
                 if p["seen"] < p["sent"]]
        if short:
            seen_text = (f"not every event came back: {', '.join(short)} (the seen columns). "
                         "The reader waits up to 15 s after the last produce for the rest; "
                         "events still missing then are left out of the percentiles, so a row "
                         "with missing events fell behind its offered rate (or stalled), and "
                         "its figures are those of the events that made it")
        else:
            seen_text = "every event seen"
        t50 = lat.get(50000)
        if t50:
            d50 = t50["vigil"]["p50"] - t50["relay"]["p50"]
            d99 = t50["vigil"]["p99"] - t50["relay"]["p99"]
            target = (f"Target at 50,000/s (vigil ≤ relay + 2 ms at p50, ≤ relay + 5 ms at "
                      f"p99): {met(d50 <= 2000 and d99 <= 5000)} — vigil − relay is "
                      f"{d50 / 1000:+.3f} ms at p50 and {d99 / 1000:+.3f} ms at p99.")
        else:
            target = "Target at 50,000/s: not measured (50000 is not among the rates)."
        image = f"\n![streaming latency by offered load]({png})\n" if png else ""
        out.append(f"""### Latency: produce call → result read back, µs

Load producer at librdkafka's default `linger.ms=5`; a reader with `fetch.wait.max.ms=1`;
vigil with its embedded default settings; the zero-work relay (consume → produce at once,
plain librdkafka, `fetch.wait.max.ms=1`, `linger.ms=1`) measured the same way in the same run;
{st['latency_cell']}; {seen_text}.

{table(["rate", "vigil p50", "vigil p99", "vigil p99.9", "vigil max", "vigil seen",
        "relay p50", "relay p99", "relay p99.9", "relay max", "relay seen"], lrows)}

{target}
{image}
Most of the latency is the broker path itself: the load producer's 5 ms linger and the mock's
fetch cycles. The relay produces tiny batches at linger.ms=1, which cost the mock's readers
more fetches; vigil produces a batch at a time. What keeps vigil's share small: the consumer's
`fetch.wait.max.ms` of 1 ms on the embedded cluster (the mock holds an empty fetch for the
whole wait), the producer's linger of 1 ms, `socket.nagle.disable=true` on vigil's clients
(Nagle would hold the last produce requests of a burst), bulk pushes into the queue (one
wake-up per consume call), and the idle-worker wake-up in place of polling in the batcher.
""")
    return "\n".join(out)


def http_section(cells, commands: Dict[str, str], http_txt: str,
                 pngs: Optional[tuple]) -> str:
    out = [f"""## HTTP ({cmd(commands, 'http')})

`POST /predict`, wrk on the same machine (min(2, connections) threads; each cell after a
warm-up at the same concurrency), against these servers measured in the same run, interleaved
at each concurrency:

- **vigil** `--mode=serve` with its shipped `config/vigil.yaml`, Kafka and Redis off: the HTTP
  side-port alone.
- **nginx-1w**, **nginx-2w**: nginx with one and with two worker processes, answering a fixed
  body as long as vigil's answer to the same request (vigil's answer itself, captured at
  start): the cost of HTTP alone on this machine, with no JSON parsing and no model — the
  ceiling.
- **fastapi-1w**, **fastapi-2w**: `bench/fastapi_baseline.py` as FastAPI is deployed: uvicorn
  with its standard extras (httptools parser, uvloop event loop), an async endpoint, pydantic
  validation, TCP_NODELAY; the same TorchScript model with the same request and answer shapes,
  with 1 and 2 uvicorn worker processes — the design vigil replaces.
- **fastapi-h11-2w**: the same with a sync endpoint on the pure-Python h11 parser and asyncio's
  loop, 2 workers: a slower way FastAPI is also run, kept as an extra row.

Two request bodies: one instance (the first row of the Python reference data) and 32
instances (its first 32 rows; vigil and FastAPI score all 32). errors = non-2xx answers and
socket errors.
"""]
    for body in http_report.bodies(cells):
        name = http_report.body_name(body)
        rows = [[c.server, c.connections, num(c.rps), f"{c.p50_ms:.3f}",
                 f"{1000 * c.p50_ms:.0f}", f"{c.p99_ms:.3f}", c.errors]
                for c in cells if c.body == body]
        ratios = [[conns, http_report.pct(n1), http_report.pct(n2), http_report.times(f2),
                   http_report.times(f1), http_report.times(h2)]
                  for conns, n1, n2, f2, f1, h2 in http_report.ratio_rows(cells, body)]
        out.append(f"""### {name[0].upper() + name[1:]} per request

{table(["server", "connections", "requests/s", "p50 ms", "p50 µs", "p99 ms", "errors"], rows,
       "lrrrrrr")}

vigil's requests/s against the others:

{table(["connections", "% of nginx-1w", "% of nginx-2w", "÷ fastapi-2w", "÷ fastapi-1w",
        "÷ fastapi-h11-2w"], ratios)}
""")
    trows = [[t.what.replace(">=", "≥").replace("<=", "≤"), t.measured.replace(" us)", " µs)"),
              met(t.met) if t.met is not None or t.measured == "-" else "reported"]
             for t in http_report.targets(cells)]
    out.append(f"""### Targets (single instance per request)

{table(["target", "measured", ""], trows, "lll")}
""")
    if pngs:
        out.append(f"![HTTP throughput by connections]({pngs[0]})\n\n"
                   f"![HTTP p99 latency by connections]({pngs[1]})\n")
    sanity = re.findall(r"^(sanity.*:\n(?:  .*\n)+)", http_txt, re.M)
    if sanity:
        out.append("The same request to each server before timing (the scores must agree; "
                   "nginx's body is as long as vigil's):\n\n```\n" + "".join(sanity) + "```\n")
    return "\n".join(out)


def deployed_section(text: str, commands: Dict[str, str]) -> str:
    return f"""## Streaming as deployed ({cmd(commands, 'stream_deployed')})

The broker in its own process (`vigil-fault-harness`, librdkafka's mock cluster, 3 brokers),
at nice -10: deployed it has cores of its own, and here, sharing two with vigil, the mock
(one thread for every broker, one message set per partition per fetch) answered fetches late
enough for a consumer to fall behind the load and stay behind (`STREAM_BENCH_BROKER_NICE=0`
runs it at the default niceness); vigil as the `vigil` binary with the shipped `config/vigil.yaml` (only addresses, topics and
group set on its command line), a real redis-server, and every reference against that broker
in the same run: the bare consumer; a **fair relay** (consume → produce with no work, with
vigil's own consumer and producer settings, polling the way vigil's consumer polls); the
Python consumer in one process and in two (half the partitions each). vigil's clock runs from
its first record consumed to its last score delivered and settled in Redis, read from its
`/metrics` every 10 ms at both ends and every 50 ms between (a scrape costs vigil about
0.45 ms of CPU, a tax the in-process references do not pay). Against an external broker vigil's consumer uses
`fetch.wait.max.ms=100`, and the mock broker holds an empty fetch that long even when data
arrives (a real broker answers at once): the first latency runs are mostly the mock's, 0 to
100 ms, for vigil and the fair relay alike. The second runs set `fetch.wait.max.ms=1` for both
(vigil's `--kafka.consumer.fetch.wait.max.ms=1`, nothing else changed), which takes the mock's
wait out and leaves what vigil itself adds. The output as printed:

```
{text.rstrip()}
```
"""


def overload_section(text: str, commands: Dict[str, str]) -> str:
    return f"""## Memory under overload ({cmd(commands, 'overload')})

Issue 21's memory target: vigil's resident memory while offered more than it can take for 60 s.
The broker in its own process, vigil as its binary with the shipped config and a real
redis-server, and two load producers in the bench process (linger.ms=5; one alone offered about
what vigil takes here) offering what they can of the rate asked for, on the same two cores as
vigil and the broker (the summary line gives the overload reached). Every 5 s the offered and
delivered rates, vigil's RSS from /proc, its queue depth, consumer pauses, and the records the
mock broker dropped before vigil read them: it keeps ~5 MiB a partition, a second or two at
these rates, so vigil's consumer keeps falling out of the retained range and skips ahead (each
skip counted as lost, with a log line), which also makes the delivered rate in this regime more
the mock's than vigil's. A real broker keeps days: those losses are the mock's retention, not vigil losing anything.
Offered much faster than that, the consumer can stop delivering altogether: librdkafka resets a
partition to the log start it last saw, waits `fetch.error.backoff.ms`, and finds that start
removed again; the summary line then says the target was not measured. The output as printed:

```
{text.rstrip()}
```
"""


def terminal_section(terminal: str, commands: Dict[str, str]) -> str:
    return f"""## Terminal risk ({cmd(commands, 'terminal')})

Issue 23's targets. `stream_bench --velocity --terminal --deployed`: the broker in its own
process, vigil as its binary with the shipped config and Redis on (the terminals' state is
shared there), `fraud_terminal` on raw transactions (9 customer and 6 terminal features
computed in the stream) against the same model on events carrying the same 15 features
ready-made, alternating, with the vigil process's CPU per event. Each raw run's shared state is
first filled with 40 days of history for every terminal (as a stream running for weeks has
it), and the transactions span two days, as a live stream's do; the shared state's Redis
traffic per event and the lookups by the local copy's age follow, then the same warm (each
partition's first half replayed as history, its second half scored, timed from the first
score; the cold figures stay the issue's). Then latency at fixed
rates, raw then ready-made, each a vigil process with `fetch.wait.max.ms=1`. The output as
printed:

```
{terminal.rstrip()}
```
"""


def recommend_section(recommend: str, commands: Dict[str, str]) -> str:
    # From the table on: the sanity lines before it repeat vigil's whole answer.
    table = recommend[recommend.find("POST /recommend"):] if "POST /recommend" in recommend \
        else recommend
    return f"""## Recommendations ({cmd(commands, 'recommend')})

Issue 24's `/recommend` target. `bench/http_bench.sh` with `ENDPOINT=recommend`: vigil
(`--mode=serve`, the shipped config) answering one customer's top 10 of Scout's 10,000
terminals per request, against nginx answering a fixed body as long as vigil's answer, the
same wrk on the same 2 cores. The output as printed, from its table on:

```
{table.rstrip()}
```
"""


def velocity_section(features: str, velocity: str, nolog: Optional[str], ready: Optional[str],
                     commands: Dict[str, str]) -> str:
    restart = "" if ready is None else f"""
Ready after a restart, end to end ({cmd(commands, 'velocity_ready')}): a first instance scores
90% of the transactions and snapshots its state to a real redis-server (every 5 s), scores the
last 10% and is killed (SIGKILL); a second instance in the same group loads the snapshots and
replays the log after them. Each partition's time from its assignment to its history being
ready comes from the second instance's log:

```
{ready.rstrip()}
```
"""
    without = "" if nolog is None else f"""
The same with `features.log: false` ({cmd(commands, 'velocity_nolog')}): score records without
the nine features, the spec hash and the history field; what computing the features costs
apart from logging them:

```
{nolog.rstrip()}
```
"""
    return f"""## Velocity features ({cmd(commands, 'features')}, {cmd(commands, 'velocity')})

Issue 22's targets. `features_bench` fills one partition's state with a million customers at
the transaction simulator's rates (a mean of U(0, 4) transactions a day, 31 days of history),
times one more day of transactions through it (each customer id hinted 12 records ahead, as
the consumer hints the keys of the records it fetched), reads the resident memory per
customer, takes and restores the snapshot, then writes it to a real redis-server, loads it
as an assignment does and replays the timed day through the decoder. The ready estimate adds
one snapshot interval of records (30 s) at the rate named to the measured load. Then
`stream_bench --velocity --deployed`: the broker in its own process, vigil as its binary with
the shipped config (Redis off), `fraud_velocity` on raw transactions against the same model
on events carrying the same nine features ready-made, alternating, with the vigil process's
CPU per event; then the same warm (each partition's first half replayed as history, as a
running instance holds it, its second half scored and timed from the first score: the cold
figures above it stay the issue's); then latency at fixed rates, raw then ready-made, each a
vigil process with `fetch.wait.max.ms=1` (the mock broker's empty-fetch wait out, as in the
second deployed latency runs above). The outputs as printed:

```
{features.rstrip()}
```

```
{velocity.rstrip()}
```
{without}{restart}"""


def gpu_section(m: Dict[str, str]) -> str:
    found = m.get("gpu")
    why = (f"this machine has {found}, but `bench/run_all.sh` measures the CPU build only"
           if found else "this machine has no GPU (nvidia-smi finds none)")
    return f"""## GPU

Not measured: {why}. `scoring_bench` builds on a GPU host from LibTorch alone
(`-DVIGIL_SCORING_ONLY=ON`, see README) and takes `--device cuda`.
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True, help="the folder run_all.sh wrote its outputs to")
    ap.add_argument("--plots", required=True, help="folder for the PNG plots")
    ap.add_argument("--out", required=True, help="the Markdown file to write")
    args = ap.parse_args()
    res = args.results

    def text(name: str) -> str:
        with open(os.path.join(res, name)) as f:
            return f.read()

    machine = read_tsv(os.path.join(res, "machine.tsv"))
    commands = read_tsv(os.path.join(res, "commands.tsv"))
    durations = read_tsv(os.path.join(res, "durations.tsv"))
    try:
        scoring = parse_scoring(text("scoring.txt"))
        wide = parse_scoring(text("scoring_256.txt")) if "scoring_256" in commands else None
        stream = parse_stream(text("stream.txt"))
    except FormatChanged as e:
        print(f"make_benchmarks_md: a benchmark's output changed its format: {e}",
              file=sys.stderr)
        return 1
    cells = http_report.load(os.path.join(res, "http.tsv"))

    os.makedirs(args.plots, exist_ok=True)
    md_dir = os.path.dirname(os.path.abspath(args.out))

    def link(path: str) -> str:
        return os.path.relpath(os.path.abspath(path), md_dir)

    names = [os.path.join(args.plots, n) for n in
             ("http_throughput.png", "http_p99.png", "stream_latency.png")]
    with tempfile.TemporaryDirectory() as tmp:
        plot_http(cells, names[0], names[1], tmp)
        if stream["latency"]:
            plot_stream(stream["latency"], names[2], tmp)

    doc = [f"""# Benchmarks

<!-- generated by bench/run_all.sh, do not edit: rerun bench/run_all.sh, or
     bench/make_benchmarks_md.py on the outputs it captured in {link(res)}/ -->

Generated by `bench/run_all.sh` on {machine['date']} from the outputs it captured: every figure
below comes from that one run, which took {duration(int(machine.get('total_seconds', '0')))} in
all. Nothing here is edited by hand.""" + ("" if machine.get("uncommitted", "none") == "none" else f"""
**Dirty: measured on a tree with uncommitted changes ({machine['uncommitted']}), not on the
commit named below.**
"""),
           machine_section(machine, durations, link(res) + "/"),
           scoring_section(scoring, wide, commands),
           stream_section(stream, commands, link(names[2]) if stream["latency"] else None),
           (deployed_section(text("stream_deployed.txt"), commands)
            if "stream_deployed" in commands else ""),
           (overload_section(text("overload.txt"), commands) if "overload" in commands else ""),
           http_section(cells, commands, text("http.txt"), (link(names[0]), link(names[1]))),
           (velocity_section(text("features.txt"), text("velocity.txt"),
                             text("velocity_nolog.txt") if "velocity_nolog" in commands else None,
                             text("velocity_ready.txt") if "velocity_ready" in commands else None,
                             commands)
            if "features" in commands and "velocity" in commands else ""),
           (terminal_section(text("terminal.txt"), commands) if "terminal" in commands else ""),
           (recommend_section(text("recommend.txt"), commands)
            if "recommend" in commands else ""),
           gpu_section(machine)]
    with open(args.out, "w") as f:
        f.write(reflow("\n".join(part.rstrip("\n") + "\n" for part in doc)))
    print(f"make_benchmarks_md: wrote {args.out} and {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

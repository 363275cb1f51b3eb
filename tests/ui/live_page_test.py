#!/usr/bin/python3
"""The live view in a real browser.

Starts vigil on its embedded Kafka (HTTP on an ephemeral port, Redis off), feeds it with
vigil-loadgen (the sample transactions, which hold frauds), opens GET / in headless Chromium
(Debian's `chromium`, driven over the DevTools protocol with python3-websocket), and checks
that the figures on the page move and that high scores appear. Saves a screenshot of the page
(live_page.png) under --out. Exits non-zero, saying why, when a check fails.

  tests/ui/live_page_test.py --vigil build/release/vigil --loadgen build/release/vigil-loadgen \
      --repo . --out build/release/ui
"""
import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # python3-websocket (Debian)

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--remote-debugging-port=0", "--window-size=1280,1000",
]

# What the test reads from the page: the figures' text, as the user sees it.
READ_PAGE = """JSON.stringify({
  status: document.getElementById('status').textContent,
  updates: document.getElementById('updates').textContent,
  scored: document.getElementById('scored').textContent,
  scored_total: document.getElementById('scored_total').textContent,
  events_in: document.getElementById('events_in').textContent,
  e2e_p99: document.getElementById('e2e_p99').textContent,
  model: document.getElementById('model').textContent,
  high_rows: Array.from(document.querySelectorAll('#high_scores tr')).map(
      r => Array.from(r.cells).map(c => c.textContent)),
})"""


def fail(why):
    print("live_page_test: FAIL: " + why, flush=True)
    sys.exit(1)


def wait_for_file(path, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            with open(path) as f:
                return f.read()
        time.sleep(0.1)
    fail(f"{what} did not appear within {seconds} s ({path})")


class DevTools:
    """One page target of a headless Chromium, over the DevTools protocol."""

    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    fail(f"DevTools {method}: {msg['error']}")
                return msg["result"]

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            fail(f"page script failed: {r['exceptionDetails']}")
        return r["result"].get("value")


def number(text):
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vigil", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--out", required=True, help="folder for the screenshot")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args()
    if not os.path.exists(args.chromium):
        fail(f"no chromium at {args.chromium} (scripts/install-deps.sh installs it)")
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="vigil-ui-")
    procs = []

    def cleanup():
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)

    try:
        run(args, work, procs)
    finally:
        cleanup()


def run(args, work, procs):
    port_file = os.path.join(work, "http.port")
    bootstrap_file = os.path.join(work, "bootstrap")
    vigil_log = open(os.path.join(work, "vigil.log"), "w")
    procs.append(subprocess.Popen(
        [args.vigil, "--config", os.path.join(args.repo, "config/vigil.yaml"),
         "--redis.url=", "--http.address=127.0.0.1", "--http.port=0",
         f"--http.port_file={port_file}", f"--kafka.embedded.bootstrap_file={bootstrap_file}",
         "--http.events_interval_ms=250", "--log.level=warn"],
        cwd=args.repo, stdout=vigil_log, stderr=subprocess.STDOUT))
    port = int(wait_for_file(port_file, 60, "vigil's HTTP port").strip())
    base = f"http://127.0.0.1:{port}"

    loadgen_log = open(os.path.join(work, "loadgen.log"), "w")
    procs.append(subprocess.Popen(
        [args.loadgen, "--bootstrap-file", bootstrap_file, "--rate", "500", "--duration-s", "120",
         "--redis-url=", "--csv", os.path.join(args.repo, "models/fraud_mlp/sample/transactions.csv"),
         "--repository", os.path.join(args.repo, "models"), "--id-prefix", "ui"],
        cwd=args.repo, stdout=loadgen_log, stderr=subprocess.STDOUT))

    profile = os.path.join(work, "chromium-profile")
    chromium_log = open(os.path.join(work, "chromium.log"), "w")
    procs.append(subprocess.Popen(
        [args.chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=chromium_log, stderr=subprocess.STDOUT))
    devtools_port = wait_for_file(os.path.join(profile, "DevToolsActivePort"), 60,
                                  "chromium's DevTools port").splitlines()[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=10) as r:
        pages = [t for t in json.load(r) if t.get("type") == "page"]
    if not pages:
        fail("chromium has no page target")
    page = DevTools(pages[0]["webSocketDebuggerUrl"])
    page.call("Page.enable")
    page.call("Page.navigate", url=base + "/")

    # The numbers move: two readings of the page while the load runs, and high scores appear.
    deadline = time.time() + 90
    first = None
    last = None
    while time.time() < deadline:
        time.sleep(0.5)
        last = json.loads(page.evaluate(READ_PAGE) or "{}")
        total = number(last.get("scored_total", "–"))
        if total is None or total <= 0:
            continue
        if first is None:
            first = last
            continue
        if (number(last["scored_total"]) > number(first["scored_total"])
                and number(last["updates"].split()[0]) >= number(first["updates"].split()[0]) + 4
                and last["high_rows"]):
            break
    print("live_page_test: first reading: " + json.dumps(first), flush=True)
    print("live_page_test: last reading:  " + json.dumps(last), flush=True)

    shot = page.call("Page.captureScreenshot", format="png")
    path = os.path.join(args.out, "live_page.png")
    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    print(f"live_page_test: screenshot {path}", flush=True)

    if first is None:
        fail("the page never showed a scored total above 0")
    if last["status"] != "live":
        fail(f"the page's status is {last['status']!r}, not 'live'")
    if not number(last["scored_total"]) > number(first["scored_total"]):
        fail("the scored total did not move: " + first["scored_total"] + " -> " + last["scored_total"])
    if not (number(last["scored"]) or 0) > 0:
        fail("scored/s shows " + last["scored"])
    if not last["high_rows"]:
        fail("no high score appeared in the feed")
    for row in last["high_rows"]:
        if not row[0].startswith("ui-") or not float(row[1]) >= 0.98:
            fail(f"a high-score row is not one of the load's transactions above 0.98: {row}")
    if "fraud_mlp v1" not in last["model"]:
        fail("the model line says " + last["model"])
    print(f"live_page_test: OK: {len(last['high_rows'])} high scores shown, scored total "
          f"{first['scored_total']} -> {last['scored_total']}", flush=True)


if __name__ == "__main__":
    main()

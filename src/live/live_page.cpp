// The live view's page (GET / and GET /ui): one self-contained HTML document, no external
// script, font or style (production networks reach nothing outside), fed by /v1/events.
#include "live/live_page.h"

namespace vigil::live {

const char* live_page_html() {
  return R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vigil: live</title>
<style>
  :root { --bg:#0f1419; --card:#1a222c; --fg:#e6edf3; --dim:#8b98a5; --ok:#3fb950;
          --warn:#d29922; --bad:#f85149; --accent:#58a6ff; }
  * { box-sizing: border-box; }
  body { margin:0; padding:16px; background:var(--bg); color:var(--fg);
         font:14px/1.4 system-ui, sans-serif; }
  header { display:flex; align-items:baseline; gap:16px; flex-wrap:wrap; margin-bottom:12px; }
  h1 { font-size:20px; margin:0; }
  #status { color:var(--dim); }
  #status.live { color:var(--ok); } #status.down { color:var(--bad); }
  #notice { color:var(--warn); }
  .grid { display:grid; grid-template-columns:repeat(auto-fill, minmax(170px, 1fr)); gap:10px; }
  .card { background:var(--card); border-radius:8px; padding:10px 12px; }
  .card .label { color:var(--dim); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
  .card .value { font-size:24px; font-variant-numeric:tabular-nums; margin-top:2px; }
  .card .sub { color:var(--dim); font-size:12px; font-variant-numeric:tabular-nums; }
  .wide { grid-column:1 / -1; }
  canvas { width:100%; height:120px; display:block; }
  table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
  th, td { text-align:left; padding:4px 8px; border-bottom:1px solid #2b3540; }
  th { color:var(--dim); font-weight:normal; font-size:12px; }
  td.score { color:var(--bad); }
  .legend span { margin-right:12px; font-size:12px; }
</style>
</head>
<body>
<header>
  <h1>vigil</h1>
  <span id="status">connecting…</span>
  <span id="model">model: –</span>
  <span id="notice"></span>
</header>
<div class="grid">
  <div class="card"><div class="label">events in /s</div><div class="value" id="events_in">–</div>
    <div class="sub">consumed from Kafka</div></div>
  <div class="card"><div class="label">scored /s</div><div class="value" id="scored">–</div>
    <div class="sub" id="scored_split">kafka – · http –</div></div>
  <div class="card"><div class="label">end-to-end ms</div><div class="value" id="e2e_p99">–</div>
    <div class="sub" id="e2e_sub">p99 · p50 –</div></div>
  <div class="card"><div class="label">HTTP ms</div><div class="value" id="http_p99">–</div>
    <div class="sub" id="http_sub">p99 · p50 – · – req/s</div></div>
  <div class="card"><div class="label">batch size</div><div class="value" id="batch">–</div>
    <div class="sub" id="batch_sub">mean · p99 –</div></div>
  <div class="card"><div class="label">queue depth</div><div class="value" id="queue">–</div>
    <div class="sub" id="queue_sub">of –</div></div>
  <div class="card"><div class="label">partitions</div><div class="value" id="partitions">–</div>
    <div class="sub" id="partitions_sub">paused – · held –</div></div>
  <div class="card"><div class="label">consumer lag</div><div class="value" id="lag">–</div>
    <div class="sub">records behind</div></div>
  <div class="card"><div class="label">dead letters /s</div><div class="value" id="dlq">–</div>
    <div class="sub" id="dlq_sub">–</div></div>
  <div class="card"><div class="label">scored in total</div><div class="value" id="scored_total">–</div>
    <div class="sub" id="updates">0 updates</div></div>
  <div class="card wide"><div class="label">throughput, last 2 minutes</div>
    <canvas id="chart" width="1200" height="120"></canvas>
    <div class="legend"><span style="color:var(--accent)">■ scored/s</span>
      <span style="color:var(--ok)">■ events in/s</span></div></div>
  <div class="card wide"><div class="label">latest high scores (at or above the model's threshold)
    · <span id="high_total">0</span> in total</div>
    <table><thead><tr><th>transaction</th><th>score</th><th>model</th><th>via</th><th>scored at</th></tr></thead>
    <tbody id="high_scores"></tbody></table></div>
</div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const fmt = (v, d = 0) => (v === null || v === undefined || Number.isNaN(v)) ? "–"
  : Number(v).toLocaleString("en-US", {minimumFractionDigits: d, maximumFractionDigits: d});
const history = [];
let updates = 0;

function draw() {
  const c = $("chart"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const max = Math.max(1, ...history.map(h => Math.max(h.scored, h.events_in)));
  const step = c.width / 120;
  for (const [key, color] of [["events_in", "#3fb950"], ["scored", "#58a6ff"]]) {
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    history.forEach((h, i) => {
      const x = c.width - (history.length - 1 - i) * step;
      const y = c.height - 4 - (c.height - 8) * h[key] / max;
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
  }
  g.fillStyle = "#8b98a5"; g.font = "12px sans-serif"; g.fillText(fmt(max) + "/s", 4, 14);
}

function render(s) {
  updates++;
  $("status").textContent = "live"; $("status").className = "live";
  $("updates").textContent = updates + " updates";
  $("events_in").textContent = fmt(s.events_in_per_s);
  $("scored").textContent = fmt(s.scored_per_s);
  $("scored_split").textContent = "kafka " + fmt(s.scored_kafka_per_s) + " · http " + fmt(s.scored_http_per_s);
  $("e2e_p99").textContent = fmt(s.end_to_end_ms.p99, 2);
  $("e2e_sub").textContent = "p99 · p50 " + fmt(s.end_to_end_ms.p50, 2);
  $("http_p99").textContent = fmt(s.http_ms.p99, 3);
  $("http_sub").textContent = "p99 · p50 " + fmt(s.http_ms.p50, 3) + " · " + fmt(s.http_requests_per_s) + " req/s";
  $("batch").textContent = fmt(s.batch_size.mean, 1);
  $("batch_sub").textContent = "mean · p99 " + fmt(s.batch_size.p99);
  $("queue").textContent = fmt(s.queue.depth);
  $("queue_sub").textContent = "of " + fmt(s.queue.capacity);
  $("partitions").textContent = fmt(s.partitions.assigned);
  $("partitions_sub").textContent = "paused " + fmt(s.partitions.paused) + " · held " + fmt(s.partitions.held);
  $("lag").textContent = fmt(s.consumer_lag);
  const reasons = Object.entries(s.dead_letters_per_s);
  $("dlq").textContent = fmt(reasons.reduce((a, [, v]) => a + v, 0), 1);
  $("dlq_sub").textContent = reasons.length ? reasons.map(([r, v]) => r + " " + fmt(v, 1)).join(" · ")
    : fmt(s.dead_letters_total) + " in total";
  $("scored_total").textContent = fmt(s.scored_total);
  $("model").textContent = s.model ? "model: " + s.model.name + " v" + s.model.version + " on " +
    s.model.device + " (threshold " + s.model.threshold + ")" : "model: none loaded";
  $("high_total").textContent = fmt(s.high_scores_total);
  const rows = s.high_scores.map(h => "<tr><td>" + escape(h.transaction_id) + "</td><td class=score>" +
    h.score.toFixed(4) + "</td><td>v" + escape(h.model_version) + "</td><td>" + h.origin + "</td><td>" +
    new Date(h.scored_at_ms).toLocaleTimeString() + "</td></tr>");
  $("high_scores").innerHTML = rows.join("");
  history.push({scored: s.scored_per_s, events_in: s.events_in_per_s});
  if (history.length > 120) history.shift();
  draw();
}

function escape(t) {
  return String(t).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

// The token as given in this page's address: percent-decoded, but a bare '+' stays a '+' (as
// the server reads it), so a base64 token works pasted as is or encoded.
const tokenMatch = /[?&]access_token=([^&#]*)/.exec(location.search);
let token = null;
try { token = tokenMatch ? decodeURIComponent(tokenMatch[1]) : null; } catch (e) { token = tokenMatch[1]; }
const source = new EventSource("/v1/events" + (token ? "?access_token=" + encodeURIComponent(token) : ""));
source.addEventListener("stats", (e) => render(JSON.parse(e.data)));
source.addEventListener("dropped", (e) => {
  $("notice").textContent = "this page fell behind: " + JSON.parse(e.data).dropped + " updates skipped";
});
source.addEventListener("end", (e) => {
  $("status").textContent = "stream ended: " + JSON.parse(e.data).why; $("status").className = "down";
});
source.onerror = () => {
  if ($("status").className !== "down") { $("status").textContent = "reconnecting…"; $("status").className = ""; }
};
</script>
</body>
</html>
)HTML";
}

}  // namespace vigil::live

// ringmq console front end: plain JS, no dependencies. Each path renders one page; pages
// with live data poll the JSON API every REFRESH_MS and redraw their charts.
"use strict";

const REFRESH_MS = 2000;
const page = document.getElementById("page");
const statusLine = document.getElementById("status");
let timer = null;

function esc(v) {
  return String(v === null || v === undefined ? "" : v)
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function table(headers, rows, id) {
  const head = headers.map((h) => `<th>${esc(h)}</th>`).join("");
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("");
  return `<table${id ? ` id="${id}"` : ""}><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function time(ms) {
  return ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "";
}

// A line chart of one or more series [{label, color, points: [{t_ms, value}]}].
function drawChart(canvas, series) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 30;
  ctx.clearRect(0, 0, w, h);
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) { ctx.fillText("waiting for samples…", pad, h / 2); return; }
  const t0 = Math.min(...all.map((p) => p.t_ms)), t1 = Math.max(...all.map((p) => p.t_ms));
  const vmax = Math.max(1, ...all.map((p) => p.value));
  const x = (t) => pad + (t1 === t0 ? 0 : ((t - t0) / (t1 - t0)) * (w - 2 * pad));
  const y = (v) => h - pad - (v / vmax) * (h - 2 * pad);
  ctx.strokeStyle = "#999"; ctx.beginPath(); ctx.moveTo(pad, pad); ctx.lineTo(pad, h - pad);
  ctx.lineTo(w - pad, h - pad); ctx.stroke();
  ctx.fillStyle = "#555"; ctx.fillText(vmax.toFixed(vmax < 10 ? 1 : 0), 2, pad);
  series.forEach((s, i) => {
    ctx.strokeStyle = s.color; ctx.lineWidth = 2; ctx.beginPath();
    s.points.forEach((p, j) => (j ? ctx.lineTo(x(p.t_ms), y(p.value)) : ctx.moveTo(x(p.t_ms), y(p.value))));
    ctx.stroke(); ctx.fillStyle = s.color; ctx.fillText(s.label, w - pad - 120, pad + 12 * i);
  });
}

function live(render) {
  const tick = async () => {
    try { await render(); statusLine.textContent = "updated " + new Date().toLocaleTimeString(); }
    catch (e) { statusLine.textContent = "error: " + e.message; }
  };
  tick();
  timer = setInterval(tick, REFRESH_MS);
}

async function clusterPage() {
  const c = await api("/api/cluster");
  const rows = c.brokers.map((b) => [
    esc(b.cluster), esc(b.broker_name), esc(b.broker_id), esc(b.role), esc(b.addr),
    b.reachable ? `<span class="ok">online</span>` : `<span class="bad">UNREACHABLE</span> <span class="muted">${esc(b.error)}</span>`,
    esc(b.version || ""), b.tps_in.toFixed(1), b.tps_out.toFixed(1), esc(b.put_total ?? ""), esc(b.get_total ?? ""),
    esc(b.disk_ratio ?? "n/a"),
  ]);
  page.innerHTML = `<h2>Cluster</h2>
    <p>Name servers: ${esc(c.namesrv.join(", "))} · ACL account: ${esc(c.access_key || "none")}
    ${c.error ? `<span class="bad">${esc(c.error)}</span>` : ""}</p>
    ${table(["cluster", "broker", "id", "role", "address", "status", "version", "TPS in", "TPS out", "put total", "get total", "disk"], rows, "brokers")}
    <div class="card"><h3>Cluster TPS</h3><canvas id="tps" width="720" height="220"></canvas></div>`;
  drawChart(document.getElementById("tps"), [
    { label: "in (put/s)", color: "#1f77b4", points: c.tps_in },
    { label: "out (get/s)", color: "#ff7f0e", points: c.tps_out },
  ]);
}

async function topicsPage() {
  const topics = await api("/api/topics");
  const blocks = topics.map((t) => {
    const route = t.route.map((r) => `${esc(r.broker_name)} (${esc(r.master_addr || "no master")}, perm ${r.perm}, r${r.read_queue_nums}/w${r.write_queue_nums})`).join("; ");
    const queues = t.queues.map((q) => [esc(q.broker_name), q.queue_id, esc(q.min_offset ?? ""), esc(q.max_offset ?? ""), esc(q.error || "")]);
    return `<div class="card topic" data-topic="${esc(t.topic)}"><h3>${esc(t.topic)} <span class="muted">${t.kind} · ${t.queues.length} queues · ${t.messages} messages</span>
      <button onclick="deleteTopic('${esc(t.topic)}')">delete</button></h3>
      <p>Route: ${route || "none"} ${t.error ? `<span class="bad">${esc(t.error)}</span>` : ""}</p>
      ${table(["broker", "queue", "min offset", "max offset", "error"], queues)}</div>`;
  });
  page.innerHTML = `<h2>Topics</h2>
    <form onsubmit="return updateTopic(this)"><input name="topic" placeholder="topic" required>
      <input name="queues" type="number" value="8" min="1" max="1024"> queues
      <button>create / update</button><span id="topic-result"></span></form>
    <div id="topics">${blocks.join("")}</div>`;
}

async function updateTopic(form) {
  const body = { topic: form.topic.value, queue_nums: Number(form.queues.value) };
  try {
    const outcomes = await api("/api/topics", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    await topicsPage();
    document.getElementById("topic-result").textContent = outcomeText(outcomes);
  }
  catch (e) { document.getElementById("topic-result").textContent = e.message; }
  return false;
}

// Per-address outcomes: {"addr": {"Ok": "ok"} | {"Err": "why"}}.
function outcomeText(outcomes) {
  return Object.entries(outcomes).map(([addr, o]) => `${addr}: ${o.Ok ? "ok" : o.Err}`).join("; ");
}

async function deleteTopic(topic) {
  if (!confirm("Delete topic " + topic + "?")) return;
  const outcomes = await api("/api/topics/" + encodeURIComponent(topic), { method: "DELETE" });
  await topicsPage();
  document.getElementById("topic-result").textContent = outcomeText(outcomes);
}

const groupCanvases = {};
async function consumersPage() {
  const c = await api("/api/consumers");
  const blocks = c.groups.map((g) => {
    const queues = g.queues.map((q) => [esc(q.topic), esc(q.broker_name), q.queue_id, q.broker_offset, q.consumer_offset, `<b>${q.lag}</b>`]);
    return `<div class="card group" data-group="${esc(g.group)}"><h3>${esc(g.group)}</h3>
      <p>Lag <b class="lag">${g.total_lag}</b> · consume TPS ${g.consume_tps.toFixed(1)} · subscriptions: ${esc(g.subscriptions.join(", ") || "none")}
      · connections: ${g.connections.length ? esc(g.connections.join(", ")) : "<span class='muted'>none online</span>"}
      ${g.error ? `<span class="bad">${esc(g.error)}</span>` : ""}</p>
      <canvas class="lag-chart" width="600" height="160"></canvas>
      ${table(["topic", "broker", "queue", "broker offset", "consumer offset", "lag"], queues)}
      <form onsubmit="return resetOffset(this, '${esc(g.group)}')"><input name="topic" placeholder="topic" required>
        <input name="when" type="datetime-local" required><button>reset offset to time</button><span class="reset-result"></span></form></div>`;
  });
  page.innerHTML = `<h2>Consumer groups</h2>${c.error ? `<p class="bad">${esc(c.error)}</p>` : ""}
    ${c.cut ? `<p class="muted">Too many queues: only the first ones are shown.</p>` : ""}
    <div id="groups">${blocks.join("") || "<p class='muted'>No consumer group yet.</p>"}</div>`;
  document.querySelectorAll(".group").forEach((el) => {
    const name = el.dataset.group;
    drawChart(el.querySelector("canvas"), [
      { label: "lag", color: "#d62728", points: c.lag[name] || [] },
      { label: "consume TPS", color: "#2ca02c", points: c.consume_tps[name] || [] },
    ]);
  });
}

async function resetOffset(form, group) {
  const out = form.querySelector(".reset-result");
  const body = { topic: form.topic.value, timestamp_ms: new Date(form.when.value).getTime() };
  try {
    const rows = await api(`/api/consumers/${encodeURIComponent(group)}/reset`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    out.textContent = "reset " + rows.length + " queues";
  } catch (e) { out.textContent = e.message; }
  return false;
}

function messageRows(list) {
  return list.map((m) => [esc(m.msg_id), esc(m.topic), esc(m.broker_name), m.queue_id, m.queue_offset, esc(m.tags || ""), esc(m.keys || ""),
    time(m.store_timestamp_ms), m.reconsume_times, `<pre>${esc(m.body_preview)}</pre>`]);
}

function messagesPage() {
  page.innerHTML = `<h2>Messages</h2>
    <form id="search" onsubmit="return searchMessages(this)">
      <input name="topic" placeholder="topic"> <input name="key" placeholder="key">
      <input name="msg_id" placeholder="message id"> <input name="queue_id" placeholder="queue" size="5">
      <input name="offset" placeholder="offset" size="8"> <button>search</button></form>
    <div id="results"></div>`;
  const params = new URLSearchParams(location.search);
  const form = document.getElementById("search");
  params.forEach((v, k) => { if (form[k]) form[k].value = v; });
  if ([...params.keys()].length) searchMessages(form);
}

async function searchMessages(form) {
  const q = new URLSearchParams();
  ["topic", "key", "msg_id", "queue_id", "offset"].forEach((k) => { if (form[k].value) q.set(k, form[k].value); });
  history.replaceState(null, "", "/messages?" + q);
  const out = document.getElementById("results");
  try {
    const r = await api("/api/messages?" + q);
    const headers = ["message id", "topic", "broker", "queue", "offset", "tags", "keys", "stored", "retries", "body"];
    out.innerHTML = `<h3>${r.messages.length} message(s)</h3>${table(headers, messageRows(r.messages), "messages")}
      <h3>Retry trail (${r.retries.length})</h3>${table(headers, messageRows(r.retries), "retries")}`;
  } catch (e) { out.innerHTML = `<p class="bad">${esc(e.message)}</p>`; }
  return false;
}

function producersPage() {
  page.innerHTML = `<h2>Producers</h2>
    <form onsubmit="return producerConnections(this)"><input name="group" placeholder="producer group" required><button>connections</button></form>
    <div id="producers"></div>`;
  const group = new URLSearchParams(location.search).get("group");
  const form = page.querySelector("form");
  if (group) { form.group.value = group; producerConnections(form); }
}

async function producerConnections(form) {
  const out = document.getElementById("producers");
  try {
    history.replaceState(null, "", "/producers?group=" + encodeURIComponent(form.group.value));
    const r = await api("/api/producers?group=" + encodeURIComponent(form.group.value));
    out.innerHTML = Object.entries(r).map(([addr, a]) => {
      if (a.error) return `<p>${esc(addr)}: <span class="bad">${esc(a.error)}</span></p>`;
      const set = (a.connections && a.connections.connectionSet) || [];
      return `<h3>${esc(addr)}</h3>` + table(["client id", "address", "language", "version"],
        set.map((c) => [esc(c.clientId), esc(c.clientAddr), esc(c.language), esc(c.version)]));
    }).join("");
  } catch (e) { out.innerHTML = `<p class="bad">${esc(e.message)}</p>`; }
  return false;
}

const pages = { "/": ["cluster", clusterPage, true], "/topics": ["topics", topicsPage, false],
  "/consumers": ["consumers", consumersPage, true], "/messages": ["messages", messagesPage, false],
  "/producers": ["producers", producersPage, false] };
const [name, render, isLive] = pages[location.pathname] || pages["/"];
document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === name));
if (isLive) live(render); else Promise.resolve(render()).catch((e) => { page.innerHTML = `<p class="bad">${esc(e.message)}</p>`; });

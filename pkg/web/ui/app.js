// fliswarm status page. It never polls: the server pushes a snapshot
// ({daemon, nodes, events, logs, now, seq}) over server-sent events whenever the
// status changes. Each node's card is kept (keyed by data-node) and
// updated in place; its data-* attributes carry the state for tests and
// styles.
"use strict";

// The phases that mean a node is down rather than on its way back.
const DOWN = { Unreachable: "down", EngineDown: "down", ImagePullFailed: "down",
  CrashLoopBackOff: "crash loop", RolloutHalted: "halted" };
const MAX_EVENTS = 8;

let clockOffset = 0; // server time minus local time, in ms
let last = null;

// classify returns the card's health (ok, warn, bad, off) and the state
// word shown in its badge, as web.Classify does on the server.
function classify(n) {
  if (n.phase === "Ready") return ["ok", "running"];
  if (n.phase === "Disabled") return ["off", "disabled"];
  if (DOWN[n.phase]) return ["bad", DOWN[n.phase]];
  if (n.phase === "NotObserved" || n.phase === "UpdatePending") return ["warn", "pending"];
  if (n.phase === "Starting") return ["warn", "starting"];
  return ["warn", "recovering"];
}

function duration(ms) {
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s} s`;
  return `${s} s`;
}

function clock(t) {
  const d = new Date(t);
  return isNaN(d) ? "" : d.toLocaleTimeString([], { hour12: false });
}

function field(card, name) { return card.querySelector(`[data-field="${name}"]`); }

function slot(card, name, text) {
  const el = card.querySelector(`[data-slot="${name}"]`);
  el.hidden = !text;
  const f = el.matches(`[data-field="${name}"]`) ? el : field(el, name);
  if (f) f.textContent = text || "";
}

function uptime(n) {
  const c = n.container;
  if (!c || c.state !== "running" || !c.startedAt) return "—";
  return duration(Date.now() + clockOffset - Date.parse(c.startedAt));
}

// exposure reads the camera's exposure state when the status carries one
// (a later version of fliswarm reports it); the slot stays hidden without.
function exposure(n) {
  const e = n.exposure ?? n.exposureState ?? n.camera?.exposure;
  if (e == null || e === "") return "";
  return typeof e === "string" ? e : (e.state ?? JSON.stringify(e));
}

function newCard(name) {
  const card = document.getElementById("card-template").content.firstElementChild.cloneNode(true);
  card.dataset.node = name;
  field(card, "name").textContent = name;
  return card;
}

function fill(card, n, events, logs) {
  const [health, state] = classify(n);
  const d = card.dataset;
  d.phase = n.phase || "";
  d.health = health;
  d.state = state.replace(" ", "-");
  d.ready = String(n.phase === "Ready");
  d.camera = String(!!n.deviceConnected);
  field(card, "state").textContent = state;
  field(card, "phase").textContent = n.phase || "";
  field(card, "message").textContent = n.message || "";
  const c = n.container;
  field(card, "container").textContent = c ? `${(c.id || "").slice(0, 12)} · ${c.state}` : "none";
  field(card, "image").textContent = (c && c.image) || (n.image && n.image.ref) || "—";
  field(card, "uptime").textContent = uptime(n);
  const dockerRestarts = c && c.restartCount ? ` (Docker: ${c.restartCount})` : "";
  field(card, "restarts").textContent = `${n.restarts || 0}${dockerRestarts}`;
  const cam = field(card, "camera");
  cam.textContent = n.deviceConnected ? "connected" : (n.cameraMessage || "not connected");
  cam.dataset.value = n.deviceConnected ? "yes" : "no";
  slot(card, "exposure", exposure(n));

  const cl = n.crashLoop;
  const looping = cl && !(c && c.state === "running");
  slot(card, "crashloop", looping ?
    `Crash loop: stopped ${cl.restarts} times in a row (exit code ${cl.lastExitCode}); next start ${clock(cl.nextAttempt)}` : "");
  field(card, "lastlog").textContent = looping && cl.lastLog ? cl.lastLog.join("\n") : "";
  // The camera's last lines, live while the page is open (web/logs.go).
  slot(card, "logs", (logs || []).map(l => l.text).join("\n"));
  const r = n.rollout;
  slot(card, "rollout", r ? `Rollout of ${r.revision}: ${r.state}${r.message ? " — " + r.message : ""}` : "");
  const p = n.pull;
  slot(card, "pull", p ? `Pulling ${p.image}: ${p.total ? Math.round(100 * p.current / p.total) + " %" : p.status || ""}` : "");
  slot(card, "error", n.lastError ? `Last error: ${n.lastError}` : "");

  const list = field(card, "events");
  list.replaceChildren();
  for (const ev of (events || []).slice(0, MAX_EVENTS)) {
    const li = document.createElement("li");
    li.dataset.type = ev.type;
    li.dataset.reason = ev.reason;
    const t = document.createElement("time");
    t.dateTime = ev.lastTime || ev.time;
    t.textContent = clock(ev.lastTime || ev.time);
    const span = document.createElement("span");
    span.textContent = `${ev.reason}: ${ev.message}${ev.count > 1 ? ` (×${ev.count}, last ${clock(ev.lastTime)})` : ""}`;
    li.append(t, span);
    list.append(li);
  }
  if (!list.children.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "nothing yet";
    list.append(li);
  }
}

function render(snap) {
  last = snap;
  clockOffset = Date.parse(snap.now) - Date.now();
  const grid = document.getElementById("nodes");
  const seen = new Set();
  let ready = 0, enabled = 0, worst = "ok";
  const rank = { ok: 0, off: 0, warn: 1, bad: 2 };
  snap.nodes.forEach((n, i) => {
    seen.add(n.name);
    let card = grid.querySelector(`:scope > [data-node="${CSS.escape(n.name)}"]`);
    if (!card) card = newCard(n.name);
    if (grid.children[i] !== card) grid.insertBefore(card, grid.children[i] || null);
    fill(card, n, snap.events[n.name], (snap.logs || {})[n.name]);
    if (n.enabled) {
      enabled++;
      if (n.phase === "Ready") ready++;
      const h = card.dataset.health;
      if (rank[h] > rank[worst]) worst = h;
    }
  });
  for (const card of [...grid.children]) if (!seen.has(card.dataset.node)) card.remove();

  const sum = document.getElementById("summary");
  sum.textContent = `${ready} of ${enabled} ready`;
  sum.dataset.health = enabled ? worst : "off";
  document.title = `${ready}/${enabled} ready · fliswarm`;

  const banner = document.getElementById("config-error");
  banner.hidden = !snap.daemon.configError;
  banner.textContent = snap.daemon.configError ? `Configuration rejected: ${snap.daemon.configError}` : "";

  const d = snap.daemon, foot = document.getElementById("daemon");
  const parts = [`fliswarm ${d.version || ""}`, `pid ${d.pid}`, `revision ${d.revision || "?"}`,
    `config ${d.config || "?"}`, `actor ${d.actorAddr || "?"}`, `since ${new Date(d.startedAt).toLocaleString()}`];
  foot.replaceChildren(...parts.map(t => Object.assign(document.createElement("span"), { textContent: t })));
  document.body.dataset.seq = String(snap.seq);
}

function connect() {
  const conn = document.getElementById("conn");
  const es = new EventSource("/stream");
  es.addEventListener("status", e => {
    document.body.dataset.conn = "live";
    conn.textContent = "live";
    render(JSON.parse(e.data));
  });
  es.onerror = () => {
    document.body.dataset.conn = "lost";
    conn.textContent = "connection lost — reconnecting…";
  };
}

// Uptimes advance on the page's own clock (no request is made).
setInterval(() => {
  if (!last) return;
  for (const n of last.nodes) {
    const card = document.querySelector(`#nodes > [data-node="${CSS.escape(n.name)}"]`);
    if (card) field(card, "uptime").textContent = uptime(n);
  }
}, 5000);

connect();

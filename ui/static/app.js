// Baton's dashboard: the little the server-rendered pages cannot do alone.
// Times in the reader's zone, writes through the JSON API (same origin,
// JSON content type), bulk actions after a confirmation that says how
// many, live data without layout changes, and the live tail over SSE.
"use strict";

const statusLine = (msg) => { const s = document.getElementById("status"); if (s) s.textContent = msg; };

function localTimes(root) {
  const fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  for (const t of root.querySelectorAll("time[datetime]")) {
    const d = new Date(t.getAttribute("datetime"));
    if (isNaN(d)) continue;
    if (!t.title) t.title = t.textContent;
    t.textContent = fmt.format(d);
  }
}

async function api(method, path) {
  const r = await fetch(path, {
    method, credentials: "same-origin",
    headers: { "Content-Type": "application/json", "Accept": "application/json" },
    body: method === "POST" ? "{}" : undefined,
  });
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
}

const esc = encodeURIComponent;

async function act(btn) {
  const d = btn.dataset;
  let call, done;
  if (d.replay) { call = ["POST", "/v1/dead-letters/" + esc(d.replay) + "/replay"]; done = "Replayed " + d.replay; }
  else if (d.drop) {
    if (!confirm("Drop dead letter " + d.drop + "? It cannot be replayed after.")) return;
    call = ["DELETE", "/v1/dead-letters/" + esc(d.drop)]; done = "Dropped " + d.drop;
  }
  else if (d.pause) { call = ["POST", "/v1/schedules/" + esc(d.pause) + "/pause"]; done = "Paused " + d.pause; }
  else if (d.resume) { call = ["POST", "/v1/schedules/" + esc(d.resume) + "/resume"]; done = "Resumed " + d.resume; }
  else return;
  btn.disabled = true;
  try {
    await api(...call);
    statusLine(done);
    if (d.then) { location.assign(d.then); return; }
    await refresh();
  } catch (e) {
    statusLine(e.message);
  } finally {
    btn.disabled = false;
  }
}

function ask(text) {
  const dlg = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
    dlg.showModal();
  });
}

async function bulk(btn) {
  const action = btn.dataset.bulk;
  const filter = btn.closest("[data-filter]").dataset.filter;
  let m;
  try {
    const r = await fetch("/dead-letters/match?" + filter, { credentials: "same-origin" });
    if (!r.ok) throw new Error((await r.json()).error.message);
    m = await r.json();
  } catch (e) { statusLine(e.message); return; }
  const n = m.ids.length;
  if (n === 0) { statusLine("No dead letters match."); return; }
  const what = filter ? "that match the filter" : "(all of them)";
  if (!await ask((action === "replay" ? "Replay " : "Drop ") + n + " dead letter" + (n === 1 ? "" : "s") + " " + what +
      (m.truncated ? ", the first ones of many more" : "") + "?")) return;
  let ok = 0, failed = 0;
  for (const id of m.ids) {
    try {
      if (action === "replay") await api("POST", "/v1/dead-letters/" + esc(id) + "/replay");
      else await api("DELETE", "/v1/dead-letters/" + esc(id));
      ok++;
    } catch (e) { failed++; }
    statusLine((action === "replay" ? "Replayed " : "Dropped ") + ok + " of " + n + (failed ? ", " + failed + " failed" : ""));
  }
  await refresh();
}

// refresh fetches this page again and swaps in the contents of its
// [data-live] parts, unless the reader is in one of them or a dialog is open.
async function refresh() {
  const live = document.querySelectorAll("[data-live]");
  if (live.length === 0) return;
  const r = await fetch(location.href, { credentials: "same-origin" });
  if (!r.ok) return;
  const doc = new DOMParser().parseFromString(await r.text(), "text/html");
  const fresh = doc.querySelectorAll("[data-live]");
  if (fresh.length !== live.length) return;
  localTimes(doc);
  live.forEach((el, i) => {
    if (el.innerHTML !== fresh[i].innerHTML) el.innerHTML = fresh[i].innerHTML;
  });
}

function busy() {
  const a = document.activeElement;
  return document.hidden || document.querySelector("dialog[open]") ||
    (a && a.closest && a.closest("[data-live]") && a !== document.body) ||
    [...document.querySelectorAll("details[open]")].some((d) => d.closest("[data-live]"));
}

function tail() {
  const table = document.getElementById("tail");
  if (!table) return;
  const body = table.tBodies[0];
  const state = document.getElementById("tail-state");
  const pauseBtn = document.getElementById("tail-pause");
  let paused = false, held = [];
  const q = table.dataset.query;
  const src = new EventSource("/tail/stream?after=" + table.dataset.after + (q ? "&" + q : ""));
  const cell = (tr, text, cls) => { const td = tr.insertCell(); td.textContent = text || ""; if (cls) td.className = cls; return td; };
  const show = (e) => {
    const tr = body.insertRow(-1);
    const t = document.createElement("time");
    t.setAttribute("datetime", e.time); t.textContent = e.time;
    tr.insertCell().append(t);
    const badge = document.createElement("span"); badge.className = "badge o-" + e.outcome; badge.textContent = e.outcome;
    tr.insertCell().append(badge);
    cell(tr, e.eventtype);
    const a = document.createElement("a"); a.href = "/tx/" + esc(e.correlationid); a.textContent = e.correlationid;
    tr.insertCell().append(a);
    cell(tr, e.group || e.source);
    cell(tr, e.attempt ? String(e.attempt) : "", "num");
    cell(tr, e.error, "error");
    localTimes(tr);
    while (body.rows.length > 500) body.deleteRow(0);
  };
  src.onopen = () => { state.textContent = paused ? "Paused" : "Live"; };
  src.onerror = () => { state.textContent = "Reconnecting…"; };
  src.onmessage = (m) => {
    const e = JSON.parse(m.data);
    if (paused) { held.push(e); state.textContent = "Paused: " + held.length + " new"; return; }
    show(e);
  };
  pauseBtn.addEventListener("click", () => {
    paused = !paused;
    pauseBtn.setAttribute("aria-pressed", String(paused));
    pauseBtn.textContent = paused ? "Resume" : "Pause";
    if (!paused) { held.forEach(show); held = []; state.textContent = "Live"; }
    else state.textContent = "Paused";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("button");
    if (!b) return;
    if (b.dataset.bulk) bulk(b);
    else if (b.dataset.replay || b.dataset.drop || b.dataset.pause || b.dataset.resume) act(b);
  });
  tail();
  if (document.querySelector("[data-live]")) {
    setInterval(() => { if (!busy()) refresh().catch(() => {}); }, 5000);
  }
});

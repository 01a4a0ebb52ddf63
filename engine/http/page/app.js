// The status page: one snapshot pushed each second over /api/live (server-sent events),
// drawn into cards that are built once per name and updated in place, so buttons stay put.
// Text from the engine is only ever set with textContent: nothing it says becomes markup.
"use strict";

const $ = (id) => document.getElementById(id);
const cards = { sources: new Map(), recorders: new Map(), cameras: new Map(), rules: new Map() };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

function time(t) {
  if (t === null || t === undefined) return "–";
  return new Date(t * 1000).toLocaleTimeString([], { hour12: false });
}

function size(n) {
  if (n < 1024) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let i = -1;
  do { n /= 1024; i += 1; } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
}

function seconds(s) {
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${(s / 3600).toFixed(1)} h`;
}

// A card: title with a badge, rows of label/value, and optional parts and buttons.
function card(section, name, build) {
  const known = cards[section];
  let c = known.get(name);
  if (!c) {
    const badge = el("span", { class: "badge" });
    const rows = el("div");
    const node = el("div", { class: "card", "data-name": name },
      el("h3", {}, el("span", { textContent: name }), badge), rows);
    node.id = `${section}-${name}`;
    badge.id = `${section}-${name}-state`;
    c = { node, badge, rows, parts: {} };
    build(c);
    known.set(name, c);
  }
  c.seen = true;
  return c;
}

function place(section, container) {
  for (const [name, c] of cards[section]) {
    if (!c.seen) { c.node.remove(); cards[section].delete(name); continue; }
    c.seen = false;
    if (c.node.parentNode !== container) container.append(c.node);
  }
}

function setBadge(c, text, kind) {
  c.badge.textContent = text;
  c.badge.className = `badge ${kind}`;
  c.node.setAttribute("data-state", kind);
}

function setRows(c, rows) {
  c.rows.replaceChildren(...rows.map(([label, value]) =>
    el("div", { class: "row" }, el("span", { textContent: label }), el("b", { textContent: value }))));
}

function button(label, action, target) {
  return el("button", { type: "button", textContent: label, "data-action": action, "data-target": target });
}

function sources(list) {
  for (const s of list) {
    const c = card("sources", s.name, () => {});
    setBadge(c, s.connected ? "connected" : (s.closed ? "closed" : "down"),
      s.connected ? "connected" : "down");
    const rows = [
      ["type", s.type],
      ["messages", `${s.frames} (${s.frame_rate.toFixed(1)}/s)`],
      ["bytes", `${size(s.bytes)} (${size(s.byte_rate)}/s)`],
      ["reconnects, gaps", `${s.reconnects}, ${s.gaps}`],
    ];
    if (s.last_gap) rows.push(["last gap", s.last_gap]);
    if (s.invalid) rows.push(["invalid messages", String(s.invalid)]);
    if (s.closed) rows.push(["ended", s.closed]);
    setRows(c, rows);
  }
  place("sources", $("sources"));
}

function timeline(c, r, now) {
  const segments = r.current ? [...r.segments, r.current] : r.segments;
  const start = Math.min(now - 60, ...segments.map((s) => s.first_time ?? now));
  const span = Math.max(1, now - start);
  const bars = segments.map((s) => {
    const from = s.first_time ?? now;
    const to = s.open ? now : (s.last_time ?? from);
    const style = `left:${(100 * (from - start)) / span}%;width:${(100 * (to - from)) / span}%`;
    const title = `${s.file}: ${s.start_reason} → ${s.stop_reason || "recording"}`;
    const bar = s.path
      ? el("a", { href: `/api/segments/file/${encodeURI(s.path)}`, title })
      : el("span", { title });
    bar.setAttribute("style", style);
    if (s.open) bar.classList.add("open");
    return bar;
  });
  c.parts.timeline.replaceChildren(...bars);
  c.parts.span.textContent = `last ${seconds(span)}`;
  const items = [...segments].reverse().map((s) => {
    const name = s.path
      ? el("a", { href: `/api/segments/file/${encodeURI(s.path)}`, textContent: s.file })
      : el("span", { textContent: s.file });
    const why = `${s.start_reason} → ${s.stop_reason || "…"}, ${s.records} msgs, ${size(s.bytes)}`;
    return el("li", {}, name, el("span", { class: "muted", textContent: why }));
  });
  c.parts.list.replaceChildren(...items);
}

function recorders(list, now) {
  for (const r of list) {
    const c = card("recorders", r.name, (c) => {
      c.parts.timeline = el("div", { class: "timeline" });
      c.parts.span = el("div", { class: "muted" });
      c.parts.list = el("ul", { class: "segments" });
      c.node.append(c.parts.timeline, c.parts.span, c.parts.list,
        el("div", { class: "actions" },
          button("Start recording", "start", r.name), button("Stop", "stop", r.name)));
    });
    setBadge(c, r.state.replace("_", " "), r.state);
    const rows = [["source", r.source], ["segments", String(r.segment_count)]];
    if (r.current) {
      const since = r.current.first_time ? seconds(now - r.current.first_time) : "";
      rows.push(["now", `${r.current.records} msgs, ${size(r.current.bytes)}, ${since}`]);
    }
    if (r.last_error) rows.push(["last error", r.last_error]);
    setRows(c, rows);
    timeline(c, r, now);
  }
  place("recorders", $("recorders"));
}

function cameras(list) {
  for (const cam of list) {
    const c = card("cameras", cam.name, (c) => {
      c.parts.thumb = el("img", { class: "thumb", alt: `last shot of ${cam.name}` });
      c.parts.thumb.id = `cameras-${cam.name}-thumb`;
      c.parts.thumb.hidden = true;
      c.node.append(c.parts.thumb, el("div", { class: "actions" },
        button("Take shot", "shot", cam.name)));
    });
    const failing = cam.last_error && (!cam.last_shot || cam.last_error.time > cam.last_shot.time);
    setBadge(c, failing ? "failing" : "ok", failing ? "failed" : "ok");
    const rows = [
      ["shots ok, failed", `${cam.ok}, ${cam.failed}`],
      ["waiting, in flight", `${cam.waiting}, ${cam.in_flight}`],
      ["last shot", cam.last_shot ? time(cam.last_shot.time) : "–"],
    ];
    if (cam.retries) rows.push(["retries", String(cam.retries)]);
    if (cam.last_error) rows.push(["last error", `${time(cam.last_error.time)} ${cam.last_error.reason}`]);
    setRows(c, rows);
    const shot = cam.last_shot;
    if (shot && shot.path) {
      const src = `/api/shots/file/${encodeURI(shot.path)}`;
      if (c.parts.thumb.getAttribute("src") !== src) c.parts.thumb.setAttribute("src", src);
      c.parts.thumb.setAttribute("data-task", shot.task);
      c.parts.thumb.hidden = false;
    }
  }
  place("cameras", $("cameras"));
}

function rules(list) {
  for (const rule of list) {
    const c = card("rules", rule.name, (c) => {
      c.parts.firings = el("ol", { class: "firings" });
      c.node.append(c.parts.firings, el("div", { class: "actions" },
        button("Fire now", "fire", rule.name)));
    });
    setBadge(c, rule.enabled ? `${rule.firings} fired` : "disabled", rule.enabled ? "idle" : "disabled");
    const rows = [];
    if (rule.description) rows.push(["", rule.description]);
    rows.push(["when", rule.triggers.join("; ")]);
    rows.push(["do", rule.actions.join("; ")]);
    if (rule.next_times.length) rows.push(["next", rule.next_times.map(time).join(", ")]);
    setRows(c, rows);
    c.parts.firings.replaceChildren(...rule.last_firings.map((f) =>
      el("li", { textContent: `${time(f.time)} ${f.trigger}: ${f.detail}` })));
  }
  place("rules", $("rules"));
}

function log(status) {
  const lines = [
    ...status.errors.map((e) => ({ ...e, kind: "error" })),
    ...status.reloads.map((e) => ({ ...e, kind: "reload" })),
  ].sort((a, b) => b.time - a.time);
  $("log").replaceChildren(...(lines.length
    ? lines.map((l) => el("li", { class: l.kind, textContent: `${time(l.time)} ${l.kind}: ${l.text}` }))
    : [el("li", { class: "muted", textContent: "none" })]));
}

function render(status) {
  const state = status.running ? "running" : "stopping";
  $("state").textContent = state;
  $("state").className = `badge ${state}`;
  $("clock").textContent = time(status.time ?? Date.now() / 1000);
  const now = status.time ?? Date.now() / 1000;
  sources(status.sources);
  recorders(status.recorders, now);
  cameras(status.cameras);
  rules(status.rules);
  log(status);
}

// The site (engines of one cluster): one table row per engine, kept by name, rebuilt in place.
function siteCell(text, cls) {
  return el("td", cls ? { class: cls, textContent: text } : { textContent: text });
}

function site(s) {
  $("site-section").hidden = s.site === null;
  if (s.site === null) return;
  $("site-name").textContent = `${s.site}: ${s.engines.length} engine${s.engines.length === 1 ? "" : "s"}`;
  const hashes = new Map();
  for (const e of s.engines) hashes.set(e.rules_hash, (hashes.get(e.rules_hash) || 0) + 1);
  const common = [...hashes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  const rows = s.engines.map((e) => {
    const since = Math.max(0, s.time - e.seen);
    const late = since > (2 * e.ttl) / 3;
    const running = e.running.map((f) => `${f.rule} ${time(f.instant)}${f.delivery > 1 ? ` (delivery ${f.delivery})` : ""}`);
    const shots = e.cameras.filter((c) => c.in_flight || c.waiting)
      .map((c) => `${c.camera}: ${c.in_flight} in flight, ${c.waiting} waiting`);
    const reads = [
      ...e.sources.map((x) => `${x.name} (${x.connected ? "connected" : "down"}, ${x.frame_rate.toFixed(1)}/s)`),
      ...e.recorders.map((r) => `${r.name}: ${r.state.replace("_", " ")}`),
      ...e.leads.map((name) => `leads ${name}`),
    ];
    const link = e.link.connected ? "connected" : "away";
    const row = el("tr", { "data-name": e.name, "data-state": e.state },
      siteCell(`${e.name}${e.host ? ` (${e.host}, pid ${e.pid})` : ""}`),
      siteCell(e.state),
      siteCell(`${seconds(since)} ago`),
      siteCell(e.rules_hash.slice(0, 12), hashes.size > 1 && e.rules_hash !== common ? "differs" : ""),
      siteCell(running.join(", ") || (e.runs_in_flight ? `${e.runs_in_flight} runs` : "–")),
      siteCell(shots.join("; ") || "–"),
      siteCell(reads.join("; ") || "–"),
      siteCell(String(e.counts.fired)),
      siteCell(`${e.counts.shots_ok}, ${e.counts.shots_failed}`),
      siteCell(`${link}${e.link.waiting ? `, ${e.link.waiting} waiting` : ""}`));
    row.id = `site-engine-${e.name}`;
    if (e.name === s.engine) row.classList.add("self");
    if (late) row.classList.add("late");
    return row;
  });
  $("site").tBodies[0].replaceChildren(...rows);
  const warnings = $("site-warnings");
  warnings.hidden = s.warnings.length === 0;
  warnings.replaceChildren(...s.warnings.map((w) => el("li", { textContent: w })));
  $("site-firings").replaceChildren(...(s.firings.length
    ? s.firings.slice(0, 10).map((f) => el("li", { textContent: `${time(f.time)} ${f.rule} on ${f.engine} (${f.trigger})` }))
    : [el("li", { class: "muted", textContent: "none yet" })]));
}

let noticeTimer = null;
function notice(text) {
  const box = $("notice");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, 5000);
}

const ROUTES = {
  start: (n) => `/api/recorders/${encodeURIComponent(n)}/start`,
  stop: (n) => `/api/recorders/${encodeURIComponent(n)}/stop`,
  fire: (n) => `/api/rules/${encodeURIComponent(n)}/fire`,
  shot: (n) => `/api/cameras/${encodeURIComponent(n)}/shot`,
};

async function act(action, target) {
  const r = await fetch(ROUTES[action](target), { method: "POST", credentials: "same-origin" });
  const body = await r.json().catch(() => ({}));
  if (r.status === 401) {
    $("signin").hidden = false;
    notice("This needs the access token: sign in, then press again.");
  } else if (!r.ok) {
    notice(`${target}: ${body.detail || body.error || r.statusText}`);
  } else {
    notice(`${target}: ${body.detail}`);
  }
}

document.addEventListener("click", (e) => {
  const b = e.target.closest("button[data-action]");
  if (b) act(b.dataset.action, b.dataset.target);
});

$("signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("/api/session", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token: $("token").value }),
  });
  $("token").value = "";
  if (r.ok) { $("signin").hidden = true; notice("Signed in."); } else notice("That is not the token.");
});

function connect() {
  const live = new EventSource("/api/live");
  live.addEventListener("status", (e) => {
    render(JSON.parse(e.data));
  });
  live.addEventListener("site", (e) => {
    site(JSON.parse(e.data));
  });
  live.onerror = () => {
    $("state").textContent = "disconnected";
    $("state").className = "badge down";
  };
}

connect();

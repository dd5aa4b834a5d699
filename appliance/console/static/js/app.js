// The console: login, routing (#/ overview, #/d/<device>[/<site>] device view), rendering
// once per animation frame of what changed, technologist actions, and its own measurements
// (window.ionm.metrics: message-to-render lag, alarm render times) for tests and benchmarks.

import { Link } from "./link.js";
import { Fleet, utcSeconds } from "./model.js";
import { COLOURS, TrendChart, drawSpark, drawTraces, eventColour } from "./plots.js";

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

const LAG_SAMPLES = 20000;
const metrics = { lags: [], arriveLags: [], alarms: [], renders: 0, messages: 0 };
let config = { broker_url: "", topic_root: "ionm/v1" };
let link = null;
let fleet = null;
let route = { view: "overview" };
let dirty = new Map(); // device id (or "*") -> the changes since the last frame
let pendingLag = []; // [t_utc ms, arrival ms] of visible messages not drawn yet
let frameAsked = false;
const deviceView = { id: null, site: null, charts: new Map(), canvases: new Map() };

// ------------------------------------------------------------------ login

async function start() {
  try {
    const r = await fetch("config.json", { cache: "no-store" });
    if (r.ok) config = { ...config, ...(await r.json()) };
  } catch { /* served without config.json: defaults */ }
  const secure = location.protocol === "https:";
  $("broker").value = config.broker_url ||
    `${secure ? "wss" : "ws"}://${location.hostname || "localhost"}:8884/`;
  $("login").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  window.addEventListener("hashchange", () => { parseRoute(); showView(); });
  window.addEventListener("resize", () => ask("*"));
  wireActions();
}

function login(ev) {
  ev.preventDefault();
  const url = $("broker").value.trim(), username = $("username").value.trim();
  const password = $("password").value;
  $("password").value = ""; // not kept in the page
  $("login-error").textContent = "";
  if (!/^wss?:\/\//.test(url)) {
    $("login-error").textContent = `broker: got "${url}", allowed: a ws:// or wss:// URL`;
    return;
  }
  fleet = new Fleet(config.topic_root);
  link = new Link({ url, username, password, root: config.topic_root, onMessage, onState });
  $("connect").disabled = true;
  link.ready.then(() => {
    $("login").hidden = true;
    $("logout").hidden = false;
    $("who").textContent = `${username}${url.startsWith("wss") ? "" : " (not encrypted)"}`;
    parseRoute();
    showView();
  }, (e) => {
    link.end();
    link = null;
    $("connect").disabled = false;
    $("login-error").textContent = `login refused: ${e.message}`;
  });
}

function logout() {
  if (link) link.end();
  location.hash = "#/";
  location.reload(); // drops every trace of the session
}

function onState(state) {
  $("conn").textContent = state;
  $("conn").className = state === "connected" ? "ok" : "bad";
  if (state === "connected" && fleet) for (const d of fleet.devices.values()) d.canAct = null;
}

// ------------------------------------------------------------------ messages

function onMessage(topic, body, retained) {
  const arrive = performance.now();
  metrics.messages++;
  const ch = fleet.apply(topic, body);
  if (!ch) return;
  const dev = ch.device;
  if (ch.kind === "status" && dev.online && dev.canAct === null) probe(dev);
  if (ch.kind === "event" && body.event === "raised") {
    metrics.alarms.push({ alarm_id: body.alarm_id, t_utc: body.t_utc, arrive_ms: Date.now(),
      rendered_ms: null, visible: visible(dev, ch) });
    if (metrics.alarms.length > 1000) metrics.alarms.shift(); // bounded like everything else
  }
  if (visible(dev, ch)) {
    // a retained message is as old as its state, and a death's t_utc is when its session
    // began (the Will is fixed at CONNECT): neither is late, no lag for them
    if (!retained && ch.kind !== "status") pendingLag.push([utcSeconds(body.t_utc) * 1000, arrive]);
    ask(dev.id, ch);
  }
}

/** Does this change show on the current view? (Lag is measured only for what is drawn.) */
function visible(dev, ch) {
  if (route.view === "overview") return ch.kind !== "waveform" && ch.kind !== "health";
  if (route.view !== "device" || route.id !== dev.id) return false;
  return !route.site || !ch.site || ch.site === route.site || ch.kind !== "trend" && ch.kind !== "waveform";
}

/** Ask the broker whether this login may command the device: a ping the ACL allows or not. */
function probe(dev) {
  dev.canAct = "asking";
  link.command(dev.id, "ping").then(() => { dev.canAct = true; }, (e) => {
    dev.canAct = e.message.startsWith("refused") ? false : null;
    dev.refusal = e.message;
  }).finally(() => ask(dev.id));
}

/** Redraw at the next frame: `what` a device id or "*" (everything), `change` what changed. */
function ask(what, change = { kind: "*" }) {
  if (!dirty.has(what)) dirty.set(what, []);
  dirty.get(what).push(change);
  if (!frameAsked) { frameAsked = true; requestAnimationFrame(frame); }
}

function frame() {
  frameAsked = false;
  const changed = dirty;
  dirty = new Map();
  if (route.view === "overview") renderOverview(changed);
  else if (route.view === "device") renderDevice(changed);
  metrics.renders++;
  const now = performance.now(), wall = Date.now();
  for (const [tUtcMs, arrive] of pendingLag) {
    if (metrics.lags.length >= LAG_SAMPLES) { metrics.lags.shift(); metrics.arriveLags.shift(); }
    metrics.lags.push(wall - tUtcMs);
    metrics.arriveLags.push(now - arrive);
  }
  pendingLag = [];
  for (const a of metrics.alarms) {
    if (a.rendered_ms === null && shownAlarm(a.alarm_id)) a.rendered_ms = wall;
  }
}

function shownAlarm(id) {
  return !!document.querySelector(`[data-alarm="${CSS.escape(id)}"]`);
}

// ------------------------------------------------------------------ routing

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  route = parts[0] === "d" && parts[1] ? { view: "device", id: parts[1], site: parts[2] || null }
    : { view: "overview" };
}

function showView() {
  if (!link) return;
  $("overview").hidden = route.view !== "overview";
  $("device").hidden = route.view !== "device";
  if (route.view === "device") resetDeviceView();
  ask("*");
}

// ------------------------------------------------------------------ overview

const LAMP = (a) => (a.kind === "technical" ? "technical" : a.priority === "high" ? "high" : "medium");

function renderOverview(changed) {
  const box = $("devices");
  $("no-devices").hidden = fleet.devices.size > 0;
  const ids = [...fleet.devices.keys()].sort();
  for (const id of ids) {
    const dev = fleet.devices.get(id);
    let card = box.querySelector(`[data-device="${CSS.escape(id)}"]`);
    if (card && !changed.has("*") && !changed.has(id)) continue;
    if (!card) {
      card = el("a", "card");
      card.dataset.device = id;
      card.href = `#/d/${encodeURIComponent(id)}`;
      card.append(el("div", "card-head"), el("div", "muted case"), el("div", "card-alarms"),
        el("div", "sparks"));
      const next = ids.slice(ids.indexOf(id) + 1).map((n) => box.querySelector(`[data-device="${CSS.escape(n)}"]`)).find(Boolean);
      box.insertBefore(card, next || null);
    }
    const [head, caseLine, alarms, sparks] = card.children;
    const top = dev.topAlarm();
    card.className = `card ${top ? LAMP(top) : ""} ${dev.online ? "" : "offline"}`;
    const st = dev.status || {};
    head.replaceChildren(el("strong", "", st.name || dev.id), el("span", "muted", st.location || ""),
      el("span", dev.online ? "pill ok" : "pill bad", dev.online ? "online" : "offline"));
    const cs = dev.caseInfo;
    caseLine.textContent = cs && cs.state === "running"
      ? `case ${cs.label || cs.case_id} ${cs.procedure ? "· " + cs.procedure : ""}` : "no case";
    const shown = dev.active.filter((a) => a.active || !a.acknowledged);
    alarms.replaceChildren(...(shown.length ? shown.slice(0, 3).map((a) => {
      const d = el("div", `alarm ${LAMP(a)}`, `${a.site ? a.site + ": " : ""}${a.message}`);
      d.dataset.alarm = a.alarm_id;
      return d;
    }) : [el("span", "muted", "no active alarm")]));
    for (const site of dev.sites.values()) {
      let row = sparks.querySelector(`[data-site="${CSS.escape(site.name)}"]`);
      if (!row) {
        row = el("div", "spark-row");
        row.dataset.site = site.name;
        row.append(el("span", "", site.name), el("canvas", "spark"));
        sparks.append(row);
      }
      // the judged channel: the first with a template fit, else the first with a trend
      const chans = [...site.channels.values()];
      const ch = chans.find((c) => c.trend.length && c.hadFit) || chans.find((c) => c.trend.length);
      if (ch) drawSpark(row.lastChild, ch.trend, ch.hadFit ? "ratio" : "amp");
    }
  }
}

// ------------------------------------------------------------------ device view

function resetDeviceView() {
  deviceView.id = route.id;
  deviceView.site = route.site;
  for (const c of deviceView.charts.values()) if (c.plot) c.plot.destroy();
  deviceView.charts.clear();
  deviceView.canvases.clear();
  $("sites").replaceChildren();
  $("site-tabs").replaceChildren();
  $("result").textContent = "";
}

function renderDevice(changed) {
  const dev = fleet.devices.get(route.id);
  $("dev-title").textContent = dev ? (dev.status && dev.status.name) || dev.id : route.id;
  if (!dev) { $("dev-status").textContent = "not seen yet"; return; }
  const all = changed.has("*") || (changed.get(dev.id) || []).some((c) => c.kind === "*");
  const parts = all ? null : changed.get(dev.id);
  if (!all && !parts) return;
  const has = (...kinds) => all || parts.some((c) => kinds.includes(c.kind));
  // the alarm list first: what the user must see soonest
  if (has("active", "event")) { renderAlarms(dev); renderEvents(dev); }
  if (has("status", "case", "health", "active", "event")) renderHeader(dev);
  if (has("status", "trend", "waveform", "event")) renderSites(dev, all ? null : parts);
}

function renderHeader(dev) {
  $("dev-status").textContent = dev.online ? "online" : "offline";
  $("dev-status").className = dev.online ? "pill ok" : "pill bad";
  const cs = dev.caseInfo;
  $("dev-case").textContent = cs && cs.state === "running"
    ? `case ${cs.label || cs.case_id}${cs.procedure ? " · " + cs.procedure : ""} since ${cs.started_utc || "?"}`
    : "no case running";
  const may = dev.canAct === true && dev.online;
  for (const b of document.querySelectorAll("#device button.act")) b.disabled = !may;
  $("dev-rights").textContent = dev.canAct === true ? "you may act on this device"
    : dev.canAct === false ? `read-only: the broker ${dev.refusal || "refused: not authorised"}`
      : "asking the broker what this login may do";
}

function renderAlarms(dev) {
  const ul = $("alarms");
  const items = dev.active.map((a) => {
    const li = el("li", `alarm ${LAMP(a)}`);
    li.dataset.alarm = a.alarm_id;
    li.append(el("b", "", a.priority.toUpperCase()), el("span", "", ` ${a.site ? a.site + ": " : ""}${a.message}`),
      el("span", "muted", ` ${a.active ? "" : "cleared, latched"}${a.acknowledged ? " acknowledged" : ""}`));
    return li;
  });
  if (!items.length) items.push(el("li", "muted", "no active alarm"));
  ul.replaceChildren(...items);
}

function renderEvents(dev) {
  const items = dev.events.slice(-20).reverse().map((e) => {
    const li = el("li", "");
    const dot = el("span", "dot");
    dot.style.background = eventColour(e);
    const when = Number.isFinite(e.t) ? new Date(e.t * 1000).toLocaleTimeString() : "";
    li.append(dot, el("span", "muted", `${when} `), el("span", "",
      `${e.event}${e.site ? " " + e.site : ""}: ${e.message || ""} (${e.cause || ""})`));
    return li;
  });
  $("events").replaceChildren(...items);
}

/** Sites, or with `parts` only the channels (waveform) and charts (trend, event) that changed. */
function renderSites(dev, parts) {
  const want = (kind, site, channel) => !parts || parts.some((c) => c.kind === kind
    && (!c.site || c.site === site) && (channel === undefined || c.channel === channel));
  const tabs = $("site-tabs");
  if (tabs.childElementCount !== dev.sites.size + 1) {
    const base = `#/d/${encodeURIComponent(dev.id)}`;
    const all = el("a", route.site ? "" : "on", "all sites");
    all.href = base;
    tabs.replaceChildren(all, ...[...dev.sites.keys()].map((s) => {
      const a = el("a", route.site === s ? "on" : "", s);
      a.href = `${base}/${encodeURIComponent(s)}`;
      return a;
    }));
  }
  for (const site of dev.sites.values()) {
    if (route.site && site.name !== route.site) continue;
    let sec = $("sites").querySelector(`[data-site="${CSS.escape(site.name)}"]`);
    const fresh = !sec;
    if (fresh) sec = buildSite(dev, site);
    const trends = fresh || want("trend", site.name) || want("event", site.name);
    if (trends) {
      const badges = sec.querySelector(".badges");
      badges.replaceChildren(...[...site.channels.values()].filter((c) => c.last).map((c) => siteBadge(c)));
    }
    for (const ch of site.channels.values()) {
      const key = `${site.name}\u0000${ch.name}`;
      const isNew = !deviceView.canvases.has(key);
      if (isNew) addChannel(sec, key, ch);
      if (!fresh && !isNew && !want("waveform", site.name, ch.name)) continue;
      const { canvas, label } = deviceView.canvases.get(key);
      const w = ch.waves[0];
      label.textContent = `${ch.name} · ${w ? `n=${w.n_sweeps}` : "no average yet"}` +
        `${ch.baseline ? " · baseline" : ""}`;
      drawTraces(canvas, ch);
    }
    if (trends) for (const c of deviceView.charts.values()) if (c.site === site) c.update();
  }
}

function buildSite(dev, site) {
  const sec = el("section", "panel site");
  sec.dataset.site = site.name;
  const head = el("div", "site-head");
  const bl = el("button", "act", "set baseline");
  bl.disabled = dev.canAct !== true;
  bl.addEventListener("click", () => act("set_baseline", { site: site.name },
    (r) => { fleet.baselinesTaken(dev, r.baselines); return `${(r.baselines || []).length} baseline(s) taken`; }));
  head.append(el("h2", "", `${site.name}`), el("span", "muted", site.modality), bl);
  const legend = el("div", "legend");
  legend.append(el("span", "key trace", "newest"), el("span", "key old", "older"),
    el("span", "key baseline", "baseline"), el("span", "key marker", "components"));
  const traces = el("div", "traces");
  const trends = el("div", "trends");
  const amp = el("div", "trend"), lat = el("div", "trend");
  trends.append(amp, lat);
  sec.append(head, el("div", "badges"), legend, traces, trends);
  $("sites").append(sec);
  deviceView.charts.set(`${site.name}/amp`, new TrendChart(amp, site, dev, "amp", "amplitude µV"));
  deviceView.charts.set(`${site.name}/lat`, new TrendChart(lat, site, dev, "lat", "latency ms"));
  return sec;
}

function addChannel(sec, key, ch) {
  const box = el("figure", "channel");
  const label = el("figcaption", "", ch.name);
  const canvas = el("canvas", "traces-canvas");
  canvas.dataset.channel = ch.name;
  box.append(label, canvas);
  sec.querySelector(".traces").append(box);
  deviceView.canvases.set(key, { canvas, label });
}

/** The judged fit with its standard errors (a change on a measure too imprecise for its
 * criterion is MEDIUM first): " · fit 45 ± 10 % · latency +0.21 ± 0.30 ms", or "". */
function fitText(fit) {
  if (!fit || fit.amplitude_ratio === null) return "";
  const known = (x) => x !== null && x !== undefined;
  const pm = (se, scale, d) => (known(se) ? ` ± ${(se * scale).toFixed(d)}` : "");
  let text = ` · fit ${(fit.amplitude_ratio * 100).toFixed(0)}` +
    `${pm(fit.amplitude_ratio_se, 100, 0)} %`;
  const shift = fit.latency_shift_ms;
  if (known(shift)) {
    text += ` · latency ${shift >= 0 ? "+" : ""}${shift.toFixed(2)}${pm(fit.latency_se_ms, 1, 2)} ms`;
  }
  return text;
}

function siteBadge(c) {
  const t = c.last;
  const rej = Object.values(t.rejected || {}).reduce((a, b) => a + b, 0);
  const f = (x, d) => (x === null || x === undefined ? "–" : x.toFixed(d));
  const b = el("span", "badge");
  b.textContent = `${c.name}: Fsp ${f(t.fsp, 1)} · noise ${f(t.residual_noise_uv, 2)} µV · ` +
    `rejected ${rej}${fitText(t.fit)}`;
  if (t.fsp !== null && t.fsp < 3.1) b.classList.add("weak"); // below the reproducibility bar
  return b;
}

// ------------------------------------------------------------------ actions

function wireActions() {
  $("ack").addEventListener("click", () => act("acknowledge", {}, (r) => `${(r.events || []).length} alarm(s) acknowledged`));
  $("pause").addEventListener("click", () => act("audio_pause", {}, () => "audio paused"));
  $("start-case").addEventListener("click", () => {
    const label = $("case-label").value.trim();
    if (!label) { show("start case: a label is needed", true); return; }
    act("start_case", { label, procedure: $("case-procedure").value.trim() },
      (r) => `case ${r.case_id} started`);
  });
  $("stop-case").addEventListener("click", () => act("stop_case", {}, () => "case stopped"));
  $("annotate").addEventListener("click", () => {
    const text = $("note").value.trim();
    if (!text) { show("annotate: type the event first", true); return; }
    act("annotate", { text }, () => { // shown when the appliance publishes it (every console)
      $("note").value = "";
      return `noted: ${text}`;
    });
  });
}

function act(name, args, describe) {
  const id = route.id;
  show(`${name}: sending…`);
  link.command(id, name, args).then((r) => {
    show(`${name}: ${describe(r)}`);
    ask(id);
  }, (e) => show(`${name} ${e.message.startsWith("refused") ? "" : "failed: "}${e.message}`, true));
}

function show(text, bad = false) {
  $("result").textContent = text;
  $("result").className = bad ? "bad" : "ok";
}

window.ionm = { metrics, get fleet() { return fleet; }, get link() { return link; } };
start();
export { COLOURS };

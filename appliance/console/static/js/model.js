// What the page knows about every device, built only from MQTT messages (docs/mqtt.md).
// Every history is bounded, so a console left open for a whole case does not grow.

export const LIMITS = { waves: 8, trend: 720, events: 200, spark: 120 };

// criteria the appliance applies by default (docs/clinical-defaults.md), until the device's
// birth message (status: sites[].criteria) or an alarm's evidence names the site's real ones
const DEFAULT_CRITERIA = {
  ssep_upper: { amplitude_ratio_min: 0.5, latency_ratio_max: 1.1 },
  ssep_lower: { amplitude_ratio_min: 0.5, latency_ratio_max: 1.1 },
  baep: { latency_shift_ms: 1.0 },
  tcmep: { amplitude_ratio_min: 0.2 },
};

/** int16 little-endian base64 -> Float32Array of µV (the waveform encoding). */
export function decodeInt16(data, scaleUv) {
  const bin = atob(data);
  const out = new Float32Array(bin.length >> 1);
  for (let i = 0; i < out.length; i++) {
    let v = bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8);
    if (v >= 0x8000) v -= 0x10000;
    out[i] = v * scaleUv;
  }
  return out;
}

export const utcSeconds = (text) => (text ? Date.parse(text) / 1000 : NaN);

function push(list, item, max) {
  list.push(item);
  if (list.length > max) list.splice(0, list.length - max);
}

class Channel {
  constructor(name) {
    this.name = name;
    this.waves = []; // newest first
    this.baseline = null; // a wave
    this.baselineUv = null; // judged baseline amplitude (evidence / set_baseline reply)
    this.baselineLatencyMs = null;
    this.hadFit = false;
    this.trend = []; // {t, amp, lat, ratio}
    this.last = null; // last trend message
  }
}

class Site {
  constructor(name, modality) {
    this.name = name;
    this.modality = modality;
    this.channels = new Map();
    this.criteria = { ...(DEFAULT_CRITERIA[modality] || {}) };
    this.criteriaFrom = "default";
  }
  channel(name) {
    if (!this.channels.has(name)) this.channels.set(name, new Channel(name));
    return this.channels.get(name);
  }
}

export class Device {
  constructor(id) {
    this.id = id;
    this.status = null; // birth or death
    this.health = null;
    this.caseInfo = null;
    this.active = []; // alarm/active
    this.events = []; // alarm events and our annotations, oldest first
    this.sites = new Map();
    this.canAct = null; // null unknown, true: the broker let us command it, false: refused
    this.lastMsgS = 0;
  }
  get online() {
    return !!(this.status && this.status.online);
  }
  site(name, modality) {
    if (!this.sites.has(name)) this.sites.set(name, new Site(name, modality));
    return this.sites.get(name);
  }
  topAlarm() {
    const order = { high: 3, medium: 2, low: 1 };
    return this.active.filter((a) => a.active || !a.acknowledged)
      .sort((a, b) => (order[b.priority] || 0) - (order[a.priority] || 0))[0] || null;
  }
}

/** The amplitude and latency a trend message is judged by (the template fit when present). */
export function measures(t) {
  const comps = Object.values(t.components || {});
  const first = comps.find((c) => c.latency_ms !== null && c.latency_ms !== undefined);
  return {
    amp: t.peak_to_peak_uv ?? null,
    ratio: t.fit ? t.fit.amplitude_ratio : null,
    lat: t.fit && t.fit.latency_ms !== null ? t.fit.latency_ms : first ? first.latency_ms : null,
  };
}

export class Fleet {
  constructor(root) {
    this.root = root;
    this.devices = new Map();
  }
  device(id) {
    if (!this.devices.has(id)) this.devices.set(id, new Device(id));
    return this.devices.get(id);
  }

  /** Apply one message; returns {device, kind, site} of what changed, or null. */
  apply(topic, body) {
    const rest = topic.slice(this.root.length + 1).split("/");
    const dev = this.device(rest[0]);
    const kind = rest[1];
    dev.lastMsgS = Date.now() / 1000;
    if (kind === "status") {
      dev.status = body;
      for (const s of body.sites || []) {
        const site = dev.site(s.name, s.modality);
        if (s.criteria) { Object.assign(site.criteria, s.criteria); site.criteriaFrom = "appliance"; }
        for (const ch of s.channels || []) site.channel(ch);
      }
      return { device: dev, kind };
    }
    if (kind === "health") { dev.health = body; return { device: dev, kind }; }
    if (kind === "case") { dev.caseInfo = body; return { device: dev, kind }; }
    if (kind === "alarm" && rest[2] === "active") { dev.active = body.alarms || []; return { device: dev, kind: "active" }; }
    if (kind === "alarm" && rest[2] === "event") {
      push(dev.events, { ...body, t: utcSeconds(body.t_utc) }, LIMITS.events);
      this.fromEvidence(dev, body);
      return { device: dev, kind: "event", site: body.site };
    }
    if (kind === "baseline" && body.type === "baseline") { // retained: exact for a late console
      const ch = dev.site(body.site, body.modality).channel(body.channel);
      if (body.cleared) { ch.baseline = null; ch.baselineUv = null; ch.baselineLatencyMs = null; }
      else {
        const w = body.waveform;
        if (w) ch.baseline = { t_s: w.t_s, t: NaN, n_sweeps: w.n_sweeps, t0_ms: w.t0_ms,
          rate: w.sample_rate_hz, uv: decodeInt16(w.data, w.scale_uv) };
        ch.baselineUv = body.amplitude_uv;
        ch.baselineLatencyMs = body.latency_ms;
      }
      return { device: dev, kind: "waveform", site: body.site, channel: body.channel };
    }
    if (kind === "annotation") { // any console's (or the cart's) event mark, from the appliance
      push(dev.events, { type: "annotation", event: "annotation", message: body.text,
        cause: body.cause, t: utcSeconds(body.t_utc), site: "" }, LIMITS.events);
      return { device: dev, kind: "event", site: "" };
    }
    if (kind === "trend" && body.type === "trend") {
      const site = dev.site(body.site, body.modality);
      const ch = site.channel(body.channel);
      const m = measures(body);
      if (body.fit && !ch.hadFit) {
        // the appliance took a baseline at the update before the first fitted one
        const prev = ch.waves.find((w) => w.t_s < body.t_s);
        if (prev && !ch.baseline) ch.baseline = prev;
        if (ch.baselineUv === null && body.fit.amplitude_ratio > 0 && m.amp !== null) {
          const before = ch.last ? measures(ch.last).amp : null;
          ch.baselineUv = before;
        }
      }
      if (!body.fit && ch.hadFit) { ch.baseline = null; ch.baselineUv = null; } // new case
      ch.hadFit = !!body.fit;
      ch.last = body;
      push(ch.trend, { t: utcSeconds(body.t_utc), ...m }, LIMITS.trend);
      return { device: dev, kind, site: body.site, channel: body.channel };
    }
    if (kind === "waveform" && body.type === "waveform") {
      const site = dev.site(body.site, body.modality);
      const ch = site.channel(body.channel);
      const w = { t_s: body.t_s, t: utcSeconds(body.t_utc), n_sweeps: body.n_sweeps,
        t0_ms: body.t0_ms, rate: body.sample_rate_hz, uv: decodeInt16(body.data, body.scale_uv) };
      ch.waves.unshift(w);
      if (ch.waves.length > LIMITS.waves) ch.waves.length = LIMITS.waves;
      return { device: dev, kind, site: body.site, channel: body.channel };
    }
    return null;
  }

  /** An alarm's evidence names the site's real criteria and baseline. */
  fromEvidence(dev, ev) {
    const e = ev.evidence;
    if (!e || !ev.site || !dev.sites.has(ev.site)) return;
    const site = dev.sites.get(ev.site);
    if (e.criteria) { Object.assign(site.criteria, e.criteria); site.criteriaFrom = "appliance"; }
    if (e.channel && e.baseline) {
      const ch = site.channel(e.channel);
      ch.baselineUv = e.baseline.amplitude_uv;
      ch.baselineLatencyMs = e.baseline.latency_ms;
      const w = ch.waves.find((x) => Math.abs(x.t_s - e.baseline.t_s) < 1e-3);
      if (w) ch.baseline = w;
    }
  }

  /** set_baseline's reply: the baselines just taken. */
  baselinesTaken(dev, baselines) {
    for (const b of baselines || []) {
      const site = dev.sites.get(b.site);
      if (!site) continue;
      const ch = site.channel(b.channel);
      ch.baselineUv = b.amplitude_uv;
      ch.baselineLatencyMs = b.latency_ms;
      ch.baseline = ch.waves.find((w) => w.t_s <= b.t_s + 1e-3) || ch.waves[0] || null;
    }
  }

}

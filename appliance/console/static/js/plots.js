// Drawing: stacked averaged traces (plain canvas: offsets, overlay and labelled markers are
// simpler by hand than as x-y series), trends (uPlot), and overview sparklines (canvas).

import uPlot from "../vendor/uPlot.esm.js";
import { LIMITS } from "./model.js";

export const COLOURS = {
  trace: "#e6e6e6", old: "#7c8590", baseline: "#c58cff", marker: "#9fe870", grid: "#2b323b",
  text: "#b8c0c8", high: "#ff3b30", medium: "#ffd60a", technical: "#32d7f0", note: "#f2f2f2",
};
const SERIES = ["#e6e6e6", "#ff9f43", "#54a0ff", "#1dd1a1", "#ff6bcb", "#c8d6e5"];

/** Fit a canvas's bitmap to its CSS size (sharp on high-DPI screens); returns its 2D context. */
function fitCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, canvas.clientWidth, canvas.clientHeight);
  return g;
}

/** One channel: its last averages stacked, newest on top, the baseline over the newest. */
export function drawTraces(canvas, ch) {
  const g = fitCanvas(canvas);
  const W = canvas.clientWidth, H = canvas.clientHeight;
  const waves = ch.waves;
  if (!waves.length) {
    g.fillStyle = COLOURS.text;
    g.fillText("waiting for the first average", 8, 16);
    return;
  }
  const newest = waves[0];
  const span = (w) => [w.t0_ms, w.t0_ms + (1000 * (w.uv.length - 1)) / w.rate];
  const [x0, x1] = span(newest);
  const left = 4, right = W - 4, bottom = H - 14;
  const X = (ms) => left + ((ms - x0) / (x1 - x0)) * (right - left);
  let peak = 1e-6;
  for (const w of [newest, ch.baseline].filter(Boolean)) {
    for (const v of w.uv) peak = Math.max(peak, Math.abs(v));
  }
  const n = LIMITS.waves;
  const slot = bottom / (n + 0.5);
  const gain = (slot * 1.2) / peak; // neighbours may touch: the newest is the one read
  // time grid every 10 ms (5 ms for short windows)
  const step = x1 - x0 > 60 ? 10 : 5;
  g.strokeStyle = COLOURS.grid; g.fillStyle = COLOURS.text; g.lineWidth = 1;
  g.font = "10px system-ui, sans-serif";
  for (let t = Math.ceil(x0 / step) * step; t <= x1; t += step) {
    g.beginPath(); g.moveTo(X(t), 0); g.lineTo(X(t), bottom); g.stroke();
    g.fillText(`${t}`, X(t) + 2, H - 3);
  }
  const line = (w, y0, colour, width) => {
    g.strokeStyle = colour; g.lineWidth = width; g.beginPath();
    for (let i = 0; i < w.uv.length; i++) {
      const x = X(w.t0_ms + (1000 * i) / w.rate), y = y0 - w.uv[i] * gain;
      if (i) g.lineTo(x, y); else g.moveTo(x, y);
    }
    g.stroke();
  };
  for (let i = waves.length - 1; i >= 0; i--) {
    line(waves[i], slot * (i + 0.75), i ? COLOURS.old : COLOURS.trace, i ? 1 : 1.6);
  }
  if (ch.baseline) line(ch.baseline, slot * 0.75, COLOURS.baseline, 1.2);
  // component markers of the newest average: latency and amplitude
  const comps = (ch.last && ch.last.components) || {};
  g.font = "11px system-ui, sans-serif";
  let row = 0;
  for (const [name, c] of Object.entries(comps)) {
    if (c.latency_ms === null || c.latency_ms === undefined) continue;
    const i = Math.round(((c.latency_ms - newest.t0_ms) * newest.rate) / 1000);
    const y = slot * 0.75 - (newest.uv[Math.max(0, Math.min(newest.uv.length - 1, i))] || 0) * gain;
    const x = X(c.latency_ms);
    g.strokeStyle = COLOURS.marker; g.lineWidth = 1.5;
    g.beginPath(); g.moveTo(x, y - 7); g.lineTo(x, y + 7); g.stroke();
    g.fillStyle = COLOURS.marker;
    const amp = c.amplitude_uv === null ? "" : ` ${c.amplitude_uv.toFixed(2)} µV`;
    g.fillText(`${name} ${c.latency_ms.toFixed(1)} ms${amp}`, Math.min(x + 3, W - 130),
      Math.max(11, y - 9 - 12 * row++));
  }
}

function alignedData(site, key) {
  const chans = [...site.channels.values()];
  const ts = [...new Set(chans.flatMap((c) => c.trend.map((p) => p.t)))].sort((a, b) => a - b);
  const index = new Map(ts.map((t, i) => [t, i]));
  const cols = chans.map((c) => {
    const col = new Array(ts.length).fill(null);
    for (const p of c.trend) col[index.get(p.t)] = p[key];
    return col;
  });
  return [ts, ...cols];
}

/** A vertical mark per alarm event or annotation, a dashed criterion line per channel. */
function marksPlugin(getMarks, getLimits) {
  return {
    hooks: {
      draw: [(u) => {
        const g = u.ctx, { left, top, width, height } = u.bbox;
        g.save();
        g.lineWidth = 1.5 * devicePixelRatio;
        for (const m of getMarks()) {
          const x = u.valToPos(m.t, "x", true);
          if (x < left || x > left + width) continue;
          g.strokeStyle = m.colour; g.setLineDash([]);
          g.beginPath(); g.moveTo(x, top); g.lineTo(x, top + height); g.stroke();
        }
        g.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
        for (const l of getLimits()) {
          const y = u.valToPos(l.y, "y", true);
          if (y < top || y > top + height) continue;
          g.strokeStyle = l.colour;
          g.beginPath(); g.moveTo(left, y); g.lineTo(left + width, y); g.stroke();
        }
        g.restore();
      }],
    },
  };
}

export function eventColour(e) {
  if (e.event === "raised" || e.event === "escalated") {
    return e.kind === "technical" ? COLOURS.technical : e.priority === "high" ? COLOURS.high
      : COLOURS.medium;
  }
  return COLOURS.note; // cleared, acknowledged, audio pause, annotations
}

/** Amplitude or latency trend of one site; call update() after new data. */
export class TrendChart {
  constructor(el, site, dev, key, label) {
    this.el = el; this.site = site; this.dev = dev; this.key = key; this.label = label;
    this.nch = -1;
  }
  limits() {
    const out = [];
    const cr = this.site.criteria;
    [...this.site.channels.values()].forEach((c, i) => {
      const colour = SERIES[i % SERIES.length];
      if (this.key === "amp" && c.baselineUv && cr.amplitude_ratio_min) {
        out.push({ y: c.baselineUv * cr.amplitude_ratio_min, colour });
      }
      if (this.key === "lat" && c.baselineLatencyMs) {
        if (cr.latency_ratio_max) out.push({ y: c.baselineLatencyMs * cr.latency_ratio_max, colour });
        if (cr.latency_shift_ms) out.push({ y: c.baselineLatencyMs + cr.latency_shift_ms, colour });
      }
    });
    return out;
  }
  marks() {
    return this.dev.events.filter((e) => !e.site || e.site === this.site.name)
      .map((e) => ({ t: e.t, colour: eventColour(e) }));
  }
  update() {
    const chans = [...this.site.channels.values()];
    const data = alignedData(this.site, this.key);
    const width = Math.max(200, this.el.clientWidth);
    if (!this.plot || chans.length !== this.nch) {
      if (this.plot) this.plot.destroy();
      this.nch = chans.length;
      this.plot = new uPlot({
        width, height: 140, legend: { show: true, live: false }, cursor: { show: false },
        scales: { x: { time: true } },
        axes: [{ stroke: COLOURS.text, grid: { stroke: COLOURS.grid } },
          { stroke: COLOURS.text, grid: { stroke: COLOURS.grid }, label: this.label, size: 48 }],
        series: [{}, ...chans.map((c, i) => ({ label: c.name, stroke: SERIES[i % SERIES.length],
          width: 1.5, spanGaps: true, points: { show: false } }))],
        plugins: [marksPlugin(() => this.marks(), () => this.limits())],
      }, data, this.el);
      return;
    }
    if (this.plot.width !== width) this.plot.setSize({ width, height: 140 });
    this.plot.setData(data);
  }
}

/** Overview: the last trend values of one channel as a tiny line. */
export function drawSpark(canvas, points, key) {
  const g = fitCanvas(canvas);
  const W = canvas.clientWidth, H = canvas.clientHeight;
  const pts = points.slice(-LIMITS.spark).filter((p) => p[key] !== null && p[key] !== undefined);
  if (pts.length < 2) return;
  let lo = Infinity, hi = -Infinity;
  for (const p of pts) { lo = Math.min(lo, p[key]); hi = Math.max(hi, p[key]); }
  if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
  lo = Math.min(lo, 0);
  g.strokeStyle = COLOURS.trace; g.lineWidth = 1.2; g.beginPath();
  pts.forEach((p, i) => {
    const x = (i / (pts.length - 1)) * (W - 2) + 1, y = H - 1 - ((p[key] - lo) / (hi - lo)) * (H - 2);
    if (i) g.lineTo(x, y); else g.moveTo(x, y);
  });
  g.stroke();
}

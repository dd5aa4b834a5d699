"""One stimulation site's pipeline: stimulus edges -> sweeps -> filter -> rejection -> averager
-> quality -> peaks -> `TrendPoint`s and `Waveform`s. Vectorised over sweeps and channels."""

from __future__ import annotations

import math

import numpy as np

from appliance.analysis.baseline import Baseline
from appliance.analysis.outputs import ComponentValue, FitValue, TrendPoint, Waveform
from appliance.analysis.plan import SitePlan, plan_site, sweep_decimation  # noqa: F401
from appliance.dsp import averagers, peaks, quality
from appliance.dsp.epochs import Epocher, times_ms
from appliance.dsp.events import EdgeDetector
from appliance.dsp.filters import (
    StreamingFilter,
    bandpass_sos,
    zero_phase_sweeps,
)
from appliance.dsp.reject import Rejector
from appliance.dsp.template import Projections, sigma_per_sweep
from appliance.modalities.base import Measure

MAX_WAITING = 64  # raw sweeps held back for one vectorised filter call (bounds memory)
# the recent template fit below this: the response is gone (a cortical loss leaves the
# unchanged far-fields, ~0.1 of the template, on the scalp channel)
LOSS_RATIO = 0.3
JUDGE_MAX_WINDOWS = 4  # the template: an average of up to this many moving windows of sweeps
# an automatic baseline waits for a template this precise, or this many windows of sweeps
TEMPLATE_SE = 0.07
AUTO_TEMPLATE_WINDOWS = 2
MEP_ONSET_UV = 20.0  # tcMEP onset threshold floor (µV); 5 x pre-stimulus RMS when larger


class SitePipeline:
    def __init__(self, plan: SitePlan, fs_hz: float) -> None:
        self.plan = plan
        self.fs_hz = float(fs_hz)
        self.name = plan.site.name
        n_ch = len(plan.channel_index)
        self.idx = np.asarray(plan.channel_index)
        self.zero = plan.filter.phase == "zero"
        lo, hi = plan.filter.band_hz
        self.q = sweep_decimation(fs_hz, hi, self.zero)
        self.fs_sweep_hz = fs_hz / self.q
        fs_d = self.fs_sweep_hz
        self.pre = int(round(plan.pre_ms * fs_d / 1e3))
        self.post = int(round(plan.post_ms * fs_d / 1e3))
        self.t_ms = times_ms(self.pre, self.post, fs_d)
        self.sos = bandpass_sos(lo, hi, fs_d, plan.filter.order)
        # The mains notch runs on the continuous stream in the Monitor (state across blocks,
        # shared by the sites), not per sweep: a Q=30 notch rings for ~0.2 s, longer than any
        # sweep's padding. Away from the mains line its phase is ~0: it does not move peaks.
        # zero phase: real data on both sides, two periods of the low edge, so the edge
        # transients have died out inside the window (one period visibly lowers BAEP wave I)
        self.pad = int(round(2.0 / lo * fs_d)) if self.zero else 0
        self.stream = None if self.zero else StreamingFilter(self.sos, n_ch, start="steady")
        self.detector = EdgeDetector(1 << plan.site.trigger_bit)
        self.epocher = Epocher(self.pre, self.post, n_ch + 1, self.pad)  # + saturation row
        amp = plan.reject_uv if math.isfinite(plan.reject_uv) else np.inf
        self.rejector = Rejector(fs_d, amplitude_uv=amp, mode="absolute")
        n_t = self.pre + self.post
        self.single = plan.n_sweeps == 1
        self.averager = (averagers.CumulativeAverager(n_ch, n_t) if plan.cumulative
                         else averagers.MovingAverager(plan.n_sweeps, n_ch, n_t))
        self.measures = [plan.modality.measure_for(r) for r in plan.roles]
        self._proj: dict[int, tuple[Baseline, Projections]] = {}  # channel -> template fit
        # SSEP: a longer moving average whose mean becomes the baseline's template: the
        # template's own noise is a gain error of every later ratio, so it should be small
        self.template_avg = (averagers.MovingAverager(JUDGE_MAX_WINDOWS * plan.n_sweeps, n_ch,
                                                      n_t) if plan.judge_sweeps else None)
        self.accepted = 0
        # sweeps rejected in a row since the last accepted one, and why (Monitor reports a run)
        self.rejected_run = 0
        self.rejected_run_reasons: dict[str, int] = {}
        self._waiting: list[np.ndarray] = []
        self._waiting_ev: list[np.ndarray] = []  # their stimulus samples at the sweep rate
        self.accepted_stim_s = np.empty(0)  # stimulus times (s) of the last accepted sweeps
        self._n_waiting = 0
        self.since_update = 0
        self.last_update_t_s = 0.0
        self.last_stim_sample: int | None = None
        self.n_stimuli = 0
        self._expected: int | None = None
        self._filter_json = {**plan.filter.to_json(),
                             "notch_phase": "causal" if plan.filter.notch_hz else None,
                             "sweep_rate_hz": fs_d}

    # -- per block --------------------------------------------------------------------------
    def push(self, data_uv: np.ndarray, saturated: np.ndarray, first_sample: int,
             trigger: np.ndarray, trigger_first: int, t_s: float,
             interval_s: float) -> np.ndarray:
        """Cut this batch's complete sweeps. data_uv / saturated (every channel, as float) are
        at the sweep rate fs/q from output sample `first_sample`; trigger is at the full rate
        from `trigger_first`. Sweeps wait, unfiltered, until an update could be due (or
        `MAX_WAITING` of them are waiting); then they are filtered, checked and averaged in
        one vectorised call. Returns the sweeps accepted in this call (k, n_ch, n_times),
        already in the averager; tcMEP sweeps are never held back."""
        events = self.detector.push(trigger, trigger_first)
        if len(events):
            self.last_stim_sample = int(events[-1])
            self.n_stimuli += len(events)
        x = data_uv[self.idx]
        gap = self._expected is not None and first_sample != self._expected
        if self.stream is not None:
            if gap:
                self.stream.reset()
            x = self.stream.process(x)
        self._expected = first_sample + x.shape[1]
        sat = saturated[self.idx].max(axis=0, keepdims=True)
        # the stimulus to the nearest sweep-rate sample (at q = 4, 16 kSPS: +-0.125 ms, SD
        # 0.07 ms, unbiased: far below the width of any SSEP peak)
        ev = (events + self.q // 2) // self.q if self.q > 1 else events
        sweeps, ev_cut = self.epocher.push(np.concatenate([x, sat]), first_sample, ev)
        if len(sweeps):
            self._waiting.append(sweeps)
            self._waiting_ev.append(ev_cut)
            self._n_waiting += len(sweeps)
        if self._n_waiting and (self.single or self._n_waiting >= MAX_WAITING
                                or self.since_update + self._n_waiting >= self.plan.update_sweeps
                                or t_s - self.last_update_t_s >= interval_s):
            return self._drain()
        return np.empty((0, len(self.idx), self.pre + self.post))

    def drain(self) -> np.ndarray:
        """Check and average every sweep still waiting (end of a recording)."""
        if not self._n_waiting:
            return np.empty((0, len(self.idx), self.pre + self.post))
        return self._drain()

    def _drain(self) -> np.ndarray:
        sweeps = (self._waiting[0] if len(self._waiting) == 1
                  else np.concatenate(self._waiting))
        ev = np.concatenate(self._waiting_ev)
        self._waiting, self._waiting_ev, self._n_waiting = [], [], 0
        sat_sweeps = sweeps[:, -1:, self.pad:sweeps.shape[-1] - self.pad] > 0
        y = sweeps[:, :-1]
        y = zero_phase_sweeps(y, self.sos, self.pad) if self.zero else y
        if self.pre > 0:
            y = y - y[..., :self.pre].mean(axis=-1, keepdims=True)
        keep, reasons = self.rejector.check(y, sat_sweeps)
        if keep.any():
            self.rejected_run, self.rejected_run_reasons = 0, {}
        else:
            self.rejected_run += len(keep)
            for r, n in reasons.items():
                self.rejected_run_reasons[r] = self.rejected_run_reasons.get(r, 0) + n
        y = y[keep]
        self.accepted_stim_s = ev[keep] / self.fs_sweep_hz
        if not self.single:
            self.averager.add(y)
        if self.template_avg is not None:
            self.template_avg.add(y)
        for c, (_, proj) in self._proj.items():
            proj.add(y[:, c])
        self.accepted += len(y)
        self.since_update += len(y)
        return y

    def due(self, t_s: float, interval_s: float) -> bool:
        if self.since_update == 0:
            return False
        return (self.since_update >= self.plan.update_sweeps
                or t_s - self.last_update_t_s >= interval_s)

    # -- measurement ------------------------------------------------------------------------
    def measure_average(self, t_s: float) -> tuple[list[TrendPoint], list[Waveform], dict]:
        """Trend points and waveforms of the current average; also the split-half measures."""
        self.since_update = 0
        self.last_update_t_s = t_s
        avg = self.averager.average
        odd, even = self.averager.halves()
        n = int(self.averager.n_sweeps)
        q = self._quality(self.averager)
        points = self._points(self.averager, q, t_s)
        waves, halves = [], {}
        for c, ch in enumerate(self.plan.site.channels):
            waves.append(self.waveform(t_s, ch, n, avg[c]))
            h = []
            for half in (odd[c], even[c]):  # each half carries sqrt(2) x the noise
                hc, hp = self._components(half, self.measures[c],
                                          q.residual_noise_uv[c] * math.sqrt(2.0))
                prim = hc[self.measures[c].primary]
                h.append({"amplitude_uv": hp, "latency_ms": prim.latency_ms,
                          "found": prim.found})
            halves[ch] = (h[0], h[1])
        return points, waves, halves

    def _points(self, avg_obj, q: quality.Quality, t_s: float) -> list[TrendPoint]:
        avg, n = avg_obj.average, int(avg_obj.n_sweeps)
        points = []
        for c, ch in enumerate(self.plan.site.channels):
            comps, p2p = self._components(avg[c], self.measures[c], q.residual_noise_uv[c])
            points.append(self._point(t_s, c, ch, n, comps, p2p, q, c))
        return points

    def longer_points(self, t_s: float) -> list[TrendPoint] | None:
        """Trend points of the template average (the longer one, up to JUDGE_MAX_WINDOWS
        windows), measured as the moving average's are, once it holds AUTO_TEMPLATE_WINDOWS
        windows (so its template is ready); else None. A channel the moving average cannot
        yet show reproducible may take its automatic baseline from it (BaselineStore)."""
        t = self.template_avg
        if t is None or t.n_sweeps < AUTO_TEMPLATE_WINDOWS * self.plan.n_sweeps:
            return None
        return self._points(t, self._quality(t), t_s)

    def template_ready(self, c: int) -> bool:
        """May channel c's automatic baseline be taken now? Every later ratio is relative to
        the template, so the template's own noise is a gain error of the whole case (on
        family B the ~190 sweeps an early baseline had read a 40 % channel 0.09 high). So it
        waits until the template's amplitude SE (its sweeps' spread on it / sqrt(n)) is at
        most TEMPLATE_SE, or AUTO_TEMPLATE_WINDOWS windows: a quiet patient at once, the
        issue's lower noise after ~2 min. A baseline on command takes what there is."""
        t = self.template_avg
        if t is None or t.n_sweeps >= AUTO_TEMPLATE_WINDOWS * self.plan.n_sweeps:
            return True
        sel = self._judged_window(c)
        b = t.average[c][sel]
        energy = float(b @ b)
        if t.n_sweeps < 8 or not energy > 0:
            return False
        ratios = t.latest(t.n_sweeps)[:, c][:, sel] @ b / energy
        return sigma_per_sweep(ratios) / math.sqrt(len(ratios)) <= TEMPLATE_SE

    def template(self, c: int) -> tuple[np.ndarray, float, int] | None:
        """Channel c's template now: (average, its residual noise µV, sweeps) or None."""
        t = self.template_avg
        if t is None or t.n_sweeps < 2:
            return None
        noise = quality.residual_noise_uv(t.plus_minus, self._response_window())[c]
        return t.average[c].copy(), float(noise), int(t.n_sweeps)

    def refined_template(self, c: int, base: Baseline) -> tuple[np.ndarray, float, int] | None:
        """Channel c's template grown past `base`'s, while the template averager still holds
        every sweep since `base`'s (up to JUDGE_MAX_WINDOWS windows); else None."""
        t = self.template_avg
        if (t is None or not base.template_uv or base.template_sweeps >= t.n
                or t.n_sweeps <= base.template_sweeps):
            return None
        return self.template(c)

    def _judged_window(self, c: int) -> slice:
        """Channel c's components' window: what the template fit judges."""
        comps = self.measures[c].components
        sel = np.flatnonzero((self.t_ms >= min(k.window_ms[0] for k in comps))
                             & (self.t_ms <= max(k.window_ms[1] for k in comps)))
        return slice(int(sel[0]), int(sel[-1]) + 1)

    def _response_window(self) -> slice:
        lo = min(c.window_ms[0] for m in self.plan.modality.measures.values()
                 for c in m.components)
        sel = np.flatnonzero(self.t_ms >= lo)
        return slice(int(sel[0]), int(sel[-1]) + 1)

    def fit(self, c: int, base: Baseline) -> FitValue | None:
        """Channel c's sweeps since its baseline fitted with the baseline average over the
        components' window, shifted up to 20 % of the baseline latency (>= 1 ms) either way
        (appliance/dsp/template.py). None without a fit (no template, a template from another
        window, too few sweeps)."""
        n = self.plan.judge_sweeps
        if not n or len(base.template_uv) != len(self.t_ms) or not base.amplitude_uv > 0:
            return None
        held = self._proj.get(c)
        if held is None or held[0] is not base:  # a new baseline: project the window anew
            comps = self.measures[c].components
            sel = self._judged_window(c)
            b = np.asarray(base.template_uv)[sel]
            noise_energy = (base.template_noise_uv or 0.0) ** 2 * len(b)
            # a baseline whose primary peak was not found (noise hid it) still has a template
            # to fit when that holds the response (energy 4x its noise's: amplitude SNR 2;
            # the fit's interval carries the template's error); the shift range then centres
            # on the component's window
            if not base.found and not float(b @ b) >= 4.0 * noise_energy > 0:
                return None
            prim = next(k for k in comps if k.name == self.measures[c].primary)
            lat0 = (base.latency_ms if base.found and math.isfinite(base.latency_ms)
                    else 0.5 * (prim.window_ms[0] + prim.window_ms[1]))
            shift = int(round(max(1.0, 0.2 * lat0) * self.fs_sweep_hz / 1e3))
            proj = Projections(np.asarray(base.template_uv), sel,
                               shift, noise_energy,
                               len(self.t_ms), self.template_avg.n)
            # the template's own sweeps (their rows read a little high: the template holds
            # their noise; the amplitude window leaves them as new sweeps come)
            proj.add(self.template_avg.latest(base.template_sweeps)[:, c])
            held = self._proj[c] = (base, proj)
        f = held[1].fit(1e3 / self.fs_sweep_hz, self.plan.modality.judge_se, n, n)
        if f is None:
            return None
        a0, l0 = base.amplitude_uv, base.latency_ms
        # gone over the recent third (4 SE below baseline there): judged from that, so a
        # loss is raised in a third of the amplitude window's time
        lost = bool(f.recent_ratio < min(LOSS_RATIO, f.ratio))
        # a lost response has no latency: what the latency window still holds is a residue
        # of the old response (or noise), so it is not "found" and not judged
        found = f.latency_found and not lost
        # each half of the latency sweeps has sqrt(2) x their noise: z / sqrt(2)
        half_found = found and f.latency_z / math.sqrt(2.0) >= 3.0
        # a half is a replication that shows a drop on its own only when it is significantly
        # low: its amplitude here is its upper bound (+2 SE of a half); a loss passes at once,
        # a drop near the criterion waits for consecutive updates
        up = 2.0 * f.se * math.sqrt(2.0)
        halves = tuple({"amplitude_uv": (r + up) * a0,
                        "latency_ms": l0 + d if half_found else math.nan,
                        "found": bool(half_found)}
                       for r, d in zip(f.halves_ratio, f.halves_shift_ms, strict=True))
        # the template's amplitude is itself an average of base.template_sweeps sweeps
        ci = f.ci95(f.sigma_a / math.sqrt(max(1, base.template_sweeps)))
        ratio, n_judged = (f.recent_ratio, f.recent_sweeps) if lost else (f.ratio, f.n_sweeps)
        se = f.se
        if lost:  # the interval of what is judged: the recent sweeps'
            se = f.se * math.sqrt(f.n_sweeps / max(1, f.recent_sweeps))
            half = 1.96 * math.hypot(se, f.sigma_a / math.sqrt(max(1, base.template_sweeps)))
            ci = (ratio - half, ratio + half)
        return FitValue(ratio, ci, ratio * a0, l0 + f.shift_ms if found else math.nan,
                        f.shift_ms, found, n_judged, f.latency_sweeps, halves,
                        f.recent_ratio, f.recent_sweeps, lost, f.recent_ratio * a0, se,
                        f.n_sweeps >= held[1].capacity, held[1].count, f.ratio, f.n_sweeps,
                        f.latency_se_ms)

    def measure_single(self, sweep: np.ndarray, t_s: float) -> tuple[list[TrendPoint],
                                                                     list[Waveform]]:
        """tcMEP: one sweep (n_ch, n_times), never averaged."""
        self.since_update = 0
        self.last_update_t_s = t_s
        points, waves = [], []
        nan = np.full(len(self.idx), np.nan)
        pre_rms = (np.sqrt(np.mean(sweep[:, :self.pre] ** 2, axis=-1)) if self.pre > 1
                   else np.zeros(len(self.idx)))
        q = quality.Quality(pre_rms, nan, nan, nan)
        for c, ch in enumerate(self.plan.site.channels):
            comps, p2p = self._components(sweep[c], self.measures[c], pre_rms[c])
            points.append(self._point(t_s, c, ch, 1, comps, p2p, q, c))
            waves.append(self.waveform(t_s, ch, 1, sweep[c]))
        return points, waves

    def _quality(self, avg_obj) -> quality.Quality:
        """Quality per channel over the response window: from the earliest component of the
        modality (after the stimulus artefact) to the end of the sweep. A window this long
        gives Fsp enough degrees of freedom for its 3.1 threshold to mean ~99 %; a window
        around one peak would let slow EEG alone pass it."""
        win = self._response_window()
        q = quality.measure(avg_obj, win)
        # Fsp with the single-point variance averaged over the window's points rather than
        # taken at one point: the same statistic, with a far steadier denominator.
        nv = np.nanmean(avg_obj.noise_var[:, win], axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            fsp = np.where(nv > 0, avg_obj.average[:, win].var(axis=-1, ddof=1) / nv, np.nan)
        return quality.Quality(q.residual_noise_uv, fsp, q.snr_db, q.split_half_r)

    def _components(self, trace: np.ndarray, m: Measure,
                    noise_uv: float) -> tuple[dict[str, ComponentValue], float]:
        if m.onset:
            return self._mep(trace, m, noise_uv)
        comps = {}
        for spec in m.components:
            pk = peaks.find_peak(trace, self.t_ms, spec.window_ms, spec.polarity, noise_uv,
                                 spec.name, fit_ms=spec.fit_ms)
            comps[spec.name] = ComponentValue(pk.latency_ms, pk.amplitude_uv, pk.confidence,
                                              pk.found)
        # The judged amplitude must not jump when noise hides one peak of a pair: a component
        # not found contributes the trace's extreme of its polarity in its window instead
        # (noise level when the response is really gone).
        level = {spec.name: (comps[spec.name].amplitude_uv if comps[spec.name].found
                             else self._extreme(trace, spec)) for spec in m.components}
        if m.pair:
            p2p = abs(level[m.pair[0]] - level[m.pair[1]])
        else:
            spec = next(c for c in m.components if c.name == m.primary)
            p2p = max(0.0, spec.polarity * level[m.primary])
        return comps, float(p2p)

    def _extreme(self, trace: np.ndarray, spec) -> float:
        sel = (self.t_ms >= spec.window_ms[0]) & (self.t_ms <= spec.window_ms[1])
        if not sel.any():
            return 0.0
        return float(spec.polarity * np.max(spec.polarity * trace[sel]))

    def _mep(self, trace: np.ndarray, m: Measure,
             pre_rms_uv: float) -> tuple[dict[str, ComponentValue], float]:
        w = m.components[0].window_ms
        thr = max(MEP_ONSET_UV, 5.0 * float(pre_rms_uv))
        onset = peaks.onset_latency_ms(trace, self.t_ms, w, thr)
        p2p = peaks.peak_to_peak(trace, self.t_ms, w)
        z = p2p / thr if thr > 0 else 0.0
        found = bool(np.isfinite(onset) and z >= 2.0)
        conf = float(z * z / (z * z + 4.0)) if np.isfinite(z) else 0.0
        area = peaks.area(trace, self.t_ms, w)
        comp = ComponentValue(onset, p2p, conf, found, area if found else None)
        return {m.primary: comp}, float(p2p) if found else 0.0

    def _point(self, t_s: float, c: int, ch: str, n: int, comps: dict, p2p: float,
               q: quality.Quality, i: int) -> TrendPoint:
        return TrendPoint(
            t_s=t_s, site=self.name, modality=self.plan.modality.name, channel=ch,
            role=self.plan.roles[c], n_sweeps=n, components=comps,
            primary=self.measures[c].primary, peak_to_peak_uv=p2p,
            residual_noise_uv=float(q.residual_noise_uv[i]), fsp=float(q.fsp[i]),
            snr_db=float(q.snr_db[i]), split_half_r=float(q.split_half_r[i]),
            filter=self._filter_json, rejected=dict(self.rejector.counts),
        )

    def waveform(self, t_s: float, ch: str, n: int, trace: np.ndarray) -> Waveform:
        return Waveform(t_s, self.name, self.plan.modality.name, ch, n, self.fs_sweep_hz,
                        float(self.t_ms[0]), trace.copy())

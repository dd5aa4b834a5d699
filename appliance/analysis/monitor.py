"""The monitor: SampleBlocks in; trends, waveforms, baselines and alarm conditions out.

`Monitor(cfg).push(block) -> list[Output]`: every Output has `.to_json()` (the shared shapes:
trend, waveform, condition; plus "baseline" when one is captured). The daemon, the demo and
`ionm replay` all run this same class. No I/O, no threads, no waiting.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from appliance.analysis.baseline import Baseline, BaselineStore
from appliance.analysis.continuous import Continuous
from appliance.analysis.criteria import Criteria, SiteRules
from appliance.analysis.decimate import Decimator
from appliance.analysis.fast import FastSite, fast_enabled
from appliance.analysis.outputs import WAVE_KEYS, Waveform
from appliance.analysis.site import SitePipeline, plan_site
from appliance.conditions import Condition, Kind, Priority
from appliance.dsp.filters import StreamingFilter, notch_sos
from appliance.errors import CommandError
from appliance.frontend.block import SampleBlock

MIN_REJECTED_RUN = 20  # sweeps rejected in a row before a site is called blind


class Output(Protocol):
    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class BaselineEvent:
    """A baseline was captured (auto or on command) for one channel of a site."""

    baseline: Baseline
    # the average the baseline was measured on when no waveform line carries it (a baseline
    # from the longer template average); else the waveform line of the same update does
    waveform: Waveform | None = None

    def to_json(self) -> dict[str, Any]:
        """The baseline message. Its t_s is the baseline's own (the update whose average it
        was measured on), live, on command and in replay alike; the template stays inside."""
        d = self.baseline.to_json()
        d.pop("template_uv")
        if self.waveform is not None:
            w = self.waveform.to_json()
            d["waveform"] = {k: w[k] for k in WAVE_KEYS}
        return {"type": "baseline", "site": self.baseline.site, **d}


# the template stops growing once the fit strays this many standard errors from the baseline
GROW_STOP_SE = 2.5


def _changing(fit) -> bool:
    """A sign of change in this update's fit: its amplitude, or that of its recent third (a
    drop shows there in half the time), GROW_STOP_SE standard errors from the baseline."""
    if fit is None:
        return False
    se = (fit.ci95[1] - fit.ci95[0]) / (2 * 1.96)
    se_recent = se * math.sqrt(fit.n_sweeps / max(1, fit.recent_sweeps))
    return bool(fit.lost or abs(fit.ratio - 1.0) > GROW_STOP_SE * se
                or abs(fit.recent_ratio - 1.0) > GROW_STOP_SE * se_recent)


class Monitor:
    """Runs every configured site on the blocks it is given.

    channel_names / sample_rate_hz default to cfg.frontend's; `ionm replay` passes the
    recording's. Per block: a few shape checks and an append. Per batch (`batch_ms`): one
    decimation and one notch per sweep rate, then per site an edge scan and an epoch cut; the
    waiting sweeps are filtered, checked and averaged in one call when an update is due.
    Not thread-safe: one thread owns a Monitor.
    """

    def __init__(self, cfg, channel_names: tuple[str, ...] | None = None,
                 sample_rate_hz: float | None = None) -> None:
        self.cfg = cfg
        a = cfg.analysis
        self.settings = a
        self.channel_names = tuple(channel_names or cfg.frontend.channels)
        self.fs_hz = float(sample_rate_hz or cfg.frontend.sample_rate_hz)
        self.plans = [plan_site(s, a, self.channel_names, self.fs_hz, f"analysis.sites[{i}]")
                      for i, s in enumerate(a.sites)]
        self.sites = {p.site.name: SitePipeline(p, self.fs_hz) for p in self.plans}
        # sweep-by-sweep detector, on by default, beside the criteria (docs/analysis.md)
        self.fast = {p.site.name: FastSite(p, a, self.sites[p.site.name].t_ms,
                                           self.sites[p.site.name].fs_sweep_hz)
                     for p in self.plans if fast_enabled(p, a)}
        # EEG and EMG: continuous, every block (appliance/analysis/continuous.py)
        self.continuous = Continuous(a, self.channel_names, self.fs_hz)
        self.baselines = BaselineStore(a.baseline_policy, a.baseline_updates, a.fsp_min,
                                       a.split_half_r_min)
        self.criteria = Criteria(
            [SiteRules(p.site.name, p.modality.family, p.modality.name, p.judge, p.crit,
                       dict(zip(p.site.channels, p.roles, strict=True))) for p in self.plans],
            a.global_ratio, a.update_interval_s, a.split_half_r_min)
        self.sweeps_accepted = 0
        self.last_update_t_s: float | None = None
        self.bad_blocks = 0
        self.last_error = ""
        self._last_points: dict[str, list] = {}
        # (site, channel, baseline time) whose template has stopped growing (Monitor._refine)
        self._template_final: set[tuple[str, str, float]] = set()
        self._rejecting: set[str] = set()  # sites whose sweeps are all being rejected
        self._pending: list[SampleBlock] = []
        self._pending_n = 0
        self._batch_samples = max(1, int(round(a.batch_ms * self.fs_hz / 1e3)))
        self._expected: int | None = None
        n_ch = len(self.channel_names)
        # one decimator per sweep rate, one streaming notch per (rate, mains frequency), shared
        # by every site that uses them (a Q=30 notch rings for ~0.2 s: it must run on the
        # continuous stream, not on sweeps; away from the mains its phase is ~0)
        self._decimators = {sp.q: Decimator(sp.q, 2 * n_ch) for sp in self.sites.values()}
        self._notch_by_q: dict[int, set] = {q: set() for q in self._decimators}
        for sp in self.sites.values():
            self._notch_by_q[sp.q].add(sp.plan.filter.notch_hz)
        self._notches = {(q, f0): StreamingFilter(notch_sos(f0, self.fs_hz / q), n_ch, "steady")
                         for q, f0s in self._notch_by_q.items() for f0 in f0s if f0}

    # -- the stream -------------------------------------------------------------------------
    def push(self, block: SampleBlock) -> list[Output]:
        """Analyse one block. A malformed block is counted and reported as a technical
        condition; it never raises and never stops monitoring.

        Blocks are gathered into batches of `analysis.batch_ms` (default 250 ms) and analysed
        together: the per-call overhead of each stage is paid per batch, not per 16 ms block.
        That delays results by at most one batch, against updates every few seconds."""
        problem = self._check(block)
        if problem:
            self.bad_blocks += 1
            self.last_error = problem
            t_s = block.end_sample / self.fs_hz
            return [Condition("analysis.bad_block", Kind.TECHNICAL, Priority.LOW, True, t_s, "",
                              problem, {"bad_blocks": self.bad_blocks})]
        out: list[Output] = self.continuous.push(block) if self.continuous.enabled else []
        if self._pending and self._pending[-1].end_sample != block.first_sample:
            out += self._process(self._take_pending())  # a gap: never join across it
        self._pending.append(block)
        self._pending_n += block.n_samples
        if self._pending_n >= self._batch_samples:
            out += self._process(self._take_pending())
        return out

    def flush(self) -> list[Output]:
        """End of a recording: analyse the current batch, then report every site's sweeps
        averaged since its last update, though no update is due yet (else up to one update
        interval of data at the end would never be reported); free-running EMG still gathering
        to its 48 ms batch is analysed."""
        out = self.continuous.flush() if self.continuous.enabled else []
        out += self._process(self._take_pending()) if self._pending else []
        if self._expected is None:
            return out
        t_s = self._expected / self.fs_hz
        for name, sp in self.sites.items():
            out += self._site_update(name, sp, sp.drain(), t_s, final=True)
        return out

    def _take_pending(self) -> SampleBlock:
        blocks, self._pending, self._pending_n = self._pending, [], 0
        if len(blocks) == 1:
            return blocks[0]
        b0 = blocks[0]
        return SampleBlock(np.concatenate([b.data_uv for b in blocks], axis=1),
                           np.concatenate([b.trigger for b in blocks]),
                           np.concatenate([b.saturated for b in blocks], axis=1),
                           np.logical_or.reduce([b.lead_off for b in blocks]),
                           b0.first_sample, b0.sample_rate_hz, blocks[-1].t_monotonic_s)

    def _process(self, block: SampleBlock) -> list[Output]:
        t_s = block.end_sample / self.fs_hz
        gap = self._expected is not None and block.first_sample != self._expected
        self._expected = block.end_sample
        n_ch = block.n_channels
        # per sweep rate: decimate data and saturation (as 0/1) together, then notch
        streams: dict[tuple[int, float | None], tuple[np.ndarray, np.ndarray, int]] = {}
        for q, dec in self._decimators.items():
            if gap:
                dec.reset()
            both = np.concatenate([block.data_uv, block.saturated.astype(np.float64)])
            y, first = dec.process(both, block.first_sample)
            for f0 in self._notch_by_q[q]:
                data = y[:n_ch]
                if f0:
                    filt = self._notches[(q, f0)]
                    if gap:
                        filt.reset()
                    data = filt.process(data)
                streams[(q, f0)] = (data, y[n_ch:], first)
        out: list[Output] = []
        for name, sp in self.sites.items():
            data, sat, first = streams[(sp.q, sp.plan.filter.notch_hz)]
            sweeps = sp.push(data, sat, first, block.trigger, block.first_sample, t_s,
                             self.settings.update_interval_s)
            out += self._site_update(name, sp, sweeps, t_s)
            out += self._rejection_run(name, sp, t_s)
            if sp.plan.modality.family == "tcmep":
                continue  # MEP runs come when the team triggers them: no rate to miss
            last = None if sp.last_stim_sample is None else sp.last_stim_sample / self.fs_hz
            out += self.criteria.stimulus(name, t_s, last, sp.n_stimuli,
                                          1.0 / sp.plan.site.rate_hz,
                                          self.settings.stimulus_timeout_periods)
        return out

    def _site_update(self, name: str, sp: SitePipeline, sweeps: np.ndarray, t_s: float,
                     final: bool = False) -> list[Output]:
        """The outputs of a site's newly accepted sweeps: fast detector, and an update when
        one is due (`final`: whenever sweeps arrived since the last one)."""
        out: list[Output] = []
        self.sweeps_accepted += len(sweeps)
        if name in self.fast:
            out += self.fast[name].push(sweeps, sp.accepted_stim_s)
        if sp.single:
            for sweep in sweeps:  # tcMEP: every sweep is an update (a handful per hour)
                pts, waves = sp.measure_single(sweep, t_s)
                out += self._update(name, pts, waves, {}, t_s)
        elif sp.due(t_s, self.settings.update_interval_s) or (final and sp.since_update):
            pts, waves, halves = sp.measure_average(t_s)
            out += self._update(name, pts, waves, halves, t_s)
        return out

    def _rejection_run(self, name: str, sp: SitePipeline, t_s: float) -> list[Output]:
        """Every sweep rejected for an update's worth or more: the site is blind. Say so once,
        naming the reason and, for amplitude, `reject_uv` (e.g. BAEP responses larger than
        the default threshold), and once when sweeps are accepted again."""
        cid = f"{sp.plan.modality.family}.sweeps_rejected:{name}"
        run = sp.rejected_run
        if run >= max(sp.plan.update_sweeps, MIN_REJECTED_RUN) and name not in self._rejecting:
            self._rejecting.add(name)
            why = ", ".join(f"{r} {n}" for r, n in sp.rejected_run_reasons.items() if n)
            i = next(i for i, p in enumerate(self.plans) if p.site.name == name)
            msg = f"{name}: the last {run} sweeps were all rejected ({why})"
            if max(sp.rejected_run_reasons, key=sp.rejected_run_reasons.__getitem__) \
                    == "amplitude":
                msg += (f"; amplitude above reject_uv = {sp.plan.reject_uv:g} µV: raise "
                        f"analysis.sites[{i}].reject_uv if the responses are this large, "
                        "else check the electrodes")
            return [Condition(cid, Kind.TECHNICAL, Priority.MEDIUM, True, t_s, name, msg,
                              {"rejected_in_a_row": run, "reasons": dict(
                                  sp.rejected_run_reasons), "reject_uv": sp.plan.reject_uv})]
        if run == 0 and name in self._rejecting:
            self._rejecting.discard(name)
            return [Condition(cid, Kind.TECHNICAL, Priority.MEDIUM, False, t_s, name,
                              f"cleared: {name}: sweeps accepted again", {})]
        return []

    def _update(self, name: str, pts: list, waves: list, halves: dict,
                t_s: float) -> list[Output]:
        self.last_update_t_s = t_s
        sp = self.sites[name]
        captured = [BaselineEvent(b, self._longer_wave(sp, b, t_s)) for b in
                    self._templated(self.baselines.observe(
                        pts, sp.template_ready, lambda: sp.longer_points(t_s)))]
        pts = [self._fitted(sp, c, p, halves) for c, p in enumerate(pts)]
        self._refine(name, sp, pts)
        self._last_points[name] = pts
        out: list[Output] = [*pts, *waves, *captured]
        overdue = sp.accepted >= sp.plan.n_sweeps + (
            self.settings.baseline_updates + 1) * sp.plan.update_sweeps
        out += self.criteria.evaluate(name, pts, self.baselines, halves, t_s, overdue)
        return out

    @staticmethod
    def _longer_wave(sp: SitePipeline, b: Baseline, t_s: float) -> Waveform | None:
        """A baseline measured on the longer average: that average (its template, attached in
        the same update) as the waveform the retained baseline message shows."""
        if b.source != "longer_average" or not b.template_uv:
            return None
        return sp.waveform(t_s, b.channel, b.template_sweeps, np.asarray(b.template_uv))

    def _templated(self, captured: list[Baseline]) -> list[Baseline]:
        """Attach each new baseline's template (SSEP: the site's long average) in the store."""
        out = []
        for b in captured:
            sp = self.sites[b.site]
            t = sp.template(sp.plan.site.channels.index(b.channel))
            if t is not None:
                b = b.with_template(*t)
                self.baselines.replace(b)
            out.append(b)
        return out

    def _refine(self, name: str, sp: SitePipeline, pts: list) -> None:
        """An automatic baseline's template goes on taking in the sweeps that follow it, up to
        JUDGE_MAX_WINDOWS windows, for as long as every update since has shown no sign of a
        change; the first sign ends it for that baseline. The template's noise is a gain
        error of every later ratio (SE ~0.1 at the issue's lower noise after the two windows
        an automatic baseline waits at most, ~0.05 after four); waiting for four windows
        instead would leave the site unjudged for minutes, and a change meanwhile would go
        wholly into the baseline. Grown after this update's fit, it judges the next. A
        baseline on command keeps what it was given; a crash restores the first template."""
        fast = self.fast.get(name)
        for c, p in enumerate(pts):
            b = self.baselines.get(name, p.channel)
            key = (name, p.channel, b.t_s if b is not None else None)
            if b is None or b.reason != "auto" or key in self._template_final:
                continue
            t = sp.refined_template(c, b)
            if t is None:
                continue
            if ((fast is not None and fast.active) or not self.criteria.quiet(name, p.channel)
                    or _changing(p.fit)):
                self._template_final.add(key)
                continue
            self.baselines.replace(b.with_template(*t))

    def _fitted(self, sp: SitePipeline, c: int, p, halves: dict):
        """The point with its template fit against the channel's baseline (SSEP): what the
        criteria judge, in the trend too; its split halves replace the peak-picked ones."""
        base = self.baselines.get(sp.name, p.channel)
        fit = sp.fit(c, base) if base is not None else None
        if fit is None:
            return p
        halves[p.channel] = fit.halves
        return dataclasses.replace(p, fit=fit)

    def _check(self, block: SampleBlock) -> str:
        n_ch = len(self.channel_names)
        if block.data_uv.ndim != 2 or block.data_uv.shape[0] != n_ch:
            return (f"block data_uv has shape {block.data_uv.shape}, expected ({n_ch}, n) for "
                    f"channels {list(self.channel_names)}")
        n = block.data_uv.shape[1]
        if block.trigger.shape != (n,) or block.saturated.shape != block.data_uv.shape:
            return (f"block trigger {block.trigger.shape} / saturated {block.saturated.shape} "
                    f"do not match data_uv {block.data_uv.shape}")
        if abs(block.sample_rate_hz - self.fs_hz) > 1e-6 * self.fs_hz:
            return f"block sample rate {block.sample_rate_hz} Hz, monitor runs at {self.fs_hz} Hz"
        if not math.isfinite(float(block.data_uv.sum())):  # one pass; NaN/inf propagate
            return "block data_uv holds NaN or infinite values"
        return ""

    # -- baselines --------------------------------------------------------------------------
    def set_baseline(self, site: str | None = None) -> list[Baseline]:
        """Take the latest average of `site` (every site if None) as its baseline. `site` "eeg"
        or an EEG channel, or None, restarts the EEG baseline: the next `baseline_s` of epochs
        become it, for both sides (the criterion compares them). An EEG restart returns no
        Baseline; its eeg_trend outputs say `baseline: false` until the new one is taken."""
        eeg = self.continuous.eeg
        eeg_names = ("eeg", *eeg.names) if eeg is not None else ()
        if site is not None and site in eeg_names:
            eeg.set_baseline()
            return []
        names = list(self.sites) if site is None else [site]
        for n in names:
            if n not in self.sites:
                raise CommandError(f"set_baseline: unknown site {n!r}; sites: "
                                   f"{[*self.sites, *eeg_names]}")
        points = [p for n in names for p in self._last_points.get(n, [])]
        if site is None and eeg is not None:
            eeg.set_baseline()
            if not points:
                return []
        if not points:
            raise CommandError(f"set_baseline: no average yet for {site or 'any site'}; wait for "
                               "the first update.")
        return self._templated(self.baselines.capture(points, "command"))

    def baseline_state(self) -> dict[str, Any]:
        return self.baselines.state()

    def restore_baselines(self, state: dict[str, Any]) -> None:
        self.baselines.restore(state)

    # -- triggered EMG and free-running EMG commands ----------------------------------------
    def _temg(self):
        if self.continuous.temg is None:
            raise CommandError("triggered EMG is off: configure analysis.emg_triggered.channels")
        return self.continuous.temg

    def temg_search(self, target: str) -> dict[str, Any]:
        """Start a threshold search for a labelled target ("L4 left screw")."""
        return self._temg().start_search(target)

    def temg_intensity(self, ma: float, target: str | None = None) -> dict[str, Any]:
        """Set the stimulus intensity of the next pulses by hand (ends a search)."""
        return self._temg().set_intensity(ma, target)

    def active_condition_ids(self) -> list[str]:
        fast = [cid for f in self.fast.values() for cid in f.active]
        blind = [f"{self.sites[n].plan.modality.family}.sweeps_rejected:{n}"
                 for n in self._rejecting]
        return sorted([*self.criteria.active_ids(), *fast, *blind,
                       *self.continuous.active_ids()])

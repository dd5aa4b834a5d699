"""The report's plots (matplotlib, Agg: no display): baselines, stacked averages around alarms
and events, amplitude/latency trends with criteria, EEG/EMG trends. Each function returns a
Figure sized for an A4 page, or None when the case has nothing for it."""

from __future__ import annotations

import bisect
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: never a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from appliance.report.casedata import CaseData, Event, decode  # noqa: E402
from appliance.report.content import SitePlan, describe, duration, stored_at  # noqa: E402

A4_IN = (8.27, 11.69)
TRACE = "#202020"
AT_ALARM = "#c00000"
BASELINE = "#1f6fd0"  # the baseline in its own colour, everywhere
PRIORITY_COLOUR = {"high": "#d00000", "medium": "#e0a000", "low": "#00a0c0"}
EVENT_COLOUR = "#6a3d9a"
CONTINUOUS_ALARMS = ("eeg.", "emg.", "temg.")
TRACES_BEFORE, TRACES_AFTER = 5, 2  # averages stacked around a moment
ARTEFACT_MS = 3.0  # the stimulus artefact: left out of the scale, clipped in the drawing


def _span(t_ms: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(min, max) of a trace after the stimulus artefact (the whole trace if that is all)."""
    keep = y[(t_ms < -1.0) | (t_ms >= ARTEFACT_MS)]
    keep = keep if keep.size else y
    return float(np.min(keep)), float(np.max(keep))


class Index:
    """Look-ups the figures share: waveforms, trends and baselines per (site, channel)."""

    def __init__(self, case: CaseData) -> None:
        self.case = case
        self.waves = case.waveforms()
        self.trends = case.trends()
        self.bases = case.baselines()
        self._wave_t = {k: [e.case_s for e in v] for k, v in self.waves.items()}
        self._trend_key = {(k, round(e.case_s, 3)): e for k, v in self.trends.items() for e in v}

    def baseline_at(self, key: tuple[str, str], t: float) -> Event | None:
        """The baseline in force at case time t (the first one before any was taken: None)."""
        before = [b for b in self.bases.get(key, []) if b.case_s <= t + 1e-6]
        return before[-1] if before else None

    def wave_at(self, key: tuple[str, str], t: float) -> Event | None:
        """The average published at t, else the last one before it."""
        ts = self._wave_t.get(key, [])
        i = bisect.bisect_right(ts, t + 1e-6) - 1
        return self.waves[key][i] if i >= 0 else None

    def around(self, key: tuple[str, str], t: float) -> list[Event]:
        """Averages around t: up to TRACES_BEFORE up to t, TRACES_AFTER after; oldest first."""
        ts = self._wave_t.get(key, [])
        i = bisect.bisect_right(ts, t + 1e-6)
        return self.waves.get(key, [])[max(0, i - TRACES_BEFORE):i + TRACES_AFTER]

    def components(self, key: tuple[str, str], e: Event) -> dict[str, Any]:
        tr = self._trend_key.get((key, round(e.case_s, 3)))
        return (tr.data.get("components") or {}) if tr else {}


def _time_axis(case: CaseData) -> tuple[float, str]:
    """(divisor, label): seconds for short cases, minutes otherwise."""
    return (1.0, "case time (s)") if case.end_s < 300 else (60.0, "case time (min)")


def _marker(ax: Any, t_ms: np.ndarray, y: np.ndarray, offset: float,
            comps: dict[str, Any], colour: str, label: bool) -> None:
    for name, c in comps.items():
        lat, amp = c.get("latency_ms"), c.get("amplitude_uv")
        if lat is None or amp is None or not t_ms[0] <= lat <= t_ms[-1]:
            continue
        yy = float(np.interp(lat, t_ms, y)) + offset
        ax.plot([lat], [yy], marker="v", ms=4, color=colour, zorder=5)
        if label:
            ax.annotate(f"{name} {lat:.1f} ms\n{amp:+.2f} µV", (lat, yy), xytext=(3, 4),
                        textcoords="offset points", fontsize=5.5, color=colour)


def _stack(ax: Any, idx: Index, key: tuple[str, str], traces: list[Event],
           base: Event | None, at: Event | None) -> None:
    """Averages stacked newest on top, the baseline overlaid on each in its own colour."""
    decoded = [(e, decode(e.data)) for e in traces]
    decoded = [(e, w) for e, w in decoded if w is not None]
    base_wave = idx.wave_at(key, base.case_s) if base is not None else None
    bw = decode(base_wave.data) if base_wave is not None else None
    spans = [np.subtract(*_span(*w)[::-1]) for _, w in decoded] + (
        [np.subtract(*_span(*bw)[::-1])] if bw else [])
    step = 1.1 * max(spans, default=1.0) or 1.0
    for i, (e, (t_ms, y)) in enumerate(decoded):  # oldest at the bottom
        off = i * step
        if bw is not None:
            ax.plot(bw[0], np.clip(bw[1], -0.6 * step, 0.6 * step) + off, color=BASELINE,
                    lw=0.7, alpha=0.8)
        colour = AT_ALARM if at is not None and e.seq == at.seq else TRACE
        ax.plot(t_ms, np.clip(y, -0.6 * step, 0.6 * step) + off, color=colour, lw=0.9)
        newest = i == len(decoded) - 1
        _marker(ax, t_ms, y, off, idx.components(key, e), colour, newest or colour == AT_ALARM)
        ax.text(1.01, off, f"{duration(e.case_s)}  n={e.data.get('n_sweeps', '?')}",
                transform=ax.get_yaxis_transform(), fontsize=5.5, va="center", color=colour)
    if bw is not None and base_wave is not None and decoded:
        _marker(ax, bw[0], bw[1], 0.0, idx.components(key, base_wave), BASELINE, False)
    ax.axvline(0.0, color="#999999", lw=0.5)
    ax.set_yticks([])
    ax.tick_params(labelsize=6)
    ax.text(0.01, 0.98, key[1], transform=ax.transAxes, fontsize=7, va="top", weight="bold")
    bar = _scale_bar(step)
    ax.text(0.99, 0.02, f"step {bar:g} µV", transform=ax.transAxes, fontsize=5.5, ha="right")


def _scale_bar(step: float) -> float:
    return float(f"{step:.2g}")


def baseline_figure(case: CaseData, idx: Index, plans: list[SitePlan]) -> Figure | None:
    """Each site's baselines: every channel's baseline average with its components."""
    sites = [p for p in plans if any(idx.bases.get((p.name, c)) for c in p.channels)]
    if not sites:
        return None
    fig = plt.figure(figsize=A4_IN)
    fig.suptitle("Baselines", fontsize=12, x=0.08, ha="left")
    n_rows = max(len(p.channels) for p in sites)
    for col, p in enumerate(sites):
        for row, ch in enumerate(p.channels):
            ax = fig.add_subplot(n_rows, len(sites), row * len(sites) + col + 1)
            bases = idx.bases.get((p.name, ch), [])
            if not bases:
                ax.text(0.5, 0.5, f"{ch}: no baseline", ha="center", transform=ax.transAxes)
                ax.set_axis_off()
                continue
            b = bases[-1]
            w = idx.wave_at((p.name, ch), b.case_s)
            wave = decode(w.data) if w is not None else None
            if wave is None:
                ax.set_axis_off()
                continue
            ax.plot(wave[0], wave[1], color=BASELINE, lw=1.0)
            lo, hi = _span(*wave)
            ax.set_ylim(lo - 0.15 * (hi - lo), hi + 0.25 * (hi - lo))  # the artefact is cut
            _marker(ax, wave[0], wave[1], 0.0, idx.components((p.name, ch), w), BASELINE, True)
            ax.axvline(0.0, color="#999999", lw=0.5)
            ax.tick_params(labelsize=6)
            more = f", {len(bases)} taken" if len(bases) > 1 else ""
            ax.set_title(f"{p.name} — {ch} ({b.data.get('reason', '?')} at "
                         f"{duration(b.case_s)}, n={b.data.get('n_sweeps', '?')}{more})",
                         fontsize=7)
            ax.set_ylabel("µV", fontsize=6)
            if row == len(p.channels) - 1:
                ax.set_xlabel("ms after the stimulus", fontsize=6)
    fig.subplots_adjust(left=0.08, right=0.97, top=0.93, bottom=0.05, hspace=0.4, wspace=0.25)
    return fig


def moment_figure(case: CaseData, idx: Index, plans: list[SitePlan], m: Event) -> Figure:
    """Stacked averages around an alarm (its site) or an annotated event (every site)."""
    sites = [p for p in plans if p.name == m.site] if m.kind == "alarm_event" else plans
    sites = sites or plans
    fig = plt.figure(figsize=A4_IN)
    fig.suptitle(f"{duration(m.case_s)} ({stored_at(case, m, m.case_s)} UTC)  {describe(m)}",
                 fontsize=10, x=0.06, ha="left")
    if m.kind == "alarm_event":
        fig.text(0.06, 0.955, str(m.data.get("message", ""))[:160], fontsize=6.5)
    n_rows = max((len(p.channels) for p in sites), default=1)
    for col, p in enumerate(sites):
        for row, ch in enumerate(p.channels):
            key = (p.name, ch)
            ax = fig.add_subplot(n_rows, len(sites), row * len(sites) + col + 1)
            traces = idx.around(key, m.case_s)
            if not traces:
                ax.text(0.5, 0.5, f"{ch}: no averages", ha="center", transform=ax.transAxes)
                ax.set_axis_off()
                continue
            at = idx.wave_at(key, m.case_s)
            _stack(ax, idx, key, traces, idx.baseline_at(key, m.case_s), at)
            if row == 0:
                ax.set_title(p.name, fontsize=8)
            if row == len(p.channels) - 1:
                ax.set_xlabel("ms after the stimulus", fontsize=6)
    fig.text(0.06, 0.01, "black: averages, newest on top; red: the average at the moment; "
             "blue: the baseline in force, overlaid", fontsize=6)
    fig.subplots_adjust(left=0.04, right=0.86 if len(sites) == 1 else 0.9, top=0.92,
                        bottom=0.06, hspace=0.15, wspace=0.35)
    return fig


def _judged(e: Event, base: Event | None, primary: str) -> tuple[float, float]:
    """(amplitude µV, latency ms) as the criteria judge them: the template fit when there is
    one (ratio x the baseline amplitude), else the peak-to-peak and the primary's latency."""
    d = e.data
    fit = d.get("fit") or None
    comp = (d.get("components") or {}).get(primary) or {}
    lat = comp.get("latency_ms")
    amp = d.get("peak_to_peak_uv")
    if fit and base is not None and fit.get("amplitude_ratio") is not None:
        amp = float(fit["amplitude_ratio"]) * float(base.data.get("amplitude_uv") or np.nan)
        lat = fit.get("latency_ms", lat)
    return (np.nan if amp is None else float(amp)), (np.nan if lat is None else float(lat))


def _limits(base: Event, crit: dict[str, float], role: str) -> tuple[float, float]:
    amp0 = float(base.data.get("amplitude_uv") or np.nan)
    lat0 = float(base.data.get("latency_ms") or np.nan)
    ratio = crit.get("peripheral_ratio_min" if role == "peripheral" else "amplitude_ratio_min",
                     0.0) or crit.get("shift_amplitude_ratio_min", 0.0)
    lat = (crit["latency_ratio_max"] * lat0 if crit.get("latency_ratio_max")
           else lat0 + crit["latency_shift_ms"] if crit.get("latency_shift_ms") else np.nan)
    return (ratio * amp0 if ratio else np.nan), lat


def _mark_moments(case: CaseData, ax: Any, site: str, div: float, label: bool) -> None:
    for t in case.run_starts_s[1:]:  # the appliance restarted and resumed the case
        ax.axvline(t / div, color="#808080", lw=0.8, ls="-.")
        if label:
            ax.text(t / div, 0.5, "restart", rotation=90, fontsize=5.5, va="center",
                    ha="right", color="#606060", transform=ax.get_xaxis_transform())
    for e in case.of("alarm_event", "annotation"):
        x = e.case_s / div
        if e.kind == "annotation":
            ax.axvline(x, color=EVENT_COLOUR, lw=0.8, ls=":")
            if label:
                ax.text(x, 1.0, str(e.data.get("text", ""))[:24], rotation=90, fontsize=5.5,
                        va="top", ha="right", color=EVENT_COLOUR,
                        transform=ax.get_xaxis_transform())
        elif e.site == site and e.data.get("event") in ("raised", "cleared"):
            raised = e.data["event"] == "raised"
            colour = PRIORITY_COLOUR.get(str(e.data.get("priority")), "#808080")
            ax.axvline(x, color=colour if raised else "#20a020", lw=1.0 if raised else 0.8,
                       ls="-" if raised else "--")
            if label:
                ax.text(x, 0.02, "alarm" if raised else "cleared", rotation=90, fontsize=5.5,
                        va="bottom", ha="right", color=colour if raised else "#20a020",
                        transform=ax.get_xaxis_transform())


def trend_figure(case: CaseData, idx: Index, p: SitePlan) -> Figure | None:
    """One site: judged amplitude and latency per channel against case time, the criteria
    limits (dashed, from the baseline in force), alarms and annotated events marked."""
    if not any(idx.trends.get((p.name, c)) for c in p.channels):
        return None
    div, xlabel = _time_axis(case)
    fig, (ax_a, ax_l) = plt.subplots(2, 1, figsize=A4_IN, sharex=True)
    fig.suptitle(f"Trends — {p.name} ({p.modality})", fontsize=12, x=0.08, ha="left")
    colours = plt.get_cmap("tab10")
    for i, (ch, role, primary) in enumerate(zip(p.channels, p.roles, p.primary, strict=True)):
        key = (p.name, ch)
        pts = idx.trends.get(key, [])
        if not pts:
            continue
        c = colours(i % 10)
        x = np.array([e.case_s for e in pts]) / div
        bases = [idx.baseline_at(key, e.case_s) for e in pts]
        judged = np.array([_judged(e, b, primary) for e, b in zip(pts, bases, strict=True)])
        ax_a.plot(x, judged[:, 0], ".-", color=c, lw=0.8, ms=2.5, label=f"{ch} ({role})")
        ax_l.plot(x, judged[:, 1], ".-", color=c, lw=0.8, ms=2.5, label=f"{ch} {primary}")
        lims = np.array([_limits(b, p.crit, role) if b is not None else (np.nan, np.nan)
                         for b in bases])
        ax_a.step(x, lims[:, 0], where="post", color=c, ls="--", lw=0.8)
        ax_l.step(x, lims[:, 1], where="post", color=c, ls="--", lw=0.8)
    for ax, label in ((ax_a, True), (ax_l, False)):
        _mark_moments(case, ax, p.name, div, label)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper right")
    ax_a.set_ylabel("amplitude judged (µV)", fontsize=8)
    ax_l.set_ylabel("latency (ms)", fontsize=8)
    ax_l.set_xlabel(xlabel, fontsize=8)
    fig.text(0.08, 0.01, "dashed: the alarm limits from the baseline in force; solid vertical: "
             "alarm raised (colour = priority); green dashed: cleared; purple dotted: events; grey "
             "dash-dot: restart",
             fontsize=6)
    fig.subplots_adjust(left=0.1, right=0.97, top=0.94, bottom=0.07, hspace=0.08)
    return fig


def continuous_figure(case: CaseData) -> Figure | None:
    """EEG (SEF95 per channel, fast-power ratio to baseline per side once there is a baseline)
    and free-running EMG (RMS and train time per channel) trends, when the case has them."""
    wanted = [("eeg_trend", "channels", "sef95_hz", "EEG SEF95 (Hz)"),
              ("eeg_trend", "sides", "fast_ratio", "EEG fast power / baseline"),
              ("emg_trend", "channels", "rms_uv", "EMG RMS (µV)"),
              ("emg_trend", "channels", "train_time_s", "EMG train time (s)")]
    div, xlabel = _time_axis(case)
    panels = []
    for kind, group, key, ylabel in wanted:
        series: dict[str, list[tuple[float, float]]] = {}
        for e in case.of(kind):
            for name, v in (e.data.get(group) or {}).items():
                val = v.get(key) if isinstance(v, dict) else None
                if isinstance(val, int | float):
                    series.setdefault(name, []).append((e.case_s / div, float(val)))
        if series:
            panels.append((ylabel, series))
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=A4_IN, sharex=True, squeeze=False)
    fig.suptitle("EEG and EMG trends", fontsize=12, x=0.08, ha="left")
    for k, (ax, (ylabel, series)) in enumerate(zip(axes[:, 0], panels, strict=True)):
        for name, xy in series.items():
            a = np.array(xy)
            ax.plot(a[:, 0], a[:, 1], lw=0.9, label=name)
        for e in case.of("alarm_event"):  # the EEG and EMG alarms
            if e.data.get("event") == "raised" and str(e.data.get("alarm_id", "")).startswith(
                    CONTINUOUS_ALARMS):
                ax.axvline(e.case_s / div, lw=0.8, color=PRIORITY_COLOUR.get(
                    str(e.data.get("priority")), "#808080"))
        _mark_moments(case, ax, "\0", div, k == 0)  # the annotated events
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="upper right")
    axes[-1, 0].set_xlabel(xlabel, fontsize=8)
    fig.text(0.08, 0.01, "vertical lines: alarms raised (colour = priority); purple dotted: "
             "events", fontsize=6)
    fig.subplots_adjust(left=0.1, right=0.97, top=0.94, bottom=0.06, hspace=0.1)
    return fig

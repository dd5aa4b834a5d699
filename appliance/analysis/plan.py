"""A site's plan: its settings resolved against its modality's defaults, the recorded channels
and the sample rate, with every check that can fail (a ConfigError naming the key). Pure Python:
`config.load` plans every site (appliance/config_rules.py) without importing numpy or scipy."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from appliance.errors import ConfigError
from appliance.modalities import registry
from appliance.modalities.base import Component, Modality, role_from_name
from appliance.settings.analysis import AnalysisSettings, SiteSettings

if TYPE_CHECKING:
    from appliance.dsp.filters import FilterSpec

MIN_WINDOW_SAMPLES = 8  # an analysis window shorter than this at the sweep rate measures nothing
MIN_COMPONENT_SAMPLES = 4  # a component window must hold a peak and its neighbours
MAX_UPDATE_S = 120.0  # an update (update_sweeps / rate_hz) may take at most this long
# fast detection (appliance/analysis/fast.py), per modality: (analysis window ms, latency design
# shift ms ~10 % of the primary component). Upper: N20/P25 and around (as in the detection
# benchmark); lower: around P37/N45. Here so that loading a config checks the window.
FAST_WINDOWS_MS = {"ssep_upper": ((10.0, 45.0), 2.0), "ssep_lower": ((25.0, 70.0), 3.7)}


@dataclass(frozen=True)
class SitePlan:
    """Everything resolved from a site's settings and its modality's defaults."""

    site: SiteSettings
    modality: Modality
    judge: object
    channel_index: tuple[int, ...]
    roles: tuple[str, ...]
    pre_ms: float
    post_ms: float
    band_hz: tuple[float, float]
    phase: str
    notch_hz: float | None
    n_sweeps: int
    update_sweeps: int
    cumulative: bool
    reject_uv: float
    crit: dict[str, float]
    judge_sweeps: int  # last sweeps the template fit judges (0: no fit, peaks are judged)

    @cached_property
    def filter(self) -> FilterSpec:
        from appliance.dsp.filters import FilterSpec  # scipy: not needed to check a config

        return FilterSpec(self.band_hz, self.phase, self.notch_hz)


def plan_site(s: SiteSettings, a: AnalysisSettings, channel_names: tuple[str, ...],
              fs_hz: float, path: str = "analysis.sites") -> SitePlan:
    """Resolve one site; a ConfigError names the key when something cannot work."""
    mod, judge = registry.get(s.modality)
    missing = [c for c in s.channels if c not in channel_names]
    if missing:
        raise ConfigError(f"{path}.channels: {missing[0]!r} is not among the recorded channels "
                          f"{list(channel_names)}.")
    idx = tuple(channel_names.index(c) for c in s.channels)
    default_role = "epidural" if s.d_wave else mod.default_role
    roles = tuple(s.roles) if s.roles else ()
    roles = tuple(r if r != "auto" else role_from_name(c, default_role)
                  for c, r in zip(s.channels, roles or ("auto",) * len(s.channels), strict=True))
    # a name-derived role the modality does not measure (BAEP "Cz-A1" looks cortical) is its
    # default role; an explicit role in the config is kept and measured as the default
    roles = tuple(r if r in mod.measures or s.roles else default_role for r in roles)
    pre_ms, post_ms = s.window_ms or mod.window_ms
    lo, want_hi = s.band_hz or mod.band_hz
    # BAEP's 3 kHz needs >= 8 kSPS: a little below that the band is cut (and the cut band is
    # in every result); a rate that keeps less than half of it is refused
    hi = min(want_hi, 0.45 * fs_hz)
    if not 0 < lo < hi or hi < 0.5 * want_hi:
        raise ConfigError(f"{path}.band_hz: [{lo:g}, {want_hi:g}] Hz needs a sample rate of at "
                          f"least {want_hi / 0.45 / 2:g} Hz, got {fs_hz:g} Hz; raise "
                          "frontend.sample_rate_hz or lower band_hz.")
    fs_sweep_hz = fs_hz / sweep_decimation(fs_hz, hi, s.phase == "zero")
    if (pre_ms + post_ms) * fs_sweep_hz / 1e3 < MIN_WINDOW_SAMPLES:
        raise ConfigError(f"{path}.window_ms: got {[pre_ms, post_ms]}, allowed: a window of at "
                          f"least {MIN_WINDOW_SAMPLES} samples at {fs_sweep_hz:g} Hz "
                          f"({MIN_WINDOW_SAMPLES * 1e3 / fs_sweep_hz:g} ms).")
    mod = with_component_windows(mod, s.components, post_ms, fs_sweep_hz, f"{path}.components")
    notch = a.notch_hz if s.notch_hz < 0 else s.notch_hz
    notch = notch if 0 < notch < 0.5 * fs_hz else None
    if mod.family == "tcmep" and not s.d_wave and s.n_sweeps > 1:
        raise ConfigError(f"{path}.n_sweeps: got {s.n_sweeps}, allowed: 0 or 1 — muscle MEPs "
                          "are judged sweep by sweep, never averaged (d_wave = true averages).")
    n = s.n_sweeps or (mod.extra.get("d_wave_sweeps", mod.n_sweeps) if s.d_wave else mod.n_sweeps)
    upd = s.update_sweeps or (min(5, n) if s.d_wave else mod.update_sweeps)
    if upd / s.rate_hz > MAX_UPDATE_S:
        raise ConfigError(f"{path}.update_sweeps: {upd} sweeps at rate_hz {s.rate_hz:g} take "
                          f"{upd / s.rate_hz:.0f} s, allowed: an update at least every "
                          f"{MAX_UPDATE_S:g} s (fewer update_sweeps or a higher rate_hz).")
    crit = dict(mod.criteria)
    if mod.family == "tcmep":
        from appliance.modalities.tcmep import CASE_AMPLITUDE_RATIO_MIN

        crit["amplitude_ratio_min"] = (mod.extra["d_wave_ratio_min"] if s.d_wave
                                       else CASE_AMPLITUDE_RATIO_MIN[a.case_type])
    crit.update(clear_amplitude_margin=a.clear_amplitude_margin,
                clear_latency_margin=a.clear_latency_margin,
                confirm_imprecise=float(a.confirm_imprecise))
    crit.update(s.criteria)
    reject = s.reject_uv or mod.reject_uv
    cumulative = s.averaging == "cumulative"
    # the fit needs the window's sweeps: moving averages keep them, cumulative ones do not
    judge_n = 0 if cumulative or not mod.judge_fraction else max(
        4, min(n, s.judge_sweeps or int(round(mod.judge_fraction * n))))
    plan = SitePlan(s, mod, judge, idx, roles, float(pre_ms), float(post_ms),
                    (float(lo), float(hi)), s.phase, notch, int(n), int(upd),
                    cumulative, float(reject), crit, judge_n)
    if fast_enabled(plan, a):
        (f_lo, f_hi), _ = FAST_WINDOWS_MS[mod.name]
        # the sweep's ends at the sweep rate as SitePipeline rounds them (the one check)
        step_ms = 1e3 / fs_sweep_hz
        first_ms = -int(round(pre_ms * fs_sweep_hz / 1e3)) * step_ms
        end_ms = (int(round(post_ms * fs_sweep_hz / 1e3)) - 1) * step_ms + step_ms
        if f_lo < first_ms or f_hi > end_ms:  # on by default, so the message says how to stop it
            raise ConfigError(f"{path}.window_ms: got {[pre_ms, post_ms]}, fast detection needs "
                              f"{f_lo:g}-{f_hi:g} ms after the stimulus inside the sweep; "
                              "widen window_ms, or set fast_detection = \"off\" for this site "
                              "(analysis.fast_detection = false: for every site).")
    return plan


def fast_enabled(plan: SitePlan, analysis: AnalysisSettings) -> bool:
    """Fast detection runs on SSEP sites that have it on (site 'on', or 'default' with
    analysis.fast_detection, true unless set) and have a cortical channel to feed it."""
    site = plan.site
    on = site.fast_detection == "on" or (site.fast_detection == "default"
                                         and analysis.fast_detection)
    return on and plan.modality.name in FAST_WINDOWS_MS and "cortical" in plan.roles


def sweep_decimation(fs_hz: float, hi_hz: float, zero_phase: bool) -> int:
    """Sweeps are analysed at fs / q, the lowest whole fraction of the rate that still samples
    the band at >= 4x its upper edge (SSEP at 16 kSPS: 4 kSPS); q = 1 for causal filtering."""
    return max(1, int(fs_hz // (4.0 * hi_hz))) if zero_phase else 1


def with_component_windows(mod: Modality, windows: dict[str, tuple[float, ...]], post_ms: float,
                           fs_sweep_hz: float, path: str) -> Modality:
    """`mod` with the named components searched in `windows` (ms after the stimulus) instead of
    its defaults; every window lies inside the analysis window and holds a few samples."""
    if not windows:
        return mod
    known = {c.name for m in mod.measures.values() for c in m.components}
    min_ms = MIN_COMPONENT_SAMPLES * 1e3 / fs_sweep_hz
    for name, (lo, hi) in windows.items():
        if name not in known:
            raise ConfigError(f"{path}.{name}: unknown component, allowed for {mod.name}: "
                              f"{', '.join(sorted(known))}.")
        if hi > post_ms or hi - lo < min_ms:
            raise ConfigError(f"{path}.{name}: got {[lo, hi]}, allowed: a window inside 0-"
                              f"{post_ms:g} ms (the analysis window) at least {min_ms:g} ms "
                              f"({MIN_COMPONENT_SAMPLES} samples) wide.")

    def moved(c: Component) -> Component:
        w = windows.get(c.name)
        return dataclasses.replace(c, window_ms=(float(w[0]), float(w[1]))) if w else c

    measures = {role: dataclasses.replace(m, components=tuple(moved(c) for c in m.components))
                for role, m in mod.measures.items()}
    return dataclasses.replace(mod, measures=measures)

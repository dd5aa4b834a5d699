"""Peaks of an average: named components with sub-sample latency and a confidence.

`find_peak` looks for the extremum of the expected polarity inside a search window, refines
it by a parabola (sub-sample latency and amplitude) — through the three samples around it, or
least-squares over +-fit_ms when given, which averages out noise on broad peaks such as N20 —
and
scores it against the residual noise of the average by how far it stands out both from the
baseline (zero: averages are baseline-corrected) and from its flanks (prominence: height above
the higher of the lowest points on either side inside the window):

    z = min(polarity * amplitude, prominence) / noise_uv
    confidence = z^2 / (z^2 + min_snr^2)          (0.5 at z = min_snr)

Prominence alone is not enough: in a window of ~40 independent noise samples the largest
wiggle stands 4-5 noise SDs above its flanks, while the largest excursion from zero rarely
passes 3 SDs.

A peak on the edge of the window (a slope, not a turning point) or with z < min_snr is not
found: found=False, latency and amplitude NaN. Every number is float64, found or not.

tcMEP measures (single sweeps): `onset_latency_ms`, `peak_to_peak`, `area`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NEGATIVE, POSITIVE = -1, 1


@dataclass(frozen=True)
class ComponentSpec:
    """A named component: search window (ms after the stimulus) and polarity (+1 / -1)."""

    name: str
    window_ms: tuple[float, float]
    polarity: int
    fit_ms: float = 0.0  # half-width of the least-squares parabola (0: three samples)


# Typical search windows (ms) for the components in the clinical spec; modalities may override.
COMPONENTS: dict[str, ComponentSpec] = {c.name: c for c in (
    ComponentSpec("N9", (7.0, 12.0), NEGATIVE, 0.5),     # Erb's point, median nerve
    ComponentSpec("N13", (11.0, 16.0), NEGATIVE, 0.5),   # cervical
    ComponentSpec("N20", (16.0, 25.0), NEGATIVE, 0.75),  # cortical, median nerve
    ComponentSpec("P25", (21.0, 35.0), POSITIVE, 1.0),
    ComponentSpec("P37", (30.0, 45.0), POSITIVE, 1.0),   # cortical, posterior tibial nerve
    ComponentSpec("N45", (38.0, 55.0), NEGATIVE, 1.0),
    ComponentSpec("I", (1.0, 2.3), POSITIVE),       # BAEP waves, vertex positive
    ComponentSpec("III", (3.0, 4.6), POSITIVE),
    ComponentSpec("V", (4.8, 7.5), POSITIVE),
)}


@dataclass(frozen=True)
class Peak:
    """One component's measurement; latency_ms / amplitude_uv are NaN when not found."""

    name: str
    latency_ms: float
    amplitude_uv: float
    confidence: float
    found: bool

    def to_json(self) -> dict:
        """The component object of a trend message (NaN becomes null)."""
        def num(v: float) -> float | None:
            return None if math.isnan(v) else float(v)
        return {"latency_ms": num(self.latency_ms), "amplitude_uv": num(self.amplitude_uv),
                "confidence": float(self.confidence)}


def _window(t_ms: np.ndarray, window_ms: tuple[float, float]) -> np.ndarray:
    return np.flatnonzero((t_ms >= window_ms[0]) & (t_ms <= window_ms[1]))


def find_peak(trace: np.ndarray, t_ms: np.ndarray, window_ms: tuple[float, float],
              polarity: int, noise_uv: float, name: str = "", min_snr: float = 3.0,
              fit_ms: float = 0.0) -> Peak:
    """trace (n_times,) µV, t_ms (n_times,) evenly spaced -> Peak (see module doc)."""
    y = np.asarray(trace, dtype=np.float64)
    t = np.asarray(t_ms, dtype=np.float64)
    if polarity not in (NEGATIVE, POSITIVE):
        raise ValueError(f"polarity must be +1 or -1, got {polarity!r}")
    missing = Peak(name, math.nan, math.nan, 0.0, False)
    idx = _window(t, window_ms)
    if len(idx) < 3 or not np.all(np.isfinite(y[idx])):
        return missing
    s = polarity * y[idx]
    i = int(np.argmax(s))
    if i == 0 or i == len(idx) - 1:
        return missing  # extremum on the window edge: a slope, not a turning point
    height = min(s[i] - max(s[:i].min(), s[i + 1:].min()), s[i])
    noise = float(noise_uv)
    z = height / noise if noise > 0 else (math.inf if height > 0 else 0.0)
    z = max(z, 0.0)
    confidence = float(z * z / (z * z + min_snr * min_snr)) if math.isfinite(z) else 1.0
    if z < min_snr:
        return Peak(name, math.nan, math.nan, confidence, False)
    dt = t[1] - t[0]
    h = max(1, int(round(fit_ms / dt)))
    j = idx[i]
    lo, hi = max(0, j - h), min(len(y), j + h + 1)
    if hi - lo < 3 or not np.all(np.isfinite(y[lo:hi])):
        lo, hi = j - 1, j + 2
    # Parabola a u^2 + b u + c through polarity*y around the extremum (u in samples from j).
    u = np.arange(lo - j, hi - j, dtype=np.float64)
    a, b, c = np.polyfit(u, polarity * y[lo:hi], 2)
    vertex = -b / (2 * a) if a < 0 else 0.0
    vertex = float(np.clip(vertex, u[0], u[-1]))  # a noisy fit never leaves its samples
    latency = float(t[j] + vertex * dt)
    amplitude = float(polarity * (a * vertex * vertex + b * vertex + c))
    return Peak(name, latency, amplitude, confidence, True)


def find_components(trace: np.ndarray, t_ms: np.ndarray, specs, noise_uv: float,
                    min_snr: float = 3.0) -> dict[str, Peak]:
    """Every ComponentSpec (or name in COMPONENTS) in `specs` -> {name: Peak}."""
    out = {}
    for spec in specs:
        spec = COMPONENTS[spec] if isinstance(spec, str) else spec
        out[spec.name] = find_peak(trace, t_ms, spec.window_ms, spec.polarity, noise_uv,
                                   spec.name, min_snr, spec.fit_ms)
    return out


def peak_to_peak(trace: np.ndarray, t_ms: np.ndarray, window_ms: tuple[float, float]) -> float:
    """max - min of the trace inside the window, µV (float64; NaN for an empty window)."""
    idx = _window(np.asarray(t_ms, dtype=np.float64), window_ms)
    if len(idx) == 0:
        return math.nan
    y = np.asarray(trace, dtype=np.float64)[idx]
    return float(y.max() - y.min())


def onset_latency_ms(trace: np.ndarray, t_ms: np.ndarray, window_ms: tuple[float, float],
                     threshold_uv: float) -> float:
    """First time |trace| reaches threshold_uv inside the window, linearly interpolated
    between samples; NaN if it never does. Set threshold_uv from the baseline noise
    (e.g. 5-10 x the pre-stimulus RMS) or a fixed level (e.g. 20-50 µV for tcMEP)."""
    t = np.asarray(t_ms, dtype=np.float64)
    idx = _window(t, window_ms)
    if len(idx) == 0:
        return math.nan
    a = np.abs(np.asarray(trace, dtype=np.float64)[idx])
    above = np.flatnonzero(a >= threshold_uv)
    if len(above) == 0:
        return math.nan
    j = int(above[0])
    if j == 0:
        return float(t[idx[0]])
    a0, a1 = a[j - 1], a[j]
    frac = (threshold_uv - a0) / (a1 - a0)
    return float(t[idx[j - 1]] + frac * (t[idx[j]] - t[idx[j - 1]]))


def area(trace: np.ndarray, t_ms: np.ndarray, window_ms: tuple[float, float]) -> float:
    """Rectified area ∫|trace| dt inside the window, µV·ms (trapezoid rule; NaN if empty)."""
    t = np.asarray(t_ms, dtype=np.float64)
    idx = _window(t, window_ms)
    if len(idx) < 2:
        return math.nan
    return float(np.trapezoid(np.abs(np.asarray(trace, dtype=np.float64)[idx]), t[idx]))

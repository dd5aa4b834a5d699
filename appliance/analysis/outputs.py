"""What the monitor emits: `TrendPoint` and `Waveform`, with `to_json()` in the shared shapes
(the same dicts go to MQTT, the case store and `ionm replay` stdout). Conditions are
`appliance.conditions.Condition`."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _num(x: float | None, nd: int = 4) -> float | None:
    """JSON-safe float: None for NaN/inf/None, rounded to keep lines short."""
    if x is None or not np.isfinite(x):
        return None
    return round(float(x), nd)


@dataclass(frozen=True)
class ComponentValue:
    """One measured component. amplitude_uv is signed, from the pre-stimulus baseline; for
    tcMEP's "MEP" it is peak to peak and `latency_ms` the onset latency."""

    latency_ms: float
    amplitude_uv: float
    confidence: float
    found: bool
    area_uv_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        d = {
            "latency_ms": _num(self.latency_ms) if self.found else None,
            "amplitude_uv": _num(self.amplitude_uv) if self.found else None,
            "confidence": _num(self.confidence, 3),
        }
        if self.area_uv_ms is not None:
            d["area_uv_ms"] = _num(self.area_uv_ms)
        return d


@dataclass(frozen=True)
class FitValue:
    """The judged measure of a channel with a baseline template: the least-squares scale of
    the baseline average in the last `n_sweeps` sweeps (appliance/dsp/template.py), unbiased
    by noise where peak picking is not. amplitude_uv is ratio x the baseline's judged
    amplitude; latency_ms the baseline's latency plus the fitted shift over the last
    `latency_sweeps` (NaN when the template is not significantly present there). halves:
    {amplitude_uv, latency_ms, found} of the odd and even sweeps."""

    ratio: float
    ci95: tuple[float, float]
    amplitude_uv: float
    latency_ms: float
    shift_ms: float
    found: bool
    n_sweeps: int  # sweeps the amplitude is fitted over (the moving window)
    latency_sweeps: int  # the last sweeps the latency is fitted over
    halves: tuple[dict[str, Any], dict[str, Any]]
    recent_ratio: float = float("nan")  # over the last recent_sweeps (a loss shows sooner)
    recent_sweeps: int = 0
    lost: bool = False  # recent_ratio below LOSS_RATIO: amplitude_uv is judged from it
    recent_amplitude_uv: float = float("nan")  # recent_ratio x the baseline amplitude
    se: float = float("nan")  # standard error of what is judged (the window's, or the recent)
    window_full: bool = False  # the amplitude window is at its longest: waiting adds nothing
    sweeps_seen: int = 0  # sweeps fitted since the baseline (counts new, independent sweeps)
    window_ratio: float = float("nan")  # over the amplitude window, even when lost
    window_sweeps: int = 0  # the amplitude window's length, even when lost
    latency_se_ms: float = float("inf")  # standard error of latency_ms (of the shift)

    def to_json(self) -> dict[str, Any]:
        return {
            "measure": "template_fit",
            "amplitude_ratio": _num(self.ratio, 3),
            "amplitude_ratio_ci95": [_num(self.ci95[0], 3), _num(self.ci95[1], 3)],
            "amplitude_ratio_se": _num(self.se, 4),
            "latency_ms": _num(self.latency_ms) if self.found else None,
            "latency_shift_ms": _num(self.shift_ms) if self.found else None,
            "latency_se_ms": _num(self.latency_se_ms, 3) if self.found else None,
            "n_sweeps": int(self.n_sweeps),
            "latency_n_sweeps": int(self.latency_sweeps),
            "recent_ratio": _num(self.recent_ratio, 3),
            "recent_n_sweeps": int(self.recent_sweeps),
            "lost": bool(self.lost),
        }


@dataclass(frozen=True)
class TrendPoint:
    """One update of one channel of one site.

    peak_to_peak_uv  |a - b| of the modality's component pair (N20-P25, P37-N45, V-Vn), else
                     |primary| (N9, N13, D-wave) or the tcMEP peak to peak; 0 when the
                     components are not found. What the criteria judge when there is no `fit`
    fit              SSEP channels with a baseline: the template fit the criteria judge instead
    filter           {"phase", "band_hz", "notch_hz"} of the filtering that produced it
    """

    t_s: float
    site: str
    modality: str
    channel: str
    role: str
    n_sweeps: int
    components: dict[str, ComponentValue]
    primary: str
    peak_to_peak_uv: float
    residual_noise_uv: float
    fsp: float
    snr_db: float
    split_half_r: float
    filter: dict[str, Any]
    rejected: dict[str, int] = field(default_factory=dict)
    fit: FitValue | None = None

    @property
    def latency_ms(self) -> float:
        return self.components[self.primary].latency_ms

    @property
    def found(self) -> bool:
        return self.components[self.primary].found

    def measure(self) -> dict[str, Any]:
        """What criteria compare with the baseline: the template fit when there is one."""
        if self.fit is not None:
            f = self.fit
            recent = f.recent_amplitude_uv
            # an amplitude alarm clears only on a clear recovery: its 95 % interval above the
            # clearing level, and the recent sweeps agree. A change that settles near the
            # criterion (family B's 60 % cortical drop is ~0.47 of its channel, a 50 % drop
            # sits on it) would otherwise clear whenever noise lifted it past 0.6 (one
            # standard error above it still let 8 such clears through in the families run)
            low = f.ci95[0] * (f.amplitude_uv / f.ratio) if f.ratio else f.amplitude_uv
            low = low if np.isfinite(low) else f.amplitude_uv
            return {"amplitude_uv": float(f.amplitude_uv),
                    "latency_ms": float(f.latency_ms), "found": bool(f.found),
                    "measure": "template_fit",
                    "amplitude_clear_uv": float(min(low, recent) if np.isfinite(recent)
                                                else low),
                    # the global check: the lower of the window's and the recent sweeps'
                    "amplitude_recent_uv": float(min(f.amplitude_uv, recent)
                                                 if np.isfinite(recent) else f.amplitude_uv)}
        return {
            "amplitude_uv": float(self.peak_to_peak_uv),
            "latency_ms": float(self.latency_ms),
            "found": bool(self.found),
            "measure": "peak_to_peak",
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "trend",
            "t_s": _num(self.t_s, 3),
            "site": self.site,
            "modality": self.modality,
            "channel": self.channel,
            "role": self.role,
            "n_sweeps": int(self.n_sweeps),
            "components": {k: v.to_json() for k, v in self.components.items()},
            "peak_to_peak_uv": _num(self.peak_to_peak_uv),
            "residual_noise_uv": _num(self.residual_noise_uv),
            "fsp": _num(self.fsp, 3),
            "snr_db": _num(self.snr_db, 2),
            "split_half_r": _num(self.split_half_r, 3),
            "filter": self.filter,
            "rejected": dict(self.rejected),
            "fit": self.fit.to_json() if self.fit is not None else None,
        }


# the fields of a waveform line that describe the trace (a baseline message embeds them)
WAVE_KEYS = ("t_s", "n_sweeps", "sample_rate_hz", "t0_ms", "encoding", "scale_uv", "data")


@dataclass(frozen=True)
class Waveform:
    """An average (n_times,) µV sampled at sample_rate_hz starting t0_ms after the stimulus,
    shipped as little-endian int16 counts of `scale_uv` µV."""

    t_s: float
    site: str
    modality: str
    channel: str
    n_sweeps: int
    sample_rate_hz: float
    t0_ms: float
    data_uv: np.ndarray

    def encode(self) -> tuple[float, str]:
        return encode_int16(self.data_uv)

    def to_json(self) -> dict[str, Any]:
        scale_uv, data = self.encode()
        return {
            "type": "waveform",
            "t_s": _num(self.t_s, 3),
            "site": self.site,
            "modality": self.modality,
            "channel": self.channel,
            "n_sweeps": int(self.n_sweeps),
            "sample_rate_hz": float(self.sample_rate_hz),
            "t0_ms": _num(self.t0_ms),
            "encoding": "int16-le-base64",
            "scale_uv": float(scale_uv),
            "data": data,
        }


def encode_int16(data_uv: np.ndarray) -> tuple[float, str]:
    """(scale_uv, base64 of little-endian int16 counts): the waveform/snippet encoding."""
    peak = float(np.max(np.abs(data_uv))) if data_uv.size else 0.0
    scale_uv = peak / 32767.0 if peak > 0 and np.isfinite(peak) else 1e-3
    counts = np.clip(np.round(np.nan_to_num(data_uv) / scale_uv), -32768, 32767)
    return scale_uv, base64.b64encode(counts.astype("<i2").tobytes()).decode("ascii")


def decode_waveform(d: dict[str, Any]) -> np.ndarray:
    """Inverse of Waveform.to_json()['data'] -> (n_times,) float64 µV."""
    counts = np.frombuffer(base64.b64decode(d["data"]), dtype="<i2")
    return counts.astype(np.float64) * float(d["scale_uv"])

"""Filter design (scipy butter / iirnotch -> second-order sections) and application.

Two ways to apply the same SOS:

- `StreamingFilter` — causal, per channel, with the filter state (zi) carried from block to
  block, so the output equals filtering the whole stream at once (block boundaries never show).
  Right for continuous signals (free-run EMG, EEG) and for display.
- `zero_phase_sweeps` — forward and backward over each sweep cut with `pad_samples` of real
  data on both sides, then trimmed. No phase shift, so peak latencies are not delayed by the
  filter's group delay; the default for evoked-potential measurement.
- `zero_phase_from_forward` — the same result for sweeps cut from a `StreamingFilter`'s
  output: only the backward pass runs per sweep (about a third of the work).

`FilterSpec` records which was used, and goes with every result (`to_json()`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import signal

PHASES = ("zero", "causal")


def _check_band(lo_hz: float, hi_hz: float, fs_hz: float) -> None:
    nyquist = fs_hz / 2.0
    if not 0 < lo_hz < hi_hz < nyquist:
        raise ValueError(
            f"band-pass needs 0 < lo_hz < hi_hz < fs_hz/2 = {nyquist:g}, "
            f"got lo_hz={lo_hz!r}, hi_hz={hi_hz!r} at fs_hz={fs_hz!r}"
        )


def bandpass_sos(lo_hz: float, hi_hz: float, fs_hz: float, order: int = 2) -> np.ndarray:
    """Butterworth band-pass -> SOS (order sections, 6) float64.

    `order` is the order of the low-pass prototype (scipy's N): each edge rolls off at
    order*20 dB/decade.
    """
    _check_band(lo_hz, hi_hz, fs_hz)
    if order < 1:
        raise ValueError(f"filter order must be >= 1, got {order!r}")
    return signal.butter(order, [lo_hz, hi_hz], btype="bandpass", fs=fs_hz, output="sos")


def notch_sos(f0_hz: float, fs_hz: float, q: float = 30.0, harmonics: int = 1) -> np.ndarray:
    """Notches at f0, 2 f0, ... `harmonics` x f0 (those below Nyquist) -> SOS (k, 6) float64."""
    if not 0 < f0_hz < fs_hz / 2:
        raise ValueError(f"notch f0_hz must be in (0, fs_hz/2 = {fs_hz / 2:g}), got {f0_hz!r}")
    if harmonics < 1 or q <= 0:
        raise ValueError(f"notch needs harmonics >= 1 and q > 0, got {harmonics!r}, {q!r}")
    sections = []
    for k in range(1, int(harmonics) + 1):
        f_hz = k * f0_hz
        if f_hz >= fs_hz / 2:
            break
        b, a = signal.iirnotch(f_hz, q, fs=fs_hz)
        sections.append(signal.tf2sos(b, a))
    return np.vstack(sections).astype(np.float64)


def cascade(*sos: np.ndarray) -> np.ndarray:
    """Concatenate SOS arrays into one filter (applied in the order given)."""
    return np.vstack([np.atleast_2d(s) for s in sos]).astype(np.float64)


def group_delay_ms(sos: np.ndarray, fs_hz: float, f_hz) -> np.ndarray:
    """Group delay of a causal pass of `sos` at frequencies f_hz, in milliseconds.

    f_hz scalar or (n,) -> float64 array of the same shape (NaN where the filter has a zero,
    e.g. a notch's centre). This is the delay a causal filter adds to a component whose energy
    sits at f_hz; zero-phase filtering has none.
    """
    f = np.atleast_1d(np.asarray(f_hz, dtype=np.float64))
    total = np.zeros_like(f)
    for b_a in np.atleast_2d(sos):
        with warnings.catch_warnings():  # singular exactly at a notch's zero: NaN below
            warnings.simplefilter("ignore")
            _, gd = signal.group_delay((b_a[:3], b_a[3:]), w=f, fs=fs_hz)
        _, h = signal.freqz(b_a[:3], b_a[3:], worN=f, fs=fs_hz)
        total += np.where(np.abs(h) > 1e-6, gd, np.nan)
    return (total / fs_hz * 1e3).reshape(np.shape(f_hz))


class StreamingFilter:
    """Causal SOS filter per channel, state carried across blocks.

    `process(x (n_channels, n)) -> (n_channels, n) float64`. With start="zero" (default) the
    result equals `scipy.signal.sosfilt(sos, whole_signal, axis=-1)`; start="steady" begins
    from the steady state for the first sample's level, which avoids a long step transient
    when electrodes carry a DC offset.
    """

    def __init__(self, sos: np.ndarray, n_channels: int, start: str = "zero") -> None:
        if start not in ("zero", "steady"):
            raise ValueError(f"start must be 'zero' or 'steady', got {start!r}")
        self.sos = np.atleast_2d(np.asarray(sos, dtype=np.float64))
        if self.sos.shape[1] != 6:
            raise ValueError(f"sos must have shape (n_sections, 6), got {self.sos.shape}")
        self.n_channels = int(n_channels)
        self.start = start
        self._zi: np.ndarray | None = None

    def process(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != self.n_channels:
            raise ValueError(
                f"expected (n_channels={self.n_channels}, n_samples), got shape {x.shape}"
            )
        if x.shape[1] == 0:
            return np.empty_like(x)
        if self._zi is None:
            zi = np.zeros((self.sos.shape[0], self.n_channels, 2))
            if self.start == "steady":
                zi = signal.sosfilt_zi(self.sos)[:, None, :] * x[None, :, 0, None]
            self._zi = zi
        y, self._zi = signal.sosfilt(self.sos, x, axis=-1, zi=self._zi)
        return y

    def reset(self) -> None:
        """Drop the carried state (after a gap in the stream)."""
        self._zi = None


def _padded(sweeps: np.ndarray, pad_samples: int) -> tuple[np.ndarray, int, int]:
    """(sweeps as float64, pad, n_out) after checking the pads fit on both sides."""
    x = np.asarray(sweeps, dtype=np.float64)
    pad = int(pad_samples)
    if pad < 0 or x.shape[-1] < 2 * pad:
        raise ValueError(
            f"pad_samples={pad_samples!r} must be >= 0 and fit twice in n_times={x.shape[-1]}"
        )
    return x, pad, x.shape[-1] - 2 * pad


def zero_phase_sweeps(sweeps: np.ndarray, sos: np.ndarray, pad_samples: int) -> np.ndarray:
    """Forward-backward filter sweeps cut with `pad_samples` extra samples on each side.

    sweeps (..., n_times + 2*pad_samples) -> (..., n_times) float64: sosfiltfilt over the whole
    padded segment (scipy's default odd extension at its ends), then the pads trimmed, so the
    kept samples see real data on both sides instead of edge transients. Vectorised over
    every leading axis (sweeps, channels).
    """
    x, pad, n_out = _padded(sweeps, pad_samples)
    if x.size == 0 or n_out == 0:
        return np.empty(x.shape[:-1] + (n_out,), dtype=np.float64)
    sos = np.atleast_2d(np.asarray(sos, dtype=np.float64))
    # scipy's edge padding (3 x taps, odd extension), shortened for very short sweeps
    taps = 2 * len(sos) + 1 - min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum())
    y = _filtfilt(sos, x, min(3 * int(taps), x.shape[-1] - 1))
    return y[..., pad:pad + n_out]


def zero_phase_from_forward(sweeps: np.ndarray, sos: np.ndarray,
                            pad_samples: int) -> np.ndarray:
    """Finish zero-phase filtering of sweeps cut from a causally filtered stream.

    sweeps (..., n_times + 2*pad) cut (with `Epocher(pad_samples=pad)`) from the output of a
    `StreamingFilter(sos)` -> (..., n_times) float64: the backward pass only, started from the
    steady state of the sweep's last sample and run over the sweep and its post-stimulus pad,
    which absorbs the backward start transient. The forward pass ran once over the continuous
    stream with its state carried, so it has no edge transient at all; the result is the
    whole recording filtered forward and backward (zero phase, |H|^2), like
    `zero_phase_sweeps`, at a third of the per-sweep work. The pre-stimulus pad is not
    needed (it may be 0 on that side; it is ignored).
    """
    x, pad, n_out = _padded(sweeps, pad_samples)
    if x.size == 0 or n_out == 0:
        return np.empty(x.shape[:-1] + (n_out,), dtype=np.float64)
    sos = np.atleast_2d(np.asarray(sos, dtype=np.float64))
    r = x[..., pad:][..., ::-1]
    zi = _steady_zi(sos)
    zi = zi.reshape((zi.shape[0],) + (1,) * (r.ndim - 1) + (2,))
    y, _ = signal.sosfilt(sos, r, axis=-1, zi=zi * r[None, ..., :1])
    return np.ascontiguousarray(y[..., ::-1][..., :n_out])


_ZI_CACHE: dict[bytes, np.ndarray] = {}


def _steady_zi(sos: np.ndarray) -> np.ndarray:
    """sosfilt_zi(sos) (n_sections, 2), cached: solving for it costs more than filtering a sweep."""
    key = sos.tobytes()
    zi = _ZI_CACHE.get(key)
    if zi is None:
        zi = _ZI_CACHE.setdefault(key, signal.sosfilt_zi(sos))
    return zi


def _filtfilt(sos: np.ndarray, x: np.ndarray, padlen: int) -> np.ndarray:
    """scipy.signal.sosfiltfilt(sos, x, axis=-1, padlen=padlen), with the steady-state
    initial conditions cached per filter (sosfiltfilt solves for them on every call)."""
    zi = _steady_zi(sos)
    if padlen > 0:
        left = 2 * x[..., :1] - x[..., padlen:0:-1]
        right = 2 * x[..., -1:] - x[..., -2:-padlen - 2:-1]
        x = np.concatenate([left, x, right], axis=-1)
    zi = zi.reshape((zi.shape[0],) + (1,) * (x.ndim - 1) + (2,))
    y, _ = signal.sosfilt(sos, x, axis=-1, zi=zi * x[None, ..., :1])
    y = y[..., ::-1]
    y, _ = signal.sosfilt(sos, y, axis=-1, zi=zi * y[None, ..., :1])
    y = y[..., ::-1]
    return y[..., padlen:y.shape[-1] - padlen] if padlen > 0 else y


@dataclass(frozen=True)
class FilterSpec:
    """What filtering produced a result: phase ('zero' | 'causal'), band and notch.

    `sos(fs_hz)` designs it; `to_json()` is the "filter" object of a trend message.
    """

    band_hz: tuple[float, float]
    phase: str = "zero"
    notch_hz: float | None = None
    notch_harmonics: int = 3
    order: int = 2

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"filter phase must be one of {PHASES}, got {self.phase!r}")

    def sos(self, fs_hz: float) -> np.ndarray:
        parts = [bandpass_sos(self.band_hz[0], self.band_hz[1], fs_hz, self.order)]
        if self.notch_hz:
            parts.append(notch_sos(self.notch_hz, fs_hz, harmonics=self.notch_harmonics))
        return cascade(*parts)

    def to_json(self) -> dict:
        return {
            "phase": self.phase,
            "band_hz": [float(self.band_hz[0]), float(self.band_hz[1])],
            "notch_hz": None if self.notch_hz is None else float(self.notch_hz),
        }

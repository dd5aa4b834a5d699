"""Streaming noise sources of the simulated patient: each keeps its filter state, so successive
`generate(n)` calls produce one continuous signal, and each is vectorised over channels.

All outputs are (n_channels, n_samples) float64 in µV.
"""

from __future__ import annotations

import numpy as np
from scipy import signal


def power_law_sos(fs_hz: float, slope: float, f_lo_hz: float = 0.3, f_hi_hz: float | None = None,
                  per_decade: int = 2) -> np.ndarray:
    """SOS filter whose power spectrum falls as 1/f**slope (0 < slope < 2) between f_lo and f_hi.

    Classic pole/zero ladder: poles log-spaced `per_decade` per decade; each zero sits a fraction
    slope/2 of the spacing above its pole, so the mean amplitude slope is -slope/2 per decade
    (ripple < 0.5 dB with 2 per decade). Flat below f_lo, flat above f_hi.
    """
    if not 0.0 < slope < 2.0:
        raise ValueError(f"slope: got {slope}, allowed: 0 < slope < 2")
    f_hi = f_hi_hz or 0.45 * fs_hz
    n = max(1, int(np.ceil(np.log10(f_hi / f_lo_hz) * per_decade)))
    ratio = 10.0 ** (1.0 / per_decade)
    poles_hz = f_lo_hz * ratio ** np.arange(n)
    zeros_hz = poles_hz * ratio ** (slope / 2.0)
    z, p, k = signal.bilinear_zpk(-2 * np.pi * zeros_hz, -2 * np.pi * poles_hz, 1.0, fs_hz)
    sos = signal.zpk2sos(z, p, k)
    # unit gain at DC is arbitrary; normalise later by measured RMS
    return sos


def _rms_of_sos(sos: np.ndarray, n: int = 1 << 15) -> float:
    """RMS output of `sos` for unit-variance white input (from the impulse response)."""
    imp = np.zeros(n)
    imp[0] = 1.0
    h = signal.sosfilt(sos, imp)
    return float(np.sqrt(np.sum(h * h)))


class FilteredNoise:
    """White Gaussian noise through an SOS filter, scaled to `rms_uv` per channel, continuous."""

    def __init__(self, sos: np.ndarray, rms_uv: np.ndarray, rng: np.random.Generator) -> None:
        self.sos = sos
        self.rms_uv = np.asarray(rms_uv, dtype=float)
        self.rng = rng
        gain = _rms_of_sos(sos)
        self._scale = (self.rms_uv / gain)[:, None]
        n_ch = len(self.rms_uv)
        # start in the stationary state: run the filter on a few seconds of noise once
        self._zi = np.zeros((sos.shape[0], n_ch, 2))
        warm = rng.standard_normal((n_ch, 4096))
        _, self._zi = signal.sosfilt(sos, warm, axis=1, zi=self._zi)

    def generate(self, n: int) -> np.ndarray:
        x = self.rng.standard_normal((n, len(self.rms_uv))).T  # sample-major: cut-invariant
        y, self._zi = signal.sosfilt(self.sos, x, axis=1, zi=self._zi)
        return y * self._scale


class PinkEeg(FilteredNoise):
    """Background EEG: 1/f**slope power spectrum from ~0.3 Hz up to the gamma band, then falling
    faster (scalp EEG has little power above ~70 Hz), scaled to a broadband RMS per channel."""

    def __init__(self, fs_hz: float, rms_uv: np.ndarray, rng: np.random.Generator,
                 slope: float = 1.0, knee_hz: float = 70.0) -> None:
        sos = power_law_sos(fs_hz, slope, f_hi_hz=min(knee_hz, 0.45 * fs_hz))
        # above the knee: one more first-order pole, so the far tail falls ~1/f**(slope+2)
        lp = signal.butter(1, min(knee_hz, 0.45 * fs_hz), fs=fs_hz, output="sos")
        super().__init__(np.vstack([sos, lp]), rms_uv, rng)


class Emg(FilteredNoise):
    """Tonic muscle activity: 20-500 Hz band-limited Gaussian noise (cervical, Erb, muscles)."""

    def __init__(self, fs_hz: float, rms_uv: np.ndarray, rng: np.random.Generator) -> None:
        hi = min(500.0, 0.45 * fs_hz)
        sos = signal.butter(2, [20.0, hi], btype="bandpass", fs=fs_hz, output="sos")
        super().__init__(sos, rms_uv, rng)


class OffsetDrift:
    """Electrode half-cell offset: a DC level per channel plus a slow wander (stationary SD
    `sd_uv`, time constant `tau_s`), smoothed by a second pole at `smooth_s` so the wander stays
    below ~1 Hz as real electrode drift does (a plain random walk would leak 1/f^2 power into the
    evoked-potential band)."""

    def __init__(self, fs_hz: float, offset_uv: np.ndarray, sd_uv: float, tau_s: float,
                 rng: np.random.Generator, smooth_s: float = 1.0) -> None:
        self.offset_uv = np.asarray(offset_uv, dtype=float)[:, None]
        self.rng = rng
        p1, p2 = np.exp(-1.0 / (tau_s * fs_hz)), np.exp(-1.0 / (smooth_s * fs_hz))
        # variance of x_t = (p1 + p2) x_t-1 - p1 p2 x_t-2 + e_t for unit white e
        var = (1 + p1 * p2) / ((1 - p1 * p2) * ((1 + p1 * p2) ** 2 - (p1 + p2) ** 2))
        self._b = np.array([sd_uv / np.sqrt(var)])
        self._a = np.array([1.0, -(p1 + p2), p1 * p2])
        self._zi = np.zeros((len(self.offset_uv), 2))

    def generate(self, n: int) -> np.ndarray:
        x = self.rng.standard_normal((n, len(self.offset_uv))).T
        y, self._zi = signal.lfilter(self._b, self._a, x, axis=1, zi=self._zi)
        return self.offset_uv + y


def mains(t_s: np.ndarray, f_hz: float, fs_hz: float, amp_uv: np.ndarray, phase: np.ndarray,
          wander_rad: np.ndarray | None = None,
          harmonics: tuple[float, ...] = (1.0, 0.05, 0.3, 0.0, 0.1)) -> np.ndarray:
    """Mains hum: fundamental plus harmonics (relative amplitudes of 1st, 2nd, ...), per-channel
    peak amplitude `amp_uv` ((n_ch,) or (n_ch, n) to follow a level) and phase -> (n_ch, n).
    `wander_rad` (n,) is the fundamental's accumulated phase error from grid frequency wander.
    Harmonics at or above Nyquist are left out (the ADC's decimation filter removes them)."""
    base = 2 * np.pi * f_hz * t_s + (0.0 if wander_rad is None else wander_rad)
    out = np.zeros((len(phase), len(t_s)))
    for k, rel in enumerate(harmonics, start=1):
        if rel and k * f_hz < 0.5 * fs_hz:
            out += rel * np.sin(k * (base[None, :] + phase[:, None]))
    amp = amp_uv if np.ndim(amp_uv) == 2 else np.asarray(amp_uv)[:, None]
    return out * amp


def ecg_beat(fs_hz: float) -> tuple[np.ndarray, int]:
    """One ECG complex (P, QRS, T) as seen far from the heart, peak R = 1.0; returns the beat and
    the index of R within it."""
    t_ms = np.arange(-250.0, 450.0, 1000.0 / fs_hz)
    waves = ((-180.0, 25.0, 0.12), (-25.0, 8.0, -0.15), (0.0, 10.0, 1.0), (25.0, 9.0, -0.25),
             (250.0, 45.0, 0.3))  # (centre ms, sd ms, relative amplitude)
    beat = np.zeros_like(t_ms)
    for c, sd, a in waves:
        beat += a * np.exp(-0.5 * ((t_ms - c) / sd) ** 2)
    return beat, int(np.argmin(np.abs(t_ms)))

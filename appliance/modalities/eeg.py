"""Processed-EEG measures: arrays in, numbers out (no state, no I/O).

Welch's estimate as scipy.signal.welch computes it by default (periodic Hann window, 50 %
overlap, per-segment mean removed, one-sided density), vectorised over channels; band powers
integrate it over the classic bands. Sources of the bands and criteria: docs/clinical-defaults.md.
"""

from __future__ import annotations

import numpy as np

BANDS_HZ = {"delta": (0.5, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0)}
TOTAL_HZ = (0.5, 30.0)


def welch_psd(x: np.ndarray, fs_hz: float, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    """(freqs_hz (n_f,), psd (n_ch, n_f) µV²/Hz) of x (n_ch, n); equals
    scipy.signal.welch(x, fs_hz, nperseg=nperseg)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n = x.shape[-1]
    nperseg = min(int(nperseg), n)
    step = nperseg - nperseg // 2
    n_seg = 1 + (n - nperseg) // step
    idx = np.arange(nperseg)[None, :] + step * np.arange(n_seg)[:, None]
    seg = x[:, idx]  # (n_ch, n_seg, nperseg)
    seg = seg - seg.mean(axis=-1, keepdims=True)
    win = np.hanning(nperseg + 1)[:-1]  # periodic Hann, as scipy's get_window("hann")
    spec = np.abs(np.fft.rfft(seg * win, axis=-1)) ** 2 / (fs_hz * np.sum(win * win))
    if nperseg % 2:
        spec[..., 1:] *= 2.0
    else:
        spec[..., 1:-1] *= 2.0
    return np.fft.rfftfreq(nperseg, 1.0 / fs_hz), spec.mean(axis=1)


def band_power(freqs_hz: np.ndarray, psd: np.ndarray, band_hz: tuple[float, float]) -> np.ndarray:
    """Power (µV²) in [lo, hi) per channel: the density summed over the band's bins x bin width."""
    df = float(freqs_hz[1] - freqs_hz[0])
    m = (freqs_hz >= band_hz[0]) & (freqs_hz < band_hz[1])
    return psd[:, m].sum(axis=1) * df


def sef(freqs_hz: np.ndarray, psd: np.ndarray, fraction: float = 0.95,
        band_hz: tuple[float, float] = TOTAL_HZ) -> np.ndarray:
    """Spectral edge frequency: below it lies `fraction` of the power in band_hz (per channel)."""
    m = (freqs_hz >= band_hz[0]) & (freqs_hz < band_hz[1])
    c = np.cumsum(psd[:, m], axis=1)
    k = np.argmax(c >= fraction * c[:, -1:], axis=1)
    return freqs_hz[m][k]


def suppressed(x: np.ndarray, fs_hz: float, level_uv: float, min_s: float) -> np.ndarray:
    """(n_ch, n) bool: samples inside runs of |x| < level_uv lasting >= min_s (the usual
    burst-suppression definition: flat within ±5 µV for at least 0.5 s)."""
    quiet = np.abs(x) < level_uv
    out = np.zeros_like(quiet)
    min_n = max(1, int(round(min_s * fs_hz)))
    for ch in range(quiet.shape[0]):
        d = np.diff(np.concatenate([[0], quiet[ch].astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        for a, b in zip(starts, ends, strict=True):
            if b - a >= min_n:
                out[ch, a:b] = True
    return out


def measures(x: np.ndarray, fs_hz: float, nperseg: int) -> dict[str, np.ndarray]:
    """Band powers (µV²), relative alpha, alpha/delta, fast (alpha+beta) power, SEF95 per
    channel of x (n_ch, n)."""
    f, psd = welch_psd(x, fs_hz, nperseg)
    out = {name: band_power(f, psd, b) for name, b in BANDS_HZ.items()}
    total = band_power(f, psd, TOTAL_HZ)
    tiny = 1e-12
    out["total"] = total
    out["fast"] = out["alpha"] + out["beta"]
    out["relative_alpha"] = out["alpha"] / np.maximum(total, tiny)
    out["alpha_delta"] = out["alpha"] / np.maximum(out["delta"], tiny)
    out["sef95_hz"] = sef(f, psd)
    return out

"""Free-running EMG classification: what a run of activity is (arrays in, labels out).

Definitions (docs/clinical-defaults.md): Romstöck et al. 2000 (J Neurosurg 93:586-593) sort
facial-nerve free-running EMG into spikes and bursts (short, isolated or grouped, polyphasic
discharges), B- and C-trains (irregular, repeated or continuous) and A-trains: "sinusoidal,
symmetric sequences of high-frequency (60-210 Hz), low-amplitude (100-200 µV) signals with a
sudden onset", the only pattern that predicted postoperative palsy. Prell et al. 2007
(J Neurosurg 106:826-832) quantified A-trains as "train time", the accumulated A-train
duration per channel, with 0.5 s and 10 s as thresholds for postoperative deterioration.

Here: activity = window RMS above `threshold_factor` x the background RMS and above a floor;
an active run whose last `a_train_min_ms` concentrate their power in one narrow spectral peak
(Hann-windowed FFT, peak +/- 1 bin) inside `a_train_hz` is an A-train; any other run is a
spike (shorter than `spike_max_ms`) or a burst.
"""

from __future__ import annotations

import numpy as np


def window_rms(x: np.ndarray, n_win: int) -> np.ndarray:
    """(n_ch, n) -> (n_ch, n // n_win) RMS of consecutive windows."""
    k = x.shape[1] // n_win
    w = x[:, : k * n_win].reshape(x.shape[0], k, n_win)
    return np.sqrt(np.mean(w * w, axis=2))


def high_share(x: np.ndarray, fs_hz: float, edge_hz: float) -> np.ndarray:
    """(n_ch, n) -> per row the fraction of power above `edge_hz` (Hann-windowed FFT).
    Electrosurgery is broadband (much power at high frequency); an A-train or a burst is not."""
    x = x - x.mean(axis=1, keepdims=True)
    p = np.abs(np.fft.rfft(x * np.hanning(x.shape[1]), axis=1)) ** 2
    f = np.fft.rfftfreq(x.shape[1], 1.0 / fs_hz)
    total = p[:, 1:].sum(axis=1)
    return np.where(total > 0, p[:, f >= edge_hz].sum(axis=1) / np.maximum(total, 1e-300), 0.0)


def sinusoid_peak(x: np.ndarray, fs_hz: float) -> tuple[float, float]:
    """(peak frequency Hz, fraction of power within +/- 1 bin of it) of a 1-D segment."""
    w = np.hanning(x.size)
    p = np.abs(np.fft.rfft((x - x.mean()) * w)) ** 2
    f = np.fft.rfftfreq(x.size, 1.0 / fs_hz)
    k = int(np.argmax(p[1:])) + 1
    total = float(p[1:].sum())
    if total <= 0:
        return 0.0, 0.0
    return float(f[k]), float(p[max(1, k - 1): k + 2].sum() / total)


def is_a_train(x: np.ndarray, fs_hz: float, band_hz: tuple[float, float],
               min_concentration: float) -> tuple[bool, float, float]:
    """(A-train?, frequency Hz, concentration) of a segment of active EMG."""
    f, c = sinusoid_peak(x, fs_hz)
    return band_hz[0] <= f <= band_hz[1] and c >= min_concentration, f, c

"""Seeded simulated SSEP cases at sweep level for the detection benchmark.

Each sweep is a padded segment of continuous-like noise (1/f^2 EEG, broadband EMG/amplifier
floor, 50 Hz mains and its 3rd harmonic at random phase — the stimulus rate is not a mains
subharmonic — ECG QRS spikes at random times, electrocautery bursts lasting seconds, movement
transients) plus the cortical N20/P25 response with sweep-to-sweep amplitude (15 %) and latency
(0.2 ms) jitter. The standard conditioning (band-pass 30-1000 Hz + 50 Hz notch, zero-phase on
the padded segment) is applied, and the analysis window is cut out.

Sweeps are produced in chunks so an 8-hour case never sits in memory at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import signal

FS_HZ = 4000.0
PRE_MS, POST_MS = 10.0, 50.0
WINDOW_MS = (10.0, 45.0)  # analysis window for the template (N20/P25 and around)
PAD_S = 0.1
N20_MS, P25_MS = 19.5, 25.0


@dataclass(frozen=True)
class Case:
    """A scenario: what happens to the response over time and which artefacts occur."""

    name: str
    duration_s: float = 1800.0
    rate_hz: float = 4.7
    change_at_s: float | None = 600.0
    drop: float = 0.0  # fraction of amplitude lost
    ramp_s: float = 0.0  # 0: abrupt
    latency_shift_ms: float = 0.0
    fade_per_h: float = 0.0  # global anaesthetic fade (fraction per hour, from t=0)
    noise_scale: float = 1.0  # multiplies every noise component
    cautery_per_h: float = 6.0  # bursts per hour, each 2-8 s
    movement_per_h: float = 4.0
    amplitude_uv: float = 1.5  # N20 and P25 each; peak-to-peak ~3 µV


def t_ms() -> np.ndarray:
    return np.arange(int(-PRE_MS * FS_HZ / 1000), int(POST_MS * FS_HZ / 1000)) / FS_HZ * 1000


def window_slice() -> slice:
    t = t_ms()
    return slice(int(np.searchsorted(t, WINDOW_MS[0])), int(np.searchsorted(t, WINDOW_MS[1])))


def conditioning_sos() -> np.ndarray:
    bp = signal.butter(2, [30.0, 1000.0], btype="bandpass", fs=FS_HZ, output="sos")
    b, a = signal.iirnotch(50.0, 30.0, fs=FS_HZ)
    return np.vstack([bp, signal.tf2sos(b, a)])


def truth(case: Case, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True amplitude ratio and latency shift (ms) at stimulus times t_s."""
    ratio = np.ones_like(t_s) * 1.0
    shift = np.zeros_like(t_s)
    if case.change_at_s is not None:
        dt = t_s - case.change_at_s
        frac = np.clip(dt / case.ramp_s, 0.0, 1.0) if case.ramp_s > 0 else (dt >= 0).astype(float)
        ratio = 1.0 - case.drop * frac
        shift = case.latency_shift_ms * frac
    ratio = ratio * (1.0 - case.fade_per_h) ** (t_s / 3600.0)  # fade: a fraction per hour
    return ratio, shift


def _response(n: int, lat_shift_ms: np.ndarray, ampl: np.ndarray, t: np.ndarray) -> np.ndarray:
    n20 = N20_MS + lat_shift_ms[:, None]
    p25 = P25_MS + lat_shift_ms[:, None] * 1.1
    wave = -np.exp(-0.5 * ((t[None, :] - n20) / 1.6) ** 2) + np.exp(
        -0.5 * ((t[None, :] - p25) / 2.6) ** 2)
    return ampl[:, None] * wave


def _pink(rng: np.random.Generator, k: int, n: int, exponent: float) -> np.ndarray:
    """(k, n) Gaussian noise with a 1/f^exponent power spectrum, unit variance."""
    spec = np.fft.rfft(rng.standard_normal((k, n)), axis=1)
    f = np.fft.rfftfreq(n, 1 / FS_HZ)
    f[0] = f[1]
    spec *= f ** (-exponent / 2)
    x = np.fft.irfft(spec, n=n, axis=1)
    return x / x.std(axis=1, keepdims=True)


def sweeps(case: Case, seed: int, chunk: int = 4000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (conditioned sweeps (k, m) in the analysis window, stimulus times (k,) s)."""
    rng = np.random.default_rng(seed)
    n_sweeps = int(case.duration_s * case.rate_hz)
    # stimulus times: the site's rate +-5 % jitter (stimulators randomise to avoid mains lock)
    period = 1.0 / case.rate_hz
    t_stim = np.cumsum(period * (1.0 + 0.05 * rng.uniform(-1, 1, n_sweeps)))
    hours = case.duration_s / 3600.0
    bursts = _events(rng, case.cautery_per_h * hours, case.duration_s, (2.0, 8.0))
    moves = _events(rng, case.movement_per_h * hours, case.duration_s, (0.5, 2.0))
    t_seg = t_ms()
    pad = int(PAD_S * FS_HZ)
    n_seg = t_seg.size + 2 * pad
    t_full = (np.arange(n_seg) - pad - int(PRE_MS * FS_HZ / 1000)) / FS_HZ * 1000
    sos = conditioning_sos()
    win = window_slice()
    for i0 in range(0, n_sweeps, chunk):
        ts = t_stim[i0 : i0 + chunk]
        k = ts.size
        ratio, shift = truth(case, ts)
        ampl = case.amplitude_uv * ratio * (1 + 0.15 * rng.standard_normal(k))
        lat = shift + 0.2 * rng.standard_normal(k)
        x = _response(k, lat, ampl, t_full)
        ns = case.noise_scale
        x += ns * 25.0 * _pink(rng, k, n_seg, 2.0)  # EEG (broadband RMS), mostly below 30 Hz
        x += ns * 9.0 * rng.standard_normal((k, n_seg))  # EMG + amplifier floor
        tsec = t_full / 1000.0
        for f0, amp in ((50.0, 20.0), (150.0, 4.0)):
            ph = rng.uniform(0, 2 * np.pi, (k, 1))
            x += ns * amp * np.sin(2 * np.pi * f0 * tsec[None, :] + ph)
        # ECG: one QRS (~10 ms wide, 15 µV) at a random place in ~40 % of segments (72/min)
        has = rng.random(k) < 0.4
        pos = rng.uniform(t_full[0], t_full[-1], k)
        x += ns * 15.0 * has[:, None] * np.exp(-0.5 * ((t_full[None, :] - pos[:, None]) / 3.0) ** 2)
        for start, dur in bursts:
            hit = (ts >= start) & (ts < start + dur)
            if hit.any():
                x[hit] += 2000.0 * rng.standard_normal((int(hit.sum()), n_seg))
        for start, dur in moves:
            hit = (ts >= start) & (ts < start + dur)
            if hit.any():
                ph = rng.uniform(0, 2 * np.pi, (int(hit.sum()), 1))
                x[hit] += 300.0 * np.sin(2 * np.pi * 2.0 * tsec[None, :] + ph)
        y = signal.sosfiltfilt(sos, x, axis=1)
        yield y[:, pad : pad + t_seg.size][:, win], ts


def _events(rng: np.random.Generator, n_mean: float, duration_s: float,
            dur_range: tuple[float, float]) -> list[tuple[float, float]]:
    n = rng.poisson(n_mean)
    starts = np.sort(rng.uniform(0, duration_s, n))
    return [(float(s), float(rng.uniform(*dur_range))) for s in starts]


def true_template() -> np.ndarray:
    """The noiseless, conditioned response at baseline amplitude inside the analysis window."""
    pad = int(PAD_S * FS_HZ)
    t_seg = t_ms()
    n_seg = t_seg.size + 2 * pad
    t_full = (np.arange(n_seg) - pad - int(PRE_MS * FS_HZ / 1000)) / FS_HZ * 1000
    r = _response(1, np.zeros(1), np.array([Case("x").amplitude_uv]), t_full)
    y = signal.sosfiltfilt(conditioning_sos(), r, axis=1)
    return y[0, pad : pad + t_seg.size][window_slice()]

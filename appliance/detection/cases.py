"""Seeded simulated SSEP cases at sweep level for the detection benchmark.

Each sweep is a padded segment of continuous-like noise (1/f^2 EEG, broadband EMG/amplifier
floor, 50 Hz mains and its 3rd harmonic at random phase — the stimulus rate is not a mains
subharmonic — ECG QRS spikes at random times, electrocautery bursts lasting seconds, movement
transients) plus the cortical N20/P25 response with sweep-to-sweep amplitude (15 %) and latency
(0.2 ms) jitter. The standard conditioning (band-pass 30-1000 Hz + 50 Hz notch, zero-phase on
the padded segment) is applied, and the analysis window is cut out.

Multichannel cases (`channels=3`) record the same response through three derivations sharing a
reference electrode, as a lower-limb SSEP montage does: Cz'-Fpz (the standard P37 derivation,
channel 0, the one the conventional method and the bound's sigma_a use), C3'-Fpz and C4'-Fpz.
Noise is simulated per electrode (EEG with a spatial correlation exp(-distance / 5 cm), an
independent EMG/amplifier floor) and differenced, so the derivations share their reference's
noise. Mains, ECG, cautery and movement hit all channels at once with per-derivation gains. The
response's scalp field differs between patients (the tibial P37 is often largest ipsilateral
and reversed contralateral — "paradoxical lateralisation"), so each case draws its own
topography; channel 0's response keeps `amplitude_uv`.

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
    channels: int = 1  # 1: one derivation; 3: the montage below


# electrodes of the multichannel montage, on a flattened scalp (cm), and the derivations
ELECTRODES = ("Fpz", "Cz'", "C3'", "C4'")
_POS_CM = np.array([[0.0, 16.0], [0.0, 0.0], [-7.0, 0.0], [7.0, 0.0]])
DERIVATIONS = ((1, 0), (2, 0), (3, 0))  # (active, reference): Cz'-Fpz, C3'-Fpz, C4'-Fpz
EEG_SPACE_CONSTANT_CM = 5.0


def topography(rng: np.random.Generator) -> np.ndarray:
    """Response weight per electrode: Cz' 1, Fpz small, the laterals anywhere from reversed to
    as large as Cz' (drawn per case)."""
    return np.array([rng.uniform(-0.3, 0.1), 1.0, rng.uniform(-0.9, 0.9),
                     rng.uniform(-0.9, 0.9)])


def derivation_gains(weights: np.ndarray) -> np.ndarray:
    """Response gain per derivation, channel 0 (the standard derivation) scaled to 1."""
    g = np.array([weights[a] - weights[b] for a, b in DERIVATIONS])
    return g / g[0]


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


def _jittered_response(case: Case, ts: np.ndarray, rng: np.random.Generator,
                       t_full: np.ndarray) -> np.ndarray:
    """The response at stimulus times ts: the case's truth with 15 % amplitude and 0.2 ms
    latency jitter per sweep; (k, n)."""
    ratio, shift = truth(case, ts)
    ampl = case.amplitude_uv * ratio * (1 + 0.15 * rng.standard_normal(ts.size))
    lat = shift + 0.2 * rng.standard_normal(ts.size)
    return _response(ts.size, lat, ampl, t_full)


def _pink(rng: np.random.Generator, k: int, n: int, exponent: float) -> np.ndarray:
    """(k, n) Gaussian noise with a 1/f^exponent power spectrum, unit variance."""
    spec = np.fft.rfft(rng.standard_normal((k, n)), axis=1)
    f = np.fft.rfftfreq(n, 1 / FS_HZ)
    f[0] = f[1]
    spec *= f ** (-exponent / 2)
    x = np.fft.irfft(spec, n=n, axis=1)
    return x / x.std(axis=1, keepdims=True)


def _axes() -> tuple[np.ndarray, int, np.ndarray]:
    """(sweep times ms, pad samples, padded segment times ms): each sweep is cut from a
    segment padded on both sides so the zero-phase conditioning has no edge transients there."""
    t_seg = t_ms()
    pad = int(PAD_S * FS_HZ)
    n_seg = t_seg.size + 2 * pad
    return t_seg, pad, (np.arange(n_seg) - pad - int(PRE_MS * FS_HZ / 1000)) / FS_HZ * 1000


def _schedule(case: Case, rng: np.random.Generator) -> tuple[np.ndarray, list, list]:
    """Stimulus times (the site's rate +-5 % jitter: stimulators randomise to avoid mains
    lock), cautery bursts and movements, as (start s, duration s)."""
    n_sweeps = int(case.duration_s * case.rate_hz)
    t_stim = np.cumsum((1.0 / case.rate_hz) * (1.0 + 0.05 * rng.uniform(-1, 1, n_sweeps)))
    hours = case.duration_s / 3600.0
    bursts = _events(rng, case.cautery_per_h * hours, case.duration_s, (2.0, 8.0))
    moves = _events(rng, case.movement_per_h * hours, case.duration_s, (0.5, 2.0))
    return t_stim, bursts, moves


def sweeps(case: Case, seed: int, chunk: int = 4000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (conditioned sweeps (k, m) in the analysis window, stimulus times (k,) s); with
    `case.channels` > 1 the sweeps are (k, channels, m)."""
    if case.channels > 1:
        yield from _montage_sweeps(case, seed, chunk)
        return
    rng = np.random.default_rng(seed)
    t_stim, bursts, moves = _schedule(case, rng)
    n_sweeps = t_stim.size
    t_seg, pad, t_full = _axes()
    n_seg = t_full.size
    sos = conditioning_sos()
    win = window_slice()
    for i0 in range(0, n_sweeps, chunk):
        ts = t_stim[i0 : i0 + chunk]
        k = ts.size
        x = _jittered_response(case, ts, rng, t_full)
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
    t_seg, pad, t_full = _axes()
    r = _response(1, np.zeros(1), np.array([Case("x").amplitude_uv]), t_full)
    y = signal.sosfiltfilt(conditioning_sos(), r, axis=1)
    return y[0, pad : pad + t_seg.size][window_slice()]


def _montage_sweeps(case: Case, seed: int,
                    chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The multichannel cases (module docstring): per-electrode noise, differenced."""
    if case.channels != len(DERIVATIONS):
        raise ValueError(f"channels: {case.channels} not supported; 1 or {len(DERIVATIONS)}")
    rng = np.random.default_rng(seed)
    t_stim, bursts, moves = _schedule(case, rng)
    n_sweeps = t_stim.size
    gains = derivation_gains(topography(rng))
    n_d, n_e = len(DERIVATIONS), len(ELECTRODES)
    diff = np.zeros((n_d, n_e))
    for i, (a, b) in enumerate(DERIVATIONS):
        diff[i, a], diff[i, b] = 1.0, -1.0
    dist = np.linalg.norm(_POS_CM[:, None] - _POS_CM[None], axis=2)
    mix = np.linalg.cholesky(np.exp(-dist / EEG_SPACE_CONSTANT_CM))
    # per electrode: the standard derivation (far apart, nearly independent ends) keeps the
    # single-channel cases' 25 µV EEG and 9 µV floor
    eeg_e = 25.0 / np.sqrt(2.0 * (1.0 - np.exp(-dist[1, 0] / EEG_SPACE_CONSTANT_CM)))
    floor_e = 9.0 / np.sqrt(2.0)
    # artefact gains per derivation (fixed for the case; channel 0 as in the 1-channel cases)
    mains_g = np.r_[1.0, rng.uniform(0.5, 1.5, n_d - 1)]
    ecg_g = np.r_[1.0, rng.uniform(-1.5, 1.5, n_d - 1)]
    t_seg, pad, t_full = _axes()
    n_seg = t_full.size
    tsec = t_full / 1000.0
    sos = conditioning_sos()
    win = window_slice()
    ns = case.noise_scale
    for i0 in range(0, n_sweeps, chunk):
        ts = t_stim[i0 : i0 + chunk]
        k = ts.size
        resp = _jittered_response(case, ts, rng, t_full)  # (k, n) at gain 1
        eeg = _pink(rng, k * n_e, n_seg, 2.0).reshape(k, n_e, n_seg)
        el = ns * eeg_e * np.einsum("ij,kjn->kin", mix, eeg)
        el += ns * floor_e * rng.standard_normal((k, n_e, n_seg))
        x = np.einsum("de,ken->kdn", diff, el) + gains[None, :, None] * resp[:, None, :]
        for f0, amp in ((50.0, 20.0), (150.0, 4.0)):
            ph = rng.uniform(0, 2 * np.pi, (k, 1))
            x += ns * amp * mains_g[None, :, None] * np.sin(
                2 * np.pi * f0 * tsec[None, :] + ph)[:, None, :]
        has = rng.random(k) < 0.4
        pos = rng.uniform(t_full[0], t_full[-1], k)
        qrs = has[:, None] * np.exp(-0.5 * ((t_full[None, :] - pos[:, None]) / 3.0) ** 2)
        x += ns * 15.0 * ecg_g[None, :, None] * qrs[:, None, :]
        for start, dur in bursts:
            hit = (ts >= start) & (ts < start + dur)
            if hit.any():
                x[hit] += 2000.0 * rng.standard_normal((int(hit.sum()), n_d, n_seg))
        for start, dur in moves:
            hit = (ts >= start) & (ts < start + dur)
            if hit.any():
                ph = rng.uniform(0, 2 * np.pi, (int(hit.sum()), 1))
                x[hit] += 300.0 * np.sin(2 * np.pi * 2.0 * tsec[None, :] + ph)[:, None, :]
        y = signal.sosfiltfilt(sos, x, axis=-1)
        yield y[:, :, pad : pad + t_seg.size][:, :, win], ts

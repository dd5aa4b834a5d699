"""Quality of an average: residual noise, Fsp, SNR, split-half correlation.

All vectorised over channels: traces are (n_channels, n_times), results (n_channels,) float64.
`window` (a slice of sample indices) restricts a measure to the response interval, e.g. the
post-stimulus part of the sweep.

- residual noise (± reference, Schimmel 1967): alternate sweeps added and subtracted cancel
  the response and keep the noise; its RMS estimates the noise left in the average.
- Fsp (Elberling & Don 1984): var over time of the average * n / var of one point across
  sweeps. With no response the ratio is ~1 (F distributed); Fsp >= 3.1 means a response is
  present with ~99 % confidence: 3.1 is F(0.99; 5, 250), Elberling & Don's ~5 degrees of
  freedom of an averaged waveform and ~250 of the single point. Longer windows have more
  degrees of freedom, which makes 3.1 conservative.
- SNR dB: 20 log10(RMS of the average / residual noise); ~0 dB when there is nothing but noise.
- split-half r: Pearson correlation of the odd-sweep and even-sweep averages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALL = slice(None)


def plus_minus_average(sweeps: np.ndarray) -> np.ndarray:
    """± reference of sweeps (k, n_ch, n_t): (odd average - even average) / 2 -> (n_ch, n_t).

    For an even k this is the classic sum of alternately signed sweeps / k.
    """
    x = np.asarray(sweeps, dtype=np.float64)
    if x.ndim != 3 or len(x) < 2:
        raise ValueError(f"need sweeps (k >= 2, n_channels, n_times), got shape {x.shape}")
    return 0.5 * (x[0::2].mean(axis=0) - x[1::2].mean(axis=0))


def residual_noise_uv(sweeps_or_pm: np.ndarray, window: slice = ALL) -> np.ndarray:
    """RMS over time of the ± reference -> (n_channels,) µV.

    Pass sweeps (k, n_ch, n_t) or an already formed ± average (n_ch, n_t), e.g. an
    averager's `plus_minus`.
    """
    x = np.asarray(sweeps_or_pm, dtype=np.float64)
    pm = plus_minus_average(x) if x.ndim == 3 else x
    if pm.ndim != 2:
        raise ValueError(f"expected sweeps (k, n_ch, n_t) or ± average (n_ch, n_t), got {x.shape}")
    return np.sqrt(np.mean(pm[:, window] ** 2, axis=-1))


def single_point_var(sweeps: np.ndarray, index: int | slice) -> np.ndarray:
    """Variance across sweeps (ddof=1) at one sample -> (n_ch,).

    Given a slice, the mean of that variance over the slice's samples: the same statistic
    with a steadier denominator (a multi-point variant of Elberling & Don's single point).
    """
    x = np.asarray(sweeps, dtype=np.float64)
    v = x[:, :, index].var(axis=0, ddof=1)
    return v.mean(axis=-1) if isinstance(index, slice) else v


def fsp(average: np.ndarray, sp_var: np.ndarray, n_sweeps, window: slice = ALL) -> np.ndarray:
    """Fsp = var_t(average[window]) * n_sweeps / sp_var  -> (n_channels,).

    sp_var (n_channels,) is the variance of a single point across sweeps (`single_point_var`);
    n_sweeps scalar or (n_channels,). NaN where sp_var is 0 or n_sweeps < 2.
    """
    avg = np.asarray(average, dtype=np.float64)
    var_t = avg[:, window].var(axis=-1, ddof=1)
    n = np.asarray(n_sweeps, dtype=np.float64)
    sp = np.asarray(sp_var, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = var_t * n / sp
    return np.where((sp > 0) & (n >= 2), out, np.nan)


def snr_db(average: np.ndarray, noise_uv: np.ndarray, window: slice = ALL) -> np.ndarray:
    """20 log10(RMS of the average in `window` / noise_uv) -> (n_channels,); NaN if noise is 0."""
    avg = np.asarray(average, dtype=np.float64)
    rms = np.sqrt(np.mean(avg[:, window] ** 2, axis=-1))
    noise = np.asarray(noise_uv, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 20.0 * np.log10(rms / noise)
    return np.where(noise > 0, out, np.nan)


def split_half_r(odd: np.ndarray, even: np.ndarray, window: slice = ALL) -> np.ndarray:
    """Pearson r over time between the two half averages -> (n_channels,); NaN if flat."""
    a = np.asarray(odd, dtype=np.float64)[:, window]
    b = np.asarray(even, dtype=np.float64)[:, window]
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(axis=-1) / den, np.nan)


@dataclass(frozen=True)
class Quality:
    """Per-channel quality of one average; every field (n_channels,) float64."""

    residual_noise_uv: np.ndarray
    fsp: np.ndarray
    snr_db: np.ndarray
    split_half_r: np.ndarray


def measure(averager, window: slice = ALL, sp_index: int | slice | None = None) -> Quality:
    """All four measures from an averager (any in `dsp.averagers`) over `window`.

    Fsp's single-point noise comes from the averager's `noise_var` at `sp_index` (default:
    the middle of the window; a slice averages it over those points, e.g. `sp_index=window`),
    which for a plain average is sp_var / n as in Elberling & Don; for weighted averagers it
    is the variance of the weighted mean's noise, so the same threshold applies.
    """
    avg = averager.average
    idx = np.arange(avg.shape[-1])[window]
    if sp_index is None:
        sp_index = int(idx[len(idx) // 2]) if len(idx) else 0
    rn = residual_noise_uv(averager.plus_minus, window)
    noise_var = averager.noise_var[:, sp_index]
    if isinstance(sp_index, slice):
        noise_var = noise_var.mean(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = avg[:, window].var(axis=-1, ddof=1) / noise_var
    f = np.where(noise_var > 0, f, np.nan)
    odd, even = averager.halves()
    return Quality(rn, f, snr_db(avg, rn, window), split_half_r(odd, even, window))

"""Artefact rejection of sweeps, counted by reason.

A sweep is rejected when any checked channel shows one of (first match wins, in this order,
so the counts add up to the number of rejected sweeps):

- 'saturated': any saturated sample (the front end's mask), or |x| >= rail_uv
- 'flat':      std over time below flat_std_uv (electrode off, shorted input)
- 'cautery':   high-frequency RMS (second difference, or above cautery_hz) more than
               cautery_factor times its
               running median per channel — electrocautery shows as a broadband burst;
               a rise that lasts longer than ~history/2 sweeps becomes the new median, so
               rejection never locks monitoring out for good
- 'amplitude': peak-to-peak (or absolute) amplitude above amplitude_uv (per channel)
"""

from __future__ import annotations

import numpy as np
from scipy import signal

REASONS = ("saturated", "flat", "cautery", "amplitude")


class Rejector:
    """`check(sweeps (k, n_ch, n_t), saturated=None) -> (keep (k,) bool, reasons dict)`.

    amplitude_uv: scalar or (n_ch,) threshold; mode 'peak_to_peak' or 'absolute'.
    cautery_hz: lower edge of a 2nd-order high-pass for the cautery measure; None (default)
    uses the second difference instead (gain 4 sin^2(pi f / fs): +12 dB/octave, ~0.15 at 1 kHz
    and 2 at fs/4 for 16 kSPS) — as telling for a broadband burst and no filter call per
    batch. Also used when cautery_hz is above 0.45 fs.
    The cautery reference is the median over the last `history` sweeps' HF RMS (the current
    batch joins it while fewer than `min_history` are known; below that no cautery test).
    `counts` holds the running totals by reason; `checked` and `rejected` the sweep totals.
    """

    def __init__(self, fs_hz: float, amplitude_uv=100.0, mode: str = "peak_to_peak",
                 flat_std_uv: float = 0.05, rail_uv: float | None = None,
                 cautery_hz: float | None = None, cautery_factor: float = 5.0,
                 history: int = 64, min_history: int = 8) -> None:
        if mode not in ("peak_to_peak", "absolute"):
            raise ValueError(f"mode must be 'peak_to_peak' or 'absolute', got {mode!r}")
        self.fs_hz = float(fs_hz)
        self.amplitude_uv = np.asarray(amplitude_uv, dtype=np.float64)
        self.mode = mode
        self.flat_std_uv = float(flat_std_uv)
        self.rail_uv = rail_uv
        self.cautery_factor = float(cautery_factor)
        self.history = int(history)
        self.min_history = int(min_history)
        self._hp = (signal.butter(2, cautery_hz, "highpass", fs=fs_hz, output="sos")
                    if cautery_hz is not None and cautery_hz < 0.45 * fs_hz else None)
        self.reset()

    def reset(self) -> None:
        self.counts = dict.fromkeys(REASONS, 0)
        self.checked = 0
        self.rejected = 0
        self._hf_history: np.ndarray | None = None  # (m, n_ch) HF RMS of recent sweeps

    def hf_rms_uv(self, sweeps: np.ndarray) -> np.ndarray:
        """RMS of the high-frequency content: (k, n_ch, n_t) -> (k, n_ch)."""
        if self._hp is not None:
            hf = signal.sosfilt(self._hp, sweeps, axis=-1)
        else:
            hf = sweeps[..., 2:] - 2 * sweeps[..., 1:-1] + sweeps[..., :-2]
        return np.sqrt(np.mean(hf * hf, axis=-1))

    def flags(self, sweeps: np.ndarray, saturated=None) -> dict[str, np.ndarray]:
        """Each reason -> (k, n_ch) bool, before the first-match ordering."""
        x = np.asarray(sweeps, dtype=np.float64)
        if x.ndim != 3:
            raise ValueError(f"sweeps must be (k, n_channels, n_times), got shape {x.shape}")
        sat = np.zeros(x.shape[:2], dtype=bool)
        if saturated is not None:
            sat |= np.asarray(saturated, dtype=bool).any(axis=-1)
        if self.rail_uv is not None:
            sat |= (np.abs(x) >= self.rail_uv).any(axis=-1)
        flat = x.std(axis=-1) < self.flat_std_uv
        if self.mode == "peak_to_peak":
            amp = x.max(axis=-1) - x.min(axis=-1)
        else:
            amp = np.abs(x).max(axis=-1)
        big = amp > self.amplitude_uv
        hf = self.hf_rms_uv(x) if x.shape[-1] > 2 else np.zeros(x.shape[:2])
        hist = self._hf_history
        # The reference is the history alone once it is long enough, so a batch that is all
        # cautery cannot raise its own bar; until then the batch helps.
        ref = hf if hist is None else (hist if len(hist) >= self.min_history
                                       else np.concatenate([hist, hf]))
        if len(ref) >= self.min_history:
            cautery = hf > self.cautery_factor * np.median(ref, axis=0)
        else:
            cautery = np.zeros_like(flat)
        # Cautery sweeps enter the history too (flat and saturated ones do not): a lasting
        # rise in high-frequency noise becomes the new normal after ~history/2 sweeps instead
        # of locking every later sweep out.
        live = hf[~sat.any(axis=1) & ~flat.any(axis=1)]
        if len(live):
            hist = live if hist is None else np.concatenate([hist, live])
            self._hf_history = hist[-self.history:]
        return {"saturated": sat, "flat": flat, "cautery": cautery, "amplitude": big}

    def check(self, sweeps: np.ndarray, saturated=None) -> tuple[np.ndarray, dict[str, int]]:
        """-> keep (k,) bool and this batch's rejections by reason (each sweep counted once)."""
        flags = self.flags(sweeps, saturated)
        k = len(next(iter(flags.values())))
        keep = np.ones(k, dtype=bool)
        reasons = {}
        for reason in REASONS:
            hit = flags[reason].any(axis=1) & keep
            reasons[reason] = int(hit.sum())
            keep &= ~hit
            self.counts[reason] += reasons[reason]
        self.checked += k
        self.rejected += int((~keep).sum())
        return keep, reasons

"""Averagers of sweeps, all vectorised over sweeps, channels and time.

Every averager takes `add(sweeps (k, n_channels, n_times))` and offers:

- `average`        (n_channels, n_times) float64, NaN until a sweep is in
- `n_sweeps`       sweeps currently contributing
- `halves()`       (odd, even): averages of the 1st, 3rd, 5th ... and 2nd, 4th ... sweeps
                   (reproducibility: split-half correlation; their half-difference is the
                   ± reference)
- `plus_minus`     (odd - even) / 2: signal cancels, noise stays (residual noise estimate)
- `noise_var`      (n_channels, n_times) variance of the average's noise at each sample,
                   estimated from the spread of the weighted sweeps (for Fsp)
- `n_effective`    (n_channels,) (sum w)^2 / sum w^2: sweeps' worth of noise reduction
- `reset()`

They all keep the same weighted sums per parity (odd / even sweep): sum w, sum w^2,
sum w x, sum w^2 x, sum w^2 x^2 — so each update is O(n_channels * n_times) per sweep and
the quality measures come from the sums, not from stored sweeps.
"""

from __future__ import annotations

import numpy as np


class _WeightedSums:
    """Per-parity sums of weights and weighted sweeps; the common base of every averager."""

    def __init__(self, n_channels: int, n_times: int) -> None:
        self.n_channels = int(n_channels)
        self.n_times = int(n_times)
        self.reset()

    def reset(self) -> None:
        c, t = self.n_channels, self.n_times
        self._w = np.zeros((2, c))
        self._w2 = np.zeros((2, c))
        self._wx = np.zeros((2, c, t))
        self._w2x = np.zeros((2, c, t))
        self._w2x2 = np.zeros((2, c, t))
        self._count = 0  # sweeps ever added since reset: sets each new sweep's parity
        self.n_sweeps = 0

    def _check(self, sweeps: np.ndarray) -> np.ndarray:
        x = np.asarray(sweeps, dtype=np.float64)
        if x.ndim != 3 or x.shape[1:] != (self.n_channels, self.n_times):
            raise ValueError(
                f"sweeps must be (k, n_channels={self.n_channels}, n_times={self.n_times}), "
                f"got shape {x.shape}"
            )
        return x

    def _accumulate(self, x: np.ndarray, w: np.ndarray | None, parity: np.ndarray,
                    sign: float = 1.0) -> None:
        """x (k, c, t), w (k, c) weights or None for all ones, parity (k,) 0 = odd sweep."""
        for p in (0, 1):
            sel = parity == p
            n = int(sel.sum())
            if n == 0:
                continue
            xs = x[sel] if n < len(x) else x
            if w is None:  # unit weights: w = w^2, so the w^2 sums are the plain ones
                sx = xs.sum(axis=0)
                self._w[p] += sign * n
                self._w2[p] += sign * n
                self._wx[p] += sign * sx
                self._w2x[p] += sign * sx
                self._w2x2[p] += sign * np.einsum("kct,kct->ct", xs, xs)
                continue
            ws = w[sel]
            w2 = ws * ws
            self._w[p] += sign * ws.sum(axis=0)
            self._w2[p] += sign * w2.sum(axis=0)
            self._wx[p] += sign * np.einsum("kc,kct->ct", ws, xs)
            w2x = w2[:, :, None] * xs
            self._w2x[p] += sign * w2x.sum(axis=0)
            self._w2x2[p] += sign * np.einsum("kct,kct->ct", w2x, xs)

    def _scale(self, factor: float) -> None:
        """Multiply every weight by `factor` (exponential forgetting)."""
        f2 = factor * factor
        self._w *= factor
        self._wx *= factor
        self._w2 *= f2
        self._w2x *= f2
        self._w2x2 *= f2

    def _next_parity(self, k: int) -> np.ndarray:
        parity = (self._count + np.arange(k)) % 2
        self._count += k
        return parity

    @staticmethod
    def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        den = den[..., None]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

    @property
    def average(self) -> np.ndarray:
        return self._ratio(self._wx.sum(axis=0), self._w.sum(axis=0))

    def halves(self) -> tuple[np.ndarray, np.ndarray]:
        return self._ratio(self._wx[0], self._w[0]), self._ratio(self._wx[1], self._w[1])

    @property
    def plus_minus(self) -> np.ndarray:
        odd, even = self.halves()
        return 0.5 * (odd - even)

    @property
    def n_effective(self) -> np.ndarray:
        w, w2 = self._w.sum(axis=0), self._w2.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(w2 > 0, w * w / np.where(w2 > 0, w2, 1.0), 0.0)

    @property
    def noise_var(self) -> np.ndarray:
        """sum w^2 (x - mean)^2 / (sum w)^2, scaled by n/(n-1) so plain averaging is unbiased."""
        w = self._w.sum(axis=0)[:, None]
        m = self.average
        s = (self._w2x2.sum(axis=0) - 2 * m * self._w2x.sum(axis=0)
             + m * m * self._w2.sum(axis=0)[:, None])
        n_eff = self.n_effective[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            v = np.maximum(s, 0.0) / (w * w) * n_eff / (n_eff - 1)
        return np.where(n_eff > 1, v, np.nan)


class CumulativeAverager(_WeightedSums):
    """Plain ensemble average of every sweep added since the last reset."""

    def add(self, sweeps: np.ndarray) -> None:
        x = self._check(sweeps)
        if len(x) == 0:
            return
        self._accumulate(x, None, self._next_parity(len(x)))
        self.n_sweeps += len(x)


class MovingAverager(_WeightedSums):
    """Average of the last `n` sweeps: ring buffer plus running sums, O(1) per sweep.

    The sums are rebuilt from the ring every `n` replacements so rounding cannot drift.
    """

    def __init__(self, n: int, n_channels: int, n_times: int) -> None:
        if n < 1:
            raise ValueError(f"moving window must hold >= 1 sweep, got n={n!r}")
        self.n = int(n)
        super().__init__(n_channels, n_times)

    def reset(self) -> None:
        super().reset()
        self._ring = np.zeros((self.n, self.n_channels, self.n_times))
        self._ring_parity = np.zeros(self.n, dtype=np.int64)
        self._replaced = 0

    def add(self, sweeps: np.ndarray) -> None:
        x = self._check(sweeps)
        if len(x) == 0:
            return
        start = self._count  # index (since reset) of x[0]; sweep i lives in slot i % n
        stored_from = start - self.n_sweeps
        parity = self._next_parity(len(x))
        keep_from = self._count - self.n  # after this add, sweeps before this index are out
        # Older incoming sweeps would leave at once: only the last n matter.
        x, parity = x[-self.n:], parity[-self.n:]
        k = len(x)
        slots = (self._count - k + np.arange(k)) % self.n
        leaving = max(0, min(keep_from - stored_from, self.n_sweeps))
        if leaving:
            old = (stored_from + np.arange(leaving)) % self.n
            self._accumulate(self._ring[old], None, self._ring_parity[old], -1.0)
            self._replaced += leaving
        self._ring[slots] = x
        self._ring_parity[slots] = parity
        self._accumulate(x, None, parity)
        self.n_sweeps = min(self.n, self.n_sweeps + k)
        if self._replaced >= self.n:
            self._rebuild()

    def latest(self, k: int) -> np.ndarray:
        """The last min(k, n_sweeps) sweeps in the window, oldest first (k, n_ch, n_t)."""
        k = max(0, min(int(k), self.n_sweeps))
        return self._ring[(self._count - k + np.arange(k)) % self.n]

    def _rebuild(self) -> None:
        count, n_sweeps = self._count, self.n_sweeps
        ring, ring_parity = self._ring, self._ring_parity
        super().reset()
        self._count, self.n_sweeps = count, n_sweeps
        self._ring, self._ring_parity, self._replaced = ring, ring_parity, 0
        filled = (count - n_sweeps + np.arange(n_sweeps)) % self.n
        self._accumulate(ring[filled], None, ring_parity[filled])


class ExponentialAverager(_WeightedSums):
    """Exponentially weighted average: each sweep's weight shrinks by (1 - alpha) per newer one.

    average = sum (1 - alpha)^age x / sum (1 - alpha)^age, so the first sweep alone is the
    average and early sweeps are not biased toward it; after a few 1/alpha sweeps this is the
    recursion avg <- (1 - alpha) avg + alpha x. n_effective tends to (2 - alpha) / alpha.
    """

    def __init__(self, alpha: float, n_channels: int, n_times: int) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        self.alpha = float(alpha)
        super().__init__(n_channels, n_times)

    def add(self, sweeps: np.ndarray) -> None:
        x = self._check(sweeps)
        k = len(x)
        if k == 0:
            return
        keep = 1.0 - self.alpha
        self._scale(keep ** k)
        w = np.repeat((keep ** np.arange(k - 1, -1, -1))[:, None], self.n_channels, axis=1)
        self._accumulate(x, w, self._next_parity(k))
        self.n_sweeps += k


class WeightedAverager(_WeightedSums):
    """Noise-weighted (Bayesian) averaging, after Hoke et al. 1984.

    Sweeps are taken in blocks of `block_size`; each block's noise variance per channel is
    the variance across its sweeps (mean over time), and its sweeps enter the average with
    weight 1 / that variance — noisy stretches (movement, cautery tails) count for less.
    Sweeps of an incomplete block wait in `pending` and are not in `average` / `n_sweeps`.
    """

    def __init__(self, block_size: int, n_channels: int, n_times: int) -> None:
        if block_size < 2:
            raise ValueError(f"block_size must be >= 2 to estimate a variance, got {block_size!r}")
        self.block_size = int(block_size)
        super().__init__(n_channels, n_times)

    def reset(self) -> None:
        super().reset()
        self._pending = np.empty((0, self.n_channels, self.n_times))

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, sweeps: np.ndarray) -> None:
        x = self._check(sweeps)
        if len(x) == 0:
            return
        x = np.concatenate([self._pending, x]) if len(self._pending) else x
        n_blocks = len(x) // self.block_size
        used = n_blocks * self.block_size
        self._pending = x[used:].copy()
        if n_blocks == 0:
            return
        blocks = x[:used].reshape(n_blocks, self.block_size, self.n_channels, self.n_times)
        var = blocks.var(axis=1, ddof=1).mean(axis=-1)  # (n_blocks, n_channels)
        floor = np.finfo(np.float64).tiny
        w = np.repeat(1.0 / np.maximum(var, floor), self.block_size, axis=0)
        self._accumulate(x[:used], w, self._next_parity(used))
        self.n_sweeps += used

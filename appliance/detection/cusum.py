"""One-sided CUSUM on log-likelihood-ratio increments, with the threshold set from a target
in-control run length (ARL0) by Siegmund's approximation.

For Gaussian observations with per-step KL divergence I = delta^2 / 2 (delta = shift / sd),
Siegmund (1985, Sequential Analysis, ch. 2) gives ARL0 ~= (exp(w) - w - 1) / I with
w = h + 2 * 0.583 * delta (the overshoot correction). We solve it for h. Detection delay is then
about h / I sweeps: the Lorden bound 2 ln(ARL0) sigma^2 / Delta^2 up to the log factor.
"""

from __future__ import annotations

import math

import numpy as np


def threshold_for_arl0(arl0: float, delta: float) -> float:
    """Threshold h on the LLR-CUSUM for in-control ARL `arl0` (sweeps), standardised shift delta."""
    info = delta**2 / 2.0
    target = arl0 * info
    lo, hi = 0.0, 60.0
    for _ in range(100):  # bisection on (e^w - w - 1) = target
        mid = (lo + hi) / 2.0
        if math.exp(mid) - mid - 1.0 < target:
            lo = mid
        else:
            hi = mid
    return max(lo - 1.166 * delta, 0.5)


class Cusum:
    """S_k = max(0, S_{k-1} + l_k); fires when S_k >= h. Tracks where the current run started
    (the change-point estimate) and how many observations it holds."""

    def __init__(self, h: float) -> None:
        self.h = float(h)
        self.s = 0.0
        self.run_start = 0  # index of the first observation of the current positive run
        self.n = 0  # observations seen

    def update(self, llr: np.ndarray) -> int:
        """Feed increments; return the index (within `llr`) where it first fires, or -1."""
        for i, v in enumerate(np.asarray(llr, dtype=np.float64)):
            if self.s <= 0.0:
                self.run_start = self.n
            self.s = max(0.0, self.s + float(v))
            self.n += 1
            if self.s >= self.h:
                return i
        return -1

    def reset(self) -> None:
        self.s = 0.0
        self.run_start = self.n

    @property
    def run_length(self) -> int:
        return self.n - self.run_start if self.s > 0 else 0

"""A reference level that follows slow change (anaesthetic fade, cooling) but not a drop.

The detector tests each sweep against this level. It learns only from observations older than
`lag_obs`, through an exponentially weighted mean (a running mean until it holds `tau_obs`), so a
change is tested for `lag_obs` sweeps before any of it can be absorbed.

An EWMA of a ramp trails it by tau, and the lag adds to that: under a 30 %/h fade the level would
sit ~4 % above the truth, a bias the drop tests accumulate into false alarms. So the level's
slope over `slope_window_obs` carries it forward by lag + tau. The slope is clipped to the
fastest physiological drift we accept as "global" (`max_slope_per_obs`, in the level's units),
which also bounds how much of a real drop the extrapolation can absorb.
"""

from __future__ import annotations

from collections import deque

import numpy as np

_SLOPE_STEP = 16  # the level's history is kept every this many observations


class TrackedReference:
    def __init__(self, level: float, n: int, tau_obs: float, lag_obs: int,
                 slope_window_obs: int, max_slope_per_obs: float) -> None:
        self.level = float(level)
        self.n = int(n)  # observations the level is built from
        self.tau_obs = float(tau_obs)
        self.lag_obs = int(lag_obs)
        self.max_slope_per_obs = float(max_slope_per_obs)
        self.slope = 0.0  # per observation
        self._pending: deque[float] = deque()
        self._history: deque[float] = deque(maxlen=max(slope_window_obs // _SLOPE_STEP, 2) + 1)
        self._fed = 0

    @property
    def value(self) -> float:
        """The level carried forward to now (the lag and the EWMA's own trail)."""
        return self.level + self.slope * (self.lag_obs + self.tau_obs)

    @property
    def n_effective(self) -> float:
        """Observations' worth of information in `value`, for the tests' sd inflation: an EWMA
        holds 2 tau; extrapolating a slope estimated from two such levels W apart adds
        2 ((lag + tau) / W)^2 of the level's own variance."""
        n = min(float(self.n), 2.0 * self.tau_obs)
        if self.slope_active:
            n /= 1.0 + 2.0 * ((self.lag_obs + self.tau_obs) / self._span_obs) ** 2
        return max(n, 1.0)

    @property
    def _span_obs(self) -> int:
        return (len(self._history) - 1) * _SLOPE_STEP

    @property
    def slope_active(self) -> bool:
        """From half the window on (a fade runs from the start of a case: waiting for the whole
        window leaves its first half hour uncorrected); the sd inflation follows the span."""
        return 2 * (len(self._history) - 1) >= self._history.maxlen - 1

    def push(self, x: float, clip: float) -> None:
        """Queue observation x; the one leaving the lag moves the level (clipped to +-clip
        around it: single outliers must not move the reference)."""
        self._pending.append(float(x))
        if len(self._pending) <= self.lag_obs:
            return
        old = self._pending.popleft()
        old = self.level + float(np.clip(old - self.level, -clip, clip))
        self.n += 1
        self.level += max(1.0 / self.tau_obs, 1.0 / self.n) * (old - self.level)
        self._fed += 1
        if self._fed % _SLOPE_STEP == 0:
            self._history.append(self.level)
            if self.slope_active:
                limit = self.max_slope_per_obs
                self.slope = float(np.clip(
                    (self._history[-1] - self._history[0]) / self._span_obs, -limit, limit))

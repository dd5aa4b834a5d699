"""A reference level that follows slow change (anaesthetic fade, cooling) but not a drop.

The detector tests each sweep against this level. It learns only from observations older than
`lag_obs`, through an exponentially weighted mean (a running mean until it holds `tau_obs`), so a
change is tested for `lag_obs` sweeps before any of it can be absorbed.

An EWMA of a ramp trails it by tau, and the lag adds to that: under a 30 %/h fade the level would
sit ~4 % above the truth, a bias the drop tests accumulate into false alarms. So the level's
slope over `slope_window_obs` carries it forward by lag + tau. The slope is clipped to the
fastest physiological drift we accept as "global" (`max_slope_per_obs`, in the level's units),
which also bounds how much of a real drop the extrapolation can absorb.

At the issue's higher noise the slope over half the window is mostly noise: it moved the
reference by up to the clip (~9 %) either way when it first took effect, which on family A
hid a 60 % drop on one seed and would raise a false one on another. So the slope is shrunk
by its own precision: s * max(0, 1 - k var(s) / s^2) (`SLOPE_SHRINK_K`), var(s) from the
observations' scatter about the level. A real fade's slope keeps most of itself; a slope of
noise keeps little or nothing.
"""

from __future__ import annotations

from collections import deque

import numpy as np

_SLOPE_STEP = 16  # the level's history is kept every this many observations
# the slope's shrinkage s * max(0, 1 - k var(s) / s^2). k = 1 (positive-part James-Stein) takes
# the extrapolation's RMS error on a stable reference at the higher noise from 1.95x to 1.4x of
# no slope at all (tests/detection/test_detection_reference.py). k = 2 (none below 1.4 sigma)
# took too much of a 30 %/h fade's slope: the fade test's false alarm came back
SLOPE_SHRINK_K = 1.0


class TrackedReference:
    def __init__(self, level: float, n: int, tau_obs: float, lag_obs: int,
                 slope_window_obs: int, max_slope_per_obs: float) -> None:
        self.level = float(level)
        self.n = int(n)  # observations the level is built from
        self.tau_obs = float(tau_obs)
        self.lag_obs = int(lag_obs)
        self.max_slope_per_obs = float(max_slope_per_obs)
        self.slope = 0.0  # per observation, shrunk by its precision (module docstring)
        self.slope_gain = 0.0  # the shrinkage factor applied to the raw slope
        self._var_obs = 0.0  # scatter of the (clipped) observations about the level
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
            g = self.slope_gain
            n /= 1.0 + 2.0 * (g * (self.lag_obs + self.tau_obs) / self._span_obs) ** 2
        return max(n, 1.0)

    def _slope_var(self) -> float:
        """Variance of the raw slope: two EWMA levels `span` apart differ by
        2 var(L) (1 - (1 - a)^span), var(L) = var_obs a / (2 - a), a the EWMA's weight."""
        a = max(1.0 / self.tau_obs, 1.0 / self.n)
        var_level = self._var_obs * a / (2.0 - a)
        span = self._span_obs
        return 2.0 * var_level * (1.0 - (1.0 - a) ** span) / span**2

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
        self._fed += 1
        # its own running mean until it holds tau (it starts from nothing, the level does not)
        self._var_obs += (max(1.0 / self.tau_obs, 1.0 / self._fed)
                          * ((old - self.level) ** 2 - self._var_obs))
        self.level += max(1.0 / self.tau_obs, 1.0 / self.n) * (old - self.level)
        if self._fed % _SLOPE_STEP == 0:
            self._history.append(self.level)
            if self.slope_active:
                limit = self.max_slope_per_obs
                raw = (self._history[-1] - self._history[0]) / self._span_obs
                self.slope_gain = (max(0.0, 1.0 - SLOPE_SHRINK_K * self._slope_var() / raw**2)
                                   if raw else 0.0)
                self.slope = float(np.clip(raw * self.slope_gain, -limit, limit))

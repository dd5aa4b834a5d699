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
observations' scatter about the level and each level's own variance. A real fade's slope keeps
most of itself; a slope of noise keeps little or nothing. The level starts as a running mean of
the baseline's 600 sweeps, far noisier than the EWMA it becomes (var 1/n against a/(2 - a)):
taken as a steady EWMA throughout, the first slope's variance was ~6x too small, and the
level's start-up error passed for a trend (family A seed 2, 30 %/h fade: a slope of +12 %/h).

While a "possible" (medium) alarm is raised the detector holds the reference (`push(...,
held=True)`): it may move no faster than the fastest global fade (`max_slope_per_obs`) from
where the hold began, and its slope stays as it was. Frozen outright, a false "possible" under a
30 %/h fade could never clear: the fade went on below the frozen level, and the drop tests
raised a false high alarm minutes later (family B seed 4: "possible" at 764 s, HIGH at 1,619 s).
Bounded, a fade is followed, and a real drop moves it by at most 40 % of baseline per hour of
hold (0.7 % a minute). Released, the level takes the value its EWMA reached meanwhile: a hold
delays what the data say and discards none of it (the detector also holds while a drop test is
elevated, i.e. after low sweeps, and keeping the bounded level would bias it upward).
"""

from __future__ import annotations

import math
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
        # (level, its variance in units of the observations', log of the weight it keeps)
        self._history: deque[tuple[float, float, float]] = deque(
            maxlen=max(slope_window_obs // _SLOPE_STEP, 2) + 1)
        self._level_var = 1.0 / max(self.n, 1)  # a mean of n observations
        self._log_keep = 0.0  # log of the product of (1 - alpha) over every update
        self._fed = 0
        # a hold: the level it began from, observations since, and the unbounded EWMA
        self._hold: tuple[float, int, float] | None = None

    @property
    def value(self) -> float:
        """The level carried forward to now (the lag and the EWMA's own trail)."""
        return self.level + self.slope * (self.lag_obs + self.tau_obs)

    @property
    def n_effective(self) -> float:
        """Observations' worth of information in `value`, for the tests' sd inflation: one over
        its variance, the level's plus the extrapolated slope's (lag + tau)^2 var(g s)."""
        v = self._level_var
        if self.slope_active:
            v += (self.slope_gain * (self.lag_obs + self.tau_obs)) ** 2 * self._slope_var(1.0)
        return max(1.0 / v, 1.0)

    def _slope_var(self, var_obs: float | None = None) -> float:
        """Variance of the raw slope (L2 - L1) / span: each update L += a (x - L) keeps (1 - a)
        of L1 in L2 and adds independent noise, so var(L2 - L1) = v2 + v1 - 2 keep v1, with v
        each level's variance in units of the observations'."""
        _, v1, k1 = self._history[0]
        _, v2, k2 = self._history[-1]
        var_obs = self._var_obs if var_obs is None else var_obs
        return var_obs * (v2 + v1 - 2.0 * math.exp(k2 - k1) * v1) / self._span_obs**2

    @property
    def _span_obs(self) -> int:
        return (len(self._history) - 1) * _SLOPE_STEP

    @property
    def slope_active(self) -> bool:
        """From half the window on (a fade runs from the start of a case: waiting for the whole
        window leaves its first half hour uncorrected); the sd inflation follows the span."""
        return 2 * (len(self._history) - 1) >= self._history.maxlen - 1

    def push(self, x: float, clip: float, held: bool = False) -> None:
        """Queue observation x; the one leaving the lag moves the level (clipped to +-clip
        around it: single outliers must not move the reference). Held, the level moves no
        faster than `max_slope_per_obs` from where the hold began (module docstring)."""
        self._pending.append(float(x))
        if len(self._pending) <= self.lag_obs:
            return
        old = self._pending.popleft()
        old = self.level + float(np.clip(old - self.level, -clip, clip))
        self.n += 1
        self._fed += 1
        alpha = max(1.0 / self.tau_obs, 1.0 / self.n)
        self._level_var = (1.0 - alpha) ** 2 * self._level_var + alpha**2
        self._log_keep += math.log1p(-alpha)
        if held:  # the slope and the observations' scatter stay as they were
            start, n_held, free = self._hold or (self.level, 0, self.level)
            free += alpha * (old - free)
            reach = self.max_slope_per_obs * (n_held + 1)
            self._hold = (start, n_held + 1, free)
            self.level = float(np.clip(free, start - reach, start + reach))
        else:
            if self._hold is not None:  # released: the level the EWMA would have had, so a
                self.level = self._hold[2]  # hold delays what the data say, discards none
                self._hold = None
            # its own running mean until it holds tau (it starts from nothing, the level not)
            self._var_obs += (max(1.0 / self.tau_obs, 1.0 / self._fed)
                              * ((old - self.level) ** 2 - self._var_obs))
            self.level += alpha * (old - self.level)
        if self._fed % _SLOPE_STEP:
            return
        self._history.append((self.level, self._level_var, self._log_keep))
        if not held and self.slope_active:
            limit = self.max_slope_per_obs
            raw = (self._history[-1][0] - self._history[0][0]) / self._span_obs
            self.slope_gain = (max(0.0, 1.0 - SLOPE_SHRINK_K * self._slope_var() / raw**2)
                               if raw else 0.0)
            self.slope = float(np.clip(raw * self.slope_gain, -limit, limit))

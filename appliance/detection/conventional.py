"""The conventional method, as monitors do it: a moving average of the last N sweeps updated
every `update_every` sweeps, the N20-P25 peak-to-peak amplitude and N20 latency read off it,
an alarm when amplitude < 50 % or latency > 110 % of baseline on `confirmations` consecutive
updates. The detection benchmark measures the fast detector against it on the same sweeps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ConventionalSettings:
    n_average: int = 300
    update_every: int = 30
    confirmations: int = 2
    amplitude_fraction: float = 0.5
    latency_fraction: float = 1.10
    neg_window_ms: tuple[float, float] = (15.0, 24.0)  # N20 (negative)
    pos_window_ms: tuple[float, float] = (20.0, 32.0)  # P25 (positive)
    # artifact rejection: a sweep with any |sample| above this (µV) is left out of the average
    # (and does not count towards `update_every`); None: no rejection
    reject_uv: float | None = None


def n20_p25(avg: np.ndarray, t_ms: np.ndarray, s: ConventionalSettings) -> tuple[float, float]:
    """(peak-to-peak µV, N20 latency ms) of an average trace."""
    neg = (t_ms >= s.neg_window_ms[0]) & (t_ms <= s.neg_window_ms[1])
    pos = (t_ms >= s.pos_window_ms[0]) & (t_ms <= s.pos_window_ms[1])
    i_neg = np.flatnonzero(neg)[np.argmin(avg[neg])]
    p2p = float(np.max(avg[pos]) - avg[i_neg])
    return p2p, float(t_ms[i_neg])


class ConventionalDetector:
    """Feed sweeps one block at a time; `push` returns the stimulus times at which it alarms.

    One moving average can serve several confirmation counts at once (`confirmations`, the
    stricter variants the detection benchmark compares at a matched false-alarm rate): the run of
    consecutive bad updates is the same for all of them, only the alarm latch differs. `push`
    answers for `settings.confirmations`; `push_all` for every count.
    """

    def __init__(self, t_ms: np.ndarray, settings: ConventionalSettings | None = None,
                 confirmations: Sequence[int] = ()) -> None:
        self.t_ms = np.asarray(t_ms, dtype=np.float64)
        self.s = settings or ConventionalSettings()
        if any(int(c) < 1 for c in confirmations) or self.s.confirmations < 1:
            raise ValueError(f"confirmations must be >= 1: {tuple(confirmations)!r}")
        self.confirmations = tuple(sorted({self.s.confirmations, *map(int, confirmations)}))
        self._ring = np.zeros((self.s.n_average, self.t_ms.size))
        self._sum = np.zeros(self.t_ms.size)
        self._n = 0
        self.baseline: tuple[float, float] | None = None
        self._below = 0
        self._alarmed = dict.fromkeys(self.confirmations, False)

    @property
    def alarmed(self) -> bool:
        return self._alarmed[self.s.confirmations]

    def push(self, sweeps: np.ndarray, t_s: np.ndarray) -> list[float]:
        return self.push_all(sweeps, t_s)[self.s.confirmations]

    def push_all(self, sweeps: np.ndarray, t_s: np.ndarray) -> dict[int, list[float]]:
        """Alarm times of this block for every confirmation count."""
        fired: dict[int, list[float]] = {c: [] for c in self.confirmations}
        for x, t in zip(np.atleast_2d(sweeps), np.atleast_1d(t_s), strict=True):
            if self.s.reject_uv is not None and np.max(np.abs(x)) > self.s.reject_uv:
                continue
            j = self._n % self.s.n_average
            self._sum += x - self._ring[j]
            self._ring[j] = x
            self._n += 1
            if self._n < self.s.n_average or self._n % self.s.update_every:
                continue
            p2p, lat = n20_p25(self._sum / self.s.n_average, self.t_ms, self.s)
            if self.baseline is None:
                self.baseline = (p2p, lat)
                continue
            bad = p2p < self.s.amplitude_fraction * self.baseline[0] or (
                lat > self.s.latency_fraction * self.baseline[1])
            self._below = self._below + 1 if bad else 0
            for c in self.confirmations:
                if self._below >= c and not self._alarmed[c]:
                    self._alarmed[c] = True
                    fired[c].append(float(t))
                elif not bad:
                    self._alarmed[c] = False
        return fired

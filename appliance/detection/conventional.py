"""The conventional method, as monitors do it: a moving average of the last N sweeps updated
every `update_every` sweeps, the N20-P25 peak-to-peak amplitude and N20 latency read off it,
an alarm when amplitude < 50 % or latency > 110 % of baseline on `confirmations` consecutive
updates. The detection benchmark measures the fast detector against it on the same sweeps."""

from __future__ import annotations

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


def n20_p25(avg: np.ndarray, t_ms: np.ndarray, s: ConventionalSettings) -> tuple[float, float]:
    """(peak-to-peak µV, N20 latency ms) of an average trace."""
    neg = (t_ms >= s.neg_window_ms[0]) & (t_ms <= s.neg_window_ms[1])
    pos = (t_ms >= s.pos_window_ms[0]) & (t_ms <= s.pos_window_ms[1])
    i_neg = np.flatnonzero(neg)[np.argmin(avg[neg])]
    p2p = float(np.max(avg[pos]) - avg[i_neg])
    return p2p, float(t_ms[i_neg])


class ConventionalDetector:
    """Feed sweeps one block at a time; `push` returns the stimulus times at which it alarms."""

    def __init__(self, t_ms: np.ndarray, settings: ConventionalSettings | None = None) -> None:
        self.t_ms = np.asarray(t_ms, dtype=np.float64)
        self.s = settings or ConventionalSettings()
        self._ring = np.zeros((self.s.n_average, self.t_ms.size))
        self._sum = np.zeros(self.t_ms.size)
        self._n = 0
        self.baseline: tuple[float, float] | None = None
        self._below = 0
        self.alarmed = False

    def push(self, sweeps: np.ndarray, t_s: np.ndarray) -> list[float]:
        fired: list[float] = []
        for x, t in zip(np.atleast_2d(sweeps), np.atleast_1d(t_s), strict=True):
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
            if self._below >= self.s.confirmations and not self.alarmed:
                self.alarmed = True
                fired.append(float(t))
            elif not bad:
                self.alarmed = False
        return fired

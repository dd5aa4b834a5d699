"""Repeating on/off patterns for lamps and the buzzer, evaluated against absolute time.

A pattern is a period and the on-intervals inside it. Its level and next edge are pure functions
of the phase (now - start), so a scheduler that sleeps to `start + next_edge(...)` never drifts:
a late wake-up delays one edge, not every edge after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Pattern:
    """period_s == 0 means constant: on if `on` is not empty. Intervals are (start_s, end_s)
    inside [0, period_s], sorted, not overlapping."""

    period_s: float
    on: tuple[tuple[float, float], ...]
    label: str

    def level(self, phase_s: float) -> bool:
        if self.period_s <= 0:
            return bool(self.on)
        r = phase_s % self.period_s
        return any(a <= r < b for a, b in self.on)

    def next_edge(self, phase_s: float) -> float:
        """Phase of the first edge strictly after `phase_s` (inf for a constant pattern)."""
        if self.period_s <= 0:
            return math.inf
        k = math.floor(phase_s / self.period_s)
        r = phase_s - k * self.period_s
        for edge in sorted({x for ab in self.on for x in ab}):
            if edge > r and edge < self.period_s:
                return k * self.period_s + edge
        return (k + 1) * self.period_s + min((a for a, _ in self.on), default=0.0)


OFF = Pattern(0.0, (), "off")
ON = Pattern(0.0, ((0.0, 1.0),), "on")


def flash(rate_hz: float, duty: float) -> Pattern:
    """Square wave starting with the on phase, `duty` of each period on."""
    period_s = 1.0 / rate_hz
    return Pattern(period_s, ((0.0, duty * period_s),), f"flash {rate_hz:g} Hz")

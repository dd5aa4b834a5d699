"""Buzzer burst patterns after IEC 60601-1-8 (docs/alarms.md).

high:   10 pulses as 3+2, 3+2: pulse td 140 ms, spacing ts 90 ms, 2·ts+td (320 ms) between the
        3rd and 4th and the 8th and 9th, 600 ms between the halves, then `repeat_s` of silence
medium: 3 pulses: td 140 ms, spacing ts 190 ms, then `repeat_s` of silence
low:    silent (the standard makes low-priority sound optional)

IEC 60601-1-8 ranges: td 75-200 ms; ts 50-125 ms (high) and 125-250 ms (medium); 350-1300 ms
between the 5th and 6th high pulse; inter-burst 2.5-15 s (high), 2.5-30 s (medium), here
2.5-4 s. Nominal values sit mid-range so a late wake-up on a busy machine stays inside.

The lights thread plays these on the buzzer pin (appliance.outputs.lights); an audio pause or an
acknowledgement silences them through `Display.audio`.
"""

from __future__ import annotations

from appliance.conditions import Priority
from appliance.outputs.pattern import Pattern

# (on_s, off_s after it); the last off is replaced by the inter-burst silence.
TD_S, TS_HIGH_S, TS_MEDIUM_S = 0.14, 0.09, 0.19
HIGH_BURST = (
    (TD_S, TS_HIGH_S), (TD_S, TS_HIGH_S), (TD_S, 2 * TS_HIGH_S + TD_S), (TD_S, TS_HIGH_S),
    (TD_S, 0.60),
    (TD_S, TS_HIGH_S), (TD_S, TS_HIGH_S), (TD_S, 2 * TS_HIGH_S + TD_S), (TD_S, TS_HIGH_S),
    (TD_S, 0.0),
)
MEDIUM_BURST = ((TD_S, TS_MEDIUM_S), (TD_S, TS_MEDIUM_S), (TD_S, 0.0))
BURSTS = {Priority.HIGH: HIGH_BURST, Priority.MEDIUM: MEDIUM_BURST}


def burst(priority: Priority | None, repeat_s: float = 3.0) -> Pattern | None:
    """The repeating burst for `priority` with `repeat_s` of silence between bursts (IEC:
    2.5-4 s here), or None when that priority makes no sound."""
    steps = BURSTS.get(priority) if priority is not None else None
    if steps is None:
        return None
    on: list[tuple[float, float]] = []
    t = 0.0
    for on_s, off_s in steps:
        on.append((t, t + on_s))
        t += on_s + off_s
    return Pattern(period_s=t + repeat_s, on=tuple(on), label=f"{priority.name.lower()} burst")

"""Buzzer burst patterns after IEC 60601-1-8 (docs/alarms.md).

high:   10 pulses as 3+2, 3+2 (pulse 150 ms, spacing 100 ms), then `repeat_s` of silence
medium: 3 pulses (pulse 200 ms, spacing 100 ms), then `repeat_s` of silence
low:    silent (the standard makes low-priority sound optional)

The lights thread plays these on the buzzer pin (appliance.outputs.lights); an audio pause or an
acknowledgement silences them through `Display.audio`.
"""

from __future__ import annotations

from appliance.conditions import Priority
from appliance.outputs.pattern import Pattern

# (on_s, off_s after it); the last off is replaced by the inter-burst silence.
HIGH_BURST = (
    (0.15, 0.10), (0.15, 0.10), (0.15, 0.35), (0.15, 0.10), (0.15, 0.60),
    (0.15, 0.10), (0.15, 0.10), (0.15, 0.35), (0.15, 0.10), (0.15, 0.0),
)
MEDIUM_BURST = ((0.20, 0.10), (0.20, 0.10), (0.20, 0.0))
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

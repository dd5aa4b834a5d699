"""Alarm conditions: what analysis and health report and the alarm manager consumes.

A source reports a condition each time it is evaluated while present (`active=True`) and once
when it ends (`active=False`). `id` is stable for the same condition, so the manager can latch,
acknowledge and re-alarm by id.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import IntEnum, StrEnum
from typing import Any


class Priority(IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3


class Kind(StrEnum):
    PHYSIOLOGICAL = "physiological"  # the patient
    TECHNICAL = "technical"  # the equipment


@dataclass(frozen=True)
class Condition:
    """One alarm condition as reported by analysis or health.

    id        stable id, e.g. "ssep.amplitude:L median:N20" or "tech.lead_off:C3'-Fz"
    kind      physiological or technical (never confuse the two)
    priority  high / medium / low
    active    True while the condition is present
    t_s       seconds since case (stream) start when evaluated
    site      stimulation site or channel it concerns, "" for the whole device
    message   one line a technologist understands
    evidence  JSON-able facts: which average, which component, baseline vs now, test statistic
    """

    id: str
    kind: Kind
    priority: Priority
    active: bool
    t_s: float
    site: str = ""
    message: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = self.kind.value
        d["priority"] = self.priority.name.lower()
        return d

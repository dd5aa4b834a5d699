"""What the alarm manager hands out: `AlarmEvent` (every state change) and `Display` (what the
lights and buzzer must show right now)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from appliance.conditions import Kind, Priority

EVENTS = ("raised", "cleared", "acknowledged", "audio_paused", "audio_resumed", "escalated")


@dataclass(frozen=True)
class AlarmEvent:
    """One alarm state change, in the shared `alarm_event` JSON shape.

    alarm_id/priority/kind are "" / None for events about the whole system (audio pause).
    t_s is the manager's clock (inject the case clock in the service), t_utc an ISO 8601 UTC time.
    cause is who or what caused it: "analysis", "health", "button", "mqtt:<client>", "cli",
    "timeout" (audio pause ran out) or "restore".
    """

    event: str
    alarm_id: str
    priority: Priority | None
    kind: Kind | None
    site: str
    message: str
    evidence: dict[str, Any]
    latched: bool
    t_s: float
    t_utc: str
    cause: str

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "alarm_event",
            "event": self.event,
            "alarm_id": self.alarm_id,
            "priority": None if self.priority is None else self.priority.name.lower(),
            "kind": None if self.kind is None else self.kind.value,
            "site": self.site,
            "message": self.message,
            "evidence": dict(self.evidence),
            "latched": self.latched,
            "t_s": self.t_s,
            "t_utc": self.t_utc,
            "cause": self.cause,
        }


@dataclass(frozen=True)
class Display:
    """What the alarm signals must show now (appliance.outputs.lights maps it to lamps).

    highest               highest priority of any alarm whose signal is on, None when quiet
    highest_physiological highest physiological priority, None if none
    highest_technical     highest technical priority, None if none (the cyan lamp shows it)
    audio                 priority the buzzer must sound (unacknowledged alarms; None when
                          silent or paused; low priority has no sound here)
    audio_paused          audio pause in force (must be visibly indicated)
    audio_paused_s_left   seconds of audio pause left, 0.0 when not paused
    alarm_ids             ids of alarms whose signal is on, highest priority first
    """

    highest: Priority | None = None
    highest_physiological: Priority | None = None
    highest_technical: Priority | None = None
    audio: Priority | None = None
    audio_paused: bool = False
    audio_paused_s_left: float = 0.0
    alarm_ids: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        def name(p: Priority | None) -> str | None:
            return None if p is None else p.name.lower()

        return {
            "highest": name(self.highest),
            "highest_physiological": name(self.highest_physiological),
            "highest_technical": name(self.highest_technical),
            "audio": name(self.audio),
            "audio_paused": self.audio_paused,
            "audio_paused_s_left": round(self.audio_paused_s_left, 1),
            "alarm_ids": list(self.alarm_ids),
        }


QUIET = Display()

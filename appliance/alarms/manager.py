"""The alarm state machine: conditions in, alarm events and a `Display` out (docs/alarms.md).

Rules (IEC 60601-1-8 practice):
- An alarm is raised when its condition is first reported active, keyed by the condition id.
- Latching alarms (high-priority physiological, plus what the settings add) keep signalling after
  their condition ends until acknowledged; non-latching ones go away when the condition ends.
- Acknowledge removes latched alarms whose condition has ended and silences the audio of alarms
  still present (their lights stay). A rise in priority undoes the acknowledgement.
- Audio pause silences the buzzer for `audio_pause_s`; the lights continue and the pause is shown.
  It ends early when a paused alarm worsens (escalated) or a new alarm of at least
  `resume_on_new_priority` arrives.
- An alarm's priority never falls during one episode: a latched signal shows the worst seen.

Every public method takes the manager's lock: the button thread, the MQTT thread, the control
socket and the analysis thread may call at once. Listeners are called after the lock is released.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from appliance.alarms.events import AlarmEvent, Display
from appliance.conditions import Condition, Kind, Priority
from appliance.settings.alarms import AlarmSettings

log = logging.getLogger(__name__)

Listener = Callable[[AlarmEvent], None]
STATE_VERSION = 1


@dataclass
class _Alarm:
    id: str
    kind: Kind
    priority: Priority
    site: str
    message: str
    evidence: dict[str, Any]
    latches: bool
    raised_utc: str
    raised_t_s: float
    active: bool = True
    acknowledged: bool = False
    cleared_utc: str | None = None
    cleared_t_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "alarm_id": self.id,
            "priority": self.priority.name.lower(),
            "kind": self.kind.value,
            "site": self.site,
            "message": self.message,
            "evidence": dict(self.evidence),
            "active": self.active,
            "latched": self.latches,
            "acknowledged": self.acknowledged,
            "raised_utc": self.raised_utc,
            "cleared_utc": self.cleared_utc,
            "raised_t_s": self.raised_t_s,
            "cleared_t_s": self.cleared_t_s,
        }


class AlarmManager:
    """Alarm state machine. `clock` gives the events' t_s (monotonic by default; the service may
    pass its case clock); `wall_clock` gives their t_utc. Both are injectable for tests."""

    def __init__(
        self,
        settings: AlarmSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_event: Listener | None = None,
    ) -> None:
        self.settings = settings or AlarmSettings()
        self._clock = clock
        self._wall = wall_clock
        self._lock = threading.RLock()
        self._alarms: dict[str, _Alarm] = {}
        self._paused_until: float | None = None
        self._resume_at = Priority[self.settings.resume_on_new_priority.upper()]
        self._listeners: list[Listener] = [on_event] if on_event else []
        self.n_events = 0
        self.n_rejected = 0  # malformed condition reports (logged, never raised to the caller)

    # ----------------------------------------------------------------- inputs
    def add_listener(self, fn: Listener) -> None:
        """Call `fn(event)` for every event, whichever thread caused it (keep it quick)."""
        with self._lock:
            self._listeners.append(fn)

    def update(self, cond: Condition, cause: str = "analysis") -> list[AlarmEvent]:
        """Feed one condition report (active or ended). Returns the events it caused.

        A malformed report (kind/priority of the wrong type, empty id) is logged and counted in
        `n_rejected`; it never raises into the analysis thread."""
        problem = _check(cond)
        if problem:
            with self._lock:
                self.n_rejected += 1
            log.error("alarm manager: condition rejected: %s: %r", problem, cond)
            return []
        with self._lock:
            events = self._update(cond, cause)
        return self._emit(events)

    def acknowledge(self, cause: str) -> list[AlarmEvent]:
        """Operator acknowledge: drop latched alarms whose condition ended; silence the rest."""
        with self._lock:
            events = []
            for a in self._ordered():
                if not a.active:
                    del self._alarms[a.id]
                    events.append(self._event("acknowledged", a, cause, latched=False))
                elif not a.acknowledged:
                    a.acknowledged = True
                    events.append(self._event("acknowledged", a, cause))
        return self._emit(events)

    def audio_pause(self, cause: str) -> list[AlarmEvent]:
        """Silence audio for `audio_pause_s` (restarts the pause if already paused)."""
        with self._lock:
            duration_s = self.settings.audio_pause_s
            self._paused_until = self._clock() + duration_s
            events = [self._system_event("audio_paused", cause, {
                "duration_s": duration_s, "alarm_ids": sorted(self._alarms)})]
        return self._emit(events)

    def tick(self) -> list[AlarmEvent]:
        """Time-outs: call a few times a second. Ends an audio pause that has run out."""
        with self._lock:
            events = []
            if self._paused_until is not None and self._clock() >= self._paused_until:
                events = self._resume("timeout")
        return self._emit(events)

    # ---------------------------------------------------------------- outputs
    def display(self) -> Display:
        with self._lock:
            now = self._clock()
            paused = self._paused_until is not None and now < self._paused_until
            alarms = self._ordered()

            def top(items: list[_Alarm]) -> Priority | None:
                return max((a.priority for a in items), default=None)

            sounding = [a for a in alarms if not a.acknowledged and a.priority >= Priority.MEDIUM]
            return Display(
                highest=top(alarms),
                highest_physiological=top([a for a in alarms if a.kind == Kind.PHYSIOLOGICAL]),
                highest_technical=top([a for a in alarms if a.kind == Kind.TECHNICAL]),
                audio=None if paused else top(sounding),
                audio_paused=paused,
                audio_paused_s_left=max(0.0, self._paused_until - now) if paused else 0.0,
                alarm_ids=tuple(a.id for a in alarms),
            )

    def active_set(self) -> list[dict[str, Any]]:
        """Every alarm whose signal is on (present, or latched and not yet acknowledged)."""
        with self._lock:
            return [a.to_json() for a in self._ordered()]

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state worth surviving a restart: latched, unacknowledged alarms.

        Non-latching alarms are not kept: their sources report them again. An audio pause is
        not kept either: after a restart the alarms sound again (the safe side).
        """
        with self._lock:
            keep = [a.to_json() for a in self._ordered() if a.latches and not a.acknowledged]
        return {"version": STATE_VERSION, "alarms": keep}

    def restore(self, state: dict[str, Any]) -> list[AlarmEvent]:
        """Bring back latched alarms from `state_dict()`. Whether their condition is still present
        is unknown, so each comes back as ended-and-latched: it signals until acknowledged, and
        becomes present again when its source reports it. Malformed entries are logged, skipped."""
        events = []
        with self._lock:
            for i, d in enumerate(state.get("alarms", []) if isinstance(state, dict) else []):
                try:
                    a = _Alarm(
                        id=str(d["alarm_id"]),
                        kind=Kind(d["kind"]),
                        priority=Priority[str(d["priority"]).upper()],
                        site=str(d.get("site", "")),
                        message=str(d.get("message", "")),
                        evidence=dict(d.get("evidence", {})),
                        latches=True,
                        raised_utc=str(d.get("raised_utc", "")),
                        raised_t_s=self._clock(),
                        active=False,
                        cleared_utc=d.get("cleared_utc"),
                        cleared_t_s=self._clock(),
                    )
                except (KeyError, ValueError, TypeError) as e:
                    log.warning("alarm state entry %d skipped: %r (%s)", i, d, e)
                    continue
                if a.id in self._alarms:
                    continue
                self._alarms[a.id] = a
                events.append(self._event("raised", a, "restore"))
        return self._emit(events)

    # --------------------------------------------------------------- internals
    def _latches(self, kind: Kind, priority: Priority, alarm_id: str) -> bool:
        if kind == Kind.PHYSIOLOGICAL and priority == Priority.HIGH:
            return True
        if kind == Kind.PHYSIOLOGICAL and priority == Priority.MEDIUM:
            if self.settings.latch_medium_physiological:
                return True
        return any(alarm_id.startswith(p) for p in self.settings.latching_ids)

    def _update(self, c: Condition, cause: str) -> list[AlarmEvent]:
        a = self._alarms.get(c.id)
        if not c.active:
            if a is None or not a.active:
                return []  # an end we never saw start, or already ended: nothing changes
            a.active = False
            a.cleared_utc, a.cleared_t_s = self._utc(), self._clock()
            a.evidence = dict(c.evidence) or a.evidence
            if a.latches and not a.acknowledged:
                return [self._event("cleared", a, cause, latched=True)]
            del self._alarms[a.id]
            return [self._event("cleared", a, cause, latched=False)]
        if a is None:
            a = _Alarm(
                id=c.id, kind=c.kind, priority=c.priority, site=c.site, message=c.message,
                evidence=dict(c.evidence), latches=self._latches(c.kind, c.priority, c.id),
                raised_utc=self._utc(), raised_t_s=self._clock(),
            )
            self._alarms[a.id] = a
            events = [self._event("raised", a, cause)]
            if self._paused() and a.priority >= self._resume_at:
                events += self._resume(cause)
            return events
        events = []
        # The new text before any event: a re-raised alarm reports what is true now.
        a.message, a.evidence, a.site = c.message or a.message, dict(c.evidence), c.site
        if not a.active:  # a latched alarm whose condition comes back
            a.active, a.acknowledged, a.cleared_utc, a.cleared_t_s = True, False, None, None
            events.append(self._event("raised", a, cause))
        if c.priority > a.priority:
            a.priority = c.priority
            a.acknowledged = False
            a.latches = a.latches or self._latches(a.kind, a.priority, a.id)
            events.append(self._event("escalated", a, cause))
            if self._paused():
                events += self._resume(cause)
        return events

    def _paused(self) -> bool:
        return self._paused_until is not None and self._clock() < self._paused_until

    def _resume(self, cause: str) -> list[AlarmEvent]:
        self._paused_until = None
        return [self._system_event("audio_resumed", cause, {})]

    def _ordered(self) -> list[_Alarm]:
        return sorted(self._alarms.values(), key=lambda a: (-a.priority, a.raised_utc, a.id))

    def _utc(self) -> str:
        return datetime.fromtimestamp(self._wall(), UTC).isoformat(timespec="milliseconds")

    def _event(self, name: str, a: _Alarm, cause: str, latched: bool | None = None) -> AlarmEvent:
        return AlarmEvent(
            event=name, alarm_id=a.id, priority=a.priority, kind=a.kind, site=a.site,
            message=a.message, evidence=dict(a.evidence),
            latched=a.latches if latched is None else latched,
            t_s=self._clock(), t_utc=self._utc(), cause=cause,
        )

    def _system_event(self, name: str, cause: str, evidence: dict[str, Any]) -> AlarmEvent:
        top = max((a.priority for a in self._alarms.values()), default=None)
        return AlarmEvent(
            event=name, alarm_id="", priority=top, kind=None, site="",
            message={"audio_paused": "audio paused", "audio_resumed": "audio resumed"}[name],
            evidence=evidence, latched=False, t_s=self._clock(), t_utc=self._utc(), cause=cause,
        )

    def _emit(self, events: list[AlarmEvent]) -> list[AlarmEvent]:
        if events:
            with self._lock:
                self.n_events += len(events)
                listeners = list(self._listeners)
            for ev in events:
                for fn in listeners:
                    try:
                        fn(ev)
                    except Exception:  # a broken listener must not stop the alarm path
                        log.exception("alarm event listener %r failed", fn)
        return events


def _check(c: object) -> str:
    """'' if `c` is a well-formed Condition, else what is wrong with it."""
    if not isinstance(c, Condition):
        return f"expected a Condition, got {type(c).__name__}"
    if not isinstance(c.priority, Priority):
        return f"priority: got {c.priority!r}, allowed: Priority.LOW/MEDIUM/HIGH"
    if not isinstance(c.kind, Kind):
        return f"kind: got {c.kind!r}, allowed: Kind.PHYSIOLOGICAL/TECHNICAL"
    if not isinstance(c.id, str) or not c.id:
        return f"id: got {c.id!r}, allowed: a non-empty string"
    return ""

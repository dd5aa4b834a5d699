"""Health conditions the supervisor feeds to the alarm manager besides the Monitor's own:
the MQTT link (`tech.mqtt`), the analysis itself (`tech.analysis`), and the front end's loss
accounting that goes into the health message and the case record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from appliance.conditions import Condition, Kind, Priority
from appliance.frontend.ads1299.compiled import compiled_unavailable_reason

MQTT_UNREACHABLE_S = 5.0  # broker not connected this long -> technical LOW (outbox keeps data)


def acquisition_counts(h: Any) -> dict[str, Any]:
    """The front end's loss accounting (FrontEndHealth): samples missing from the stream, and
    for an ADS1299 why (overwritten before read, read too late, reader ring full), the
    corrupt frames (never data) and which reader ran."""
    extra = h.extra
    out: dict[str, Any] = {"samples": int(h.samples), "missed_samples": int(h.missed_samples),
                           "corrupt_frames": int(h.corrupt_frames)}
    for key in ("overwritten", "late_reads", "ring_overflow"):
        if key in extra:
            out[key] = int(extra[key])
    if "read_done_max_us" in extra:  # the compiled reader's latency (why samples were lost)
        out["read_done_max_us"] = round(float(extra["read_done_max_us"]), 1)
        out["reads_over_250us"] = int(extra["reads_over_250us"])
    if "reader_compiled" in extra:
        out["reader"] = "compiled" if extra["reader_compiled"] else "python"
        if not extra["reader_compiled"] and compiled_unavailable_reason():
            out["reader_note"] = compiled_unavailable_reason()  # what to install, once per topic
    return out


class MqttWatch:
    """`tech.mqtt`: LOW while the broker is unreachable for MQTT_UNREACHABLE_S (the outbox keeps
    the data), MEDIUM while the link itself is unhealthy; ended once, when it recovers."""

    def __init__(self, mqtt: Any, cfg: Any, clock: Callable[[], float]) -> None:
        self.mqtt, self.cfg, self.clock = mqtt, cfg, clock
        self._down_since: float | None = clock()
        self._active: Priority | None = None

    def conditions(self, t_s: float) -> list[Condition]:
        now = self.clock()
        stats = self.mqtt.stats()
        if stats["connected"]:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = now
        prio: Priority | None = None
        msg = ""
        if not self.mqtt.healthy():
            prio = Priority.MEDIUM
            msg = "MQTT link failing: outbox not accepting data (" + stats["last_error"] + ")"
        elif self._down_since is not None and now - self._down_since >= MQTT_UNREACHABLE_S:
            prio = Priority.LOW
            msg = (f"MQTT broker {self.cfg.mqtt.host}:{self.cfg.mqtt.port} unreachable for "
                   f"{now - self._down_since:.0f} s; data kept in the outbox "
                   f"({stats['outbox_rows']} rows)")
        ev = {"connected": stats["connected"], "outbox_rows": stats["outbox_rows"],
              "last_error": stats["last_error"]}
        if prio is not None:
            self._active = prio
            return [Condition("tech.mqtt", Kind.TECHNICAL, prio, True, t_s, "", msg, ev)]
        if self._active is not None:
            prio, self._active = self._active, None
            return [Condition("tech.mqtt", Kind.TECHNICAL, prio, False, t_s, "",
                              "MQTT link restored", ev)]
        return []


class AnalysisWatch:
    """`tech.analysis` (high) while Monitor.push raises (the loop counts `errors`): no analysis
    means no alarms. The green lamp and the watchdog stop with it, so systemd restarts us if it
    persists."""

    def __init__(self) -> None:
        self.errors = 0
        self.failing = False

    def condition(self, failed: str | None, t_s: float) -> list[Condition]:
        if failed is not None and not self.failing:
            self.failing = True
            return [Condition("tech.analysis", Kind.TECHNICAL, Priority.HIGH, True, t_s, "",
                              f"analysis failed: {failed}", {"errors": self.errors})]
        if failed is None and self.failing:
            self.failing = False
            return [Condition("tech.analysis", Kind.TECHNICAL, Priority.HIGH, False, t_s, "",
                              "analysis running again", {"errors": self.errors})]
        return []


def fault(cid: str, message: str) -> Condition:
    """A part that could not start: a technical alarm (medium) for as long as we run."""
    return Condition(cid, Kind.TECHNICAL, Priority.MEDIUM, True, 0.0, "", message, {})

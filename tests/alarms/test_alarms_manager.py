"""Alarm manager: latching, acknowledge, audio pause, re-alarm, priorities, events, restore."""

from __future__ import annotations

import json
import threading

from appliance.alarms import AlarmManager
from appliance.conditions import Kind, Priority
from appliance.settings.alarms import AlarmSettings

SHAPE = {"type", "event", "alarm_id", "priority", "kind", "site", "message", "evidence",
         "latched", "t_s", "t_utc", "cause"}


def names(events):
    return [e.event for e in events]


def test_raise_and_event_shape(manager, cond):
    evs = manager.update(cond(), cause="analysis")
    assert names(evs) == ["raised"]
    d = evs[0].to_json()
    assert set(d) == SHAPE
    assert d["priority"] == "high" and d["kind"] == "physiological" and d["latched"] is True
    assert d["cause"] == "analysis" and d["site"] == "L median"
    assert d["evidence"] == {"baseline_uv": 2.0, "now_uv": 0.8}
    assert d["t_utc"].startswith("2027-") and d["t_utc"].endswith("+00:00")
    json.dumps(d)  # JSON-able
    # reporting the same condition again changes nothing
    assert manager.update(cond()) == []


def test_high_physiological_latches_until_acknowledged(manager, cond):
    manager.update(cond())
    evs = manager.update(cond(active=False))
    assert names(evs) == ["cleared"] and evs[0].latched is True
    assert manager.display().highest == Priority.HIGH  # the signal continues
    [a] = manager.active_set()
    assert a["active"] is False and a["latched"] is True
    evs = manager.acknowledge("button")
    assert names(evs) == ["acknowledged"] and evs[0].cause == "button"
    assert manager.display().highest is None
    assert manager.active_set() == []


def test_non_latching_alarms_stop_with_their_condition(manager, cond):
    for kind, prio in [(Kind.PHYSIOLOGICAL, Priority.MEDIUM), (Kind.TECHNICAL, Priority.HIGH),
                       (Kind.TECHNICAL, Priority.LOW)]:
        manager.update(cond("x", kind, prio))
        evs = manager.update(cond("x", kind, prio, active=False), cause="health")
        assert names(evs) == ["cleared"] and evs[0].latched is False
        assert manager.display().highest is None


def test_latching_configurable_by_id_prefix_and_medium(clock, cond):
    m = AlarmManager(AlarmSettings(latching_ids=("tech.frontend",),
                                   latch_medium_physiological=True), clock=clock)
    m.update(cond("tech.frontend_lost", Kind.TECHNICAL, Priority.HIGH))
    m.update(cond("mep.amp", Kind.PHYSIOLOGICAL, Priority.MEDIUM))
    m.update(cond("tech.lead_off", Kind.TECHNICAL, Priority.LOW))
    for cid, kind in [("tech.frontend_lost", Kind.TECHNICAL), ("mep.amp", Kind.PHYSIOLOGICAL),
                      ("tech.lead_off", Kind.TECHNICAL)]:
        m.update(cond(cid, kind, Priority.LOW, active=False))
    assert [a["alarm_id"] for a in m.active_set()] == ["tech.frontend_lost", "mep.amp"]


def test_acknowledge_keeps_present_condition_lit_but_silent(manager, cond):
    manager.update(cond())
    assert manager.display().audio == Priority.HIGH
    evs = manager.acknowledge("cli")
    assert names(evs) == ["acknowledged"]
    d = manager.display()
    assert d.highest == Priority.HIGH and d.audio is None  # light stays, audio silenced
    # acknowledged while present: ends without latching
    assert manager.update(cond(active=False))[0].latched is False
    assert manager.display().highest is None


def test_acknowledged_alarm_sounds_again_when_it_worsens(manager, cond):
    manager.update(cond("m", priority=Priority.MEDIUM))
    manager.acknowledge("button")
    evs = manager.update(cond("m", priority=Priority.HIGH))
    assert names(evs) == ["escalated"]
    assert manager.display().audio == Priority.HIGH


def test_audio_pause_times_out(manager, clock, cond):
    manager.update(cond())
    evs = manager.audio_pause("button")
    assert names(evs) == ["audio_paused"] and evs[0].evidence["duration_s"] == 120.0
    d = manager.display()
    assert d.audio_paused and d.audio is None and d.highest == Priority.HIGH
    assert d.audio_paused_s_left == 120.0
    clock.advance(119.0)
    assert manager.tick() == [] and manager.display().audio_paused
    clock.advance(1.0)
    assert manager.display().audio == Priority.HIGH  # display is right even before tick()
    evs = manager.tick()
    assert names(evs) == ["audio_resumed"] and evs[0].cause == "timeout"
    assert manager.tick() == []


def test_re_alarm_when_paused_condition_worsens(manager, cond):
    manager.update(cond("ssep", priority=Priority.MEDIUM))
    manager.audio_pause("mqtt:tablet")
    manager.update(cond("ssep", priority=Priority.MEDIUM))  # same: stays paused
    assert manager.display().audio_paused
    evs = manager.update(cond("ssep", priority=Priority.HIGH), cause="analysis")
    assert names(evs) == ["escalated", "audio_resumed"]
    assert evs[0].priority == Priority.HIGH and evs[0].latched is True
    d = manager.display()
    assert not d.audio_paused and d.audio == Priority.HIGH


def test_new_alarm_ends_pause_only_at_medium_or_above(manager, cond):
    manager.update(cond("a", priority=Priority.MEDIUM))
    manager.audio_pause("button")
    assert names(manager.update(cond("b", Kind.TECHNICAL, Priority.LOW))) == ["raised"]
    assert manager.display().audio_paused
    assert names(manager.update(cond("c", Kind.TECHNICAL, Priority.MEDIUM))) == [
        "raised", "audio_resumed"]


def test_priority_never_falls_within_an_episode(manager, cond):
    manager.update(cond("x", priority=Priority.HIGH))
    assert manager.update(cond("x", priority=Priority.MEDIUM)) == []
    assert manager.display().highest == Priority.HIGH


def test_highest_priority_and_kind_in_display(manager, cond):
    manager.update(cond("low-tech", Kind.TECHNICAL, Priority.LOW))
    d = manager.display()
    assert (d.highest, d.highest_physiological, d.highest_technical) == (
        Priority.LOW, None, Priority.LOW)
    manager.update(cond("med-phys", Kind.PHYSIOLOGICAL, Priority.MEDIUM))
    manager.update(cond("high-tech", Kind.TECHNICAL, Priority.HIGH))
    d = manager.display()
    assert d.highest == Priority.HIGH
    assert d.highest_physiological == Priority.MEDIUM
    assert d.highest_technical == Priority.HIGH
    assert d.alarm_ids[0] == "high-tech" and d.audio == Priority.HIGH


def test_latched_condition_returning_is_raised_again(manager, cond):
    manager.update(cond())
    manager.update(cond(active=False))
    assert names(manager.update(cond())) == ["raised"]
    assert manager.active_set()[0]["active"] is True


def test_end_of_unknown_condition_is_ignored(manager, cond):
    assert manager.update(cond("never-raised", active=False)) == []


def test_state_dict_restore_keeps_latched_alarms(manager, clock, cond):
    manager.update(cond("acked"))
    manager.acknowledge("button")  # acknowledged: not worth keeping
    manager.update(cond("latched"))  # high physiological: latches
    manager.update(cond("tech", Kind.TECHNICAL, Priority.HIGH))  # does not latch
    manager.update(cond("latched", active=False))
    state = json.loads(json.dumps(manager.state_dict()))
    assert [a["alarm_id"] for a in state["alarms"]] == ["latched"]

    fresh = AlarmManager(AlarmSettings(), clock=clock)
    evs = fresh.restore(state)
    assert [(e.event, e.alarm_id, e.cause) for e in evs] == [("raised", "latched", "restore")]
    assert fresh.display().highest == Priority.HIGH and fresh.display().audio == Priority.HIGH
    assert names(fresh.acknowledge("button")) == ["acknowledged"]
    assert fresh.active_set() == []


def test_restore_skips_malformed_entries(manager):
    evs = manager.restore({"version": 1, "alarms": [
        {"alarm_id": "ok", "kind": "physiological", "priority": "high"},
        {"alarm_id": "bad", "kind": "martian", "priority": "high"},
        {"kind": "technical"},
    ]})
    assert [e.alarm_id for e in evs] == ["ok"]


def test_listener_sees_events_from_every_input(manager, cond):
    seen = []
    manager.add_listener(lambda e: seen.append((e.event, e.cause)))
    manager.add_listener(lambda e: 1 / 0)  # a broken listener does not stop the others
    manager.update(cond())
    manager.audio_pause("button")
    manager.acknowledge("mqtt:tablet")
    assert seen == [("raised", "analysis"), ("audio_paused", "button"),
                    ("acknowledged", "mqtt:tablet")]
    assert manager.n_events == 3


def test_thread_safety_smoke(clock, cond):
    m = AlarmManager(AlarmSettings(), clock=clock)
    events = []
    lock = threading.Lock()

    def listener(e):
        with lock:
            events.append(e)

    m.add_listener(listener)
    errors = []

    def analysis(i):
        try:
            for k in range(300):
                cid = f"a{i}.{k % 7}"
                m.update(cond(cid, Kind.PHYSIOLOGICAL, Priority(1 + k % 3), active=k % 2 == 0))
                m.display()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def operator():
        try:
            for _ in range(300):
                m.acknowledge("button")
                m.audio_pause("mqtt:x")
                m.tick()
                m.active_set()
                m.state_dict()
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=analysis, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=operator) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert m.n_events == len(events) > 0
    # consistent end state: every alarm left is either present or latched-and-unacknowledged
    for a in m.active_set():
        assert a["active"] or (a["latched"] and not a["acknowledged"])


def test_malformed_condition_is_counted_not_raised(manager, cond):
    from appliance.conditions import Condition

    bad = [
        Condition("x", Kind.TECHNICAL, 3, True, 0.0),  # int, not Priority
        Condition("x", "technical", Priority.LOW, True, 0.0),  # str, not Kind
        Condition("", Kind.TECHNICAL, Priority.LOW, True, 0.0),
        {"id": "x"},
    ]
    for c in bad:
        assert manager.update(c) == []
    assert manager.n_rejected == 4 and manager.active_set() == []
    assert names(manager.update(cond())) == ["raised"]  # still working


def test_raised_and_cleared_times(manager, clock, cond):
    manager.update(cond())
    clock.advance(2.5)
    manager.update(cond(active=False))
    [a] = manager.active_set()
    assert a["cleared_t_s"] - a["raised_t_s"] == 2.5
    assert a["raised_utc"] < a["cleared_utc"]


def test_cleared_event_says_why_it_ended(manager):
    """The cleared tech.mqtt event reads "MQTT link restored", not the "unreachable" text; a
    latched alarm keeps what happened in its list entry until acknowledged."""
    from appliance.conditions import Condition

    def mqtt(active: bool, msg: str) -> Condition:
        return Condition("tech.mqtt", Kind.TECHNICAL, Priority.LOW, active, 0.0, "", msg, {})

    manager.update(mqtt(True, "MQTT broker 127.0.0.1:1883 unreachable for 5 s"))
    [ev] = manager.update(mqtt(False, "MQTT link restored"))
    assert (ev.event, ev.message) == ("cleared", "MQTT link restored")
    high = Condition("ssep.amplitude:L median:N20", Kind.PHYSIOLOGICAL, Priority.HIGH, True, 0.0,
                     "L median", "N20 amplitude 40 % of baseline", {})
    manager.update(high)
    [ev] = manager.update(Condition(high.id, high.kind, high.priority, False, 1.0, "L median",
                                    "cleared: N20 amplitude back to 80 %", {}))
    assert ev.message == "cleared: N20 amplitude back to 80 %" and ev.latched
    [a] = manager.active_set()
    assert a["message"] == "N20 amplitude 40 % of baseline"

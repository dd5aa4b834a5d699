"""The outbox is bounded: past its limit the oldest rows of the lowest class go first, every drop
is counted, the counts survive a reopen and reach subscribers in the health message."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from mqtt_support import BASE, Collector, load_schemas, make_cfg, persistent_broker

from appliance.outputs.mqtt import MqttLink
from appliance.outputs.mqtt.outbox import Lane, NewRow, Outbox


def _rows(lane: Lane, n: int, tag: str) -> list[NewRow]:
    return [NewRow(lane, f"t/{lane.name}", f"{tag}{i}".encode()) for i in range(n)]


def test_mqtt_outbox_drops_lowest_class_oldest_first_and_counts(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", max_rows=100)
    ob.commit(_rows(Lane.WAVEFORM, 60, "w") + _rows(Lane.TREND, 30, "t")
              + _rows(Lane.ALARM, 10, "a"), {}, durable=True)
    assert ob.rows == 100
    ob.commit(_rows(Lane.TREND, 25, "t2-"), {"some/topic": 7}, durable=False)
    assert ob.rows == 100
    assert ob.counters["dropped.waveform"] == 25
    waves = ob.fetch(Lane.WAVEFORM, 0, 1000)
    assert [r.payload for r in waves] == [f"w{i}".encode() for i in range(25, 60)]
    ob.commit(_rows(Lane.ALARM, 80, "a2-"), {}, durable=True)  # waveforms, then oldest trends
    assert ob.counters["dropped.waveform"] == 60 and ob.counters["dropped.trend"] == 45
    trends = ob.fetch(Lane.TREND, 0, 1000)
    assert [r.payload for r in trends] == [f"t2-{i}".encode() for i in range(15, 25)]
    assert len(ob.fetch(Lane.ALARM, 0, 1000)) == 90
    ob.delete([r.id for r in trends[:4]])
    ob.close()
    again = Outbox(tmp_path / "o.db", max_rows=100)  # what a restart sees
    assert again.rows == 96
    assert again.counters["dropped.trend"] == 45 and again.counters["some/topic"] == 7
    again.close()


def test_mqtt_drops_reported_in_health_and_alarms_kept(tmp_path: Path, mosq_dir: Path) -> None:
    broker = persistent_broker(mosq_dir)
    broker.start()
    sub = Collector(broker.host, broker.port, f"{BASE}/#", persistent=True, client_id="ob-sub")
    broker.stop()
    cfg = make_cfg(broker.host, broker.port, outbox_max_rows=100, health_interval_s=0.5)
    link = MqttLink(cfg, tmp_path / "outbox.db")
    link.start()
    try:
        for i in range(150):
            link.publish_waveform({"type": "waveform", "t_s": float(i), "site": "L median",
                                   "modality": "ssep_upper", "channel": "C3'-Fz",
                                   "n_sweeps": i, "sample_rate_hz": 4000.0, "t0_ms": 0.0,
                                   "encoding": "int16-le-base64", "scale_uv": 0.1,
                                   "data": "AAA="})
        for i in range(10):
            link.publish_alarm_event({"type": "alarm_event", "event": "raised",
                                      "alarm_id": f"a{i}"})
        assert link.healthy()  # no broker, but the outbox accepts
        broker.start()
        assert sub.wait_for(lambda ms: any(m.topic == f"{BASE}/health" for m in ms)
                            and len(sub.on(f"{BASE}/alarm/event")) == 10
                            and len(sub.on(f"{BASE}/waveform/ssep_upper/L_median")) >= 90, 15), (
            {t: len(sub.on(t)) for t in {m.topic for m in sub.msgs}}, link.stats())
    finally:
        link.stop()
        sub.close()
        broker.stop()
    assert not link.healthy()  # stopped: the watchdog must not be fed
    health = sub.on(f"{BASE}/health")[-1].body
    assert not list(load_schemas()["health"].iter_errors(health))
    assert health["mqtt"]["dropped"]["waveform"] == 60
    assert health["mqtt"]["dropped"]["alarm"] == 0
    waves = [m.body["t_s"] for m in sub.on(f"{BASE}/waveform/ssep_upper/L_median")]
    assert waves == [float(i) for i in range(60, 150)]  # the oldest 60 were dropped


def test_mqtt_backlog_replay_is_rate_limited_and_live_health_flows(tmp_path: Path,
                                                                   mosq_dir: Path) -> None:
    broker = persistent_broker(mosq_dir)
    broker.start()
    sub = Collector(broker.host, broker.port, f"{BASE}/#", persistent=True, client_id="rl-sub")
    broker.stop()
    cfg = make_cfg(broker.host, broker.port, replay_rate_per_s=20.0, health_interval_s=0.5)
    link = MqttLink(cfg, tmp_path / "outbox.db")
    link.start()
    try:
        for i in range(60):
            link.publish_alarm_event({"type": "alarm_event", "event": "raised",
                                      "alarm_id": f"a{i}"})
        broker.start()
        assert sub.wait_for(lambda ms: len(sub.on(f"{BASE}/alarm/event")) >= 1, 10)
        t_first = sub.on(f"{BASE}/alarm/event")[0].t_mono
        assert sub.wait_for(lambda ms: len(sub.on(f"{BASE}/alarm/event")) >= 60, 10)
    finally:
        link.stop()
        sub.close()
        broker.stop()
    events = sub.on(f"{BASE}/alarm/event")
    early = [m for m in events if m.t_mono - t_first <= 1.0]
    assert len(early) <= 40, "a 20/s replay should not deliver the backlog at once"
    assert [m.body["alarm_id"] for m in events] == [f"a{i}" for i in range(60)]
    # live-only messages are not held behind the backlog
    health = [m.t_mono for m in sub.on(f"{BASE}/health")]
    assert health and health[0] < events[-1].t_mono


def test_mqtt_outbox_that_cannot_open_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    cfg = make_cfg("127.0.0.1", 1)
    with pytest.raises(OSError, match="not-a-dir"):
        MqttLink(cfg, blocker / "outbox.db").start()
    with pytest.raises(sqlite3.Error, match="cannot open"):
        MqttLink(cfg, tmp_path).start()  # a directory, not a database file

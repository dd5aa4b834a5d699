"""A publisher process killed with SIGKILL (or frozen): the outbox replays what was not
acknowledged, sequence numbers continue, the Last Will arrives within 1.5 x keepalive and the
next birth has a higher session counter."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

from mqtt_support import BASE, Collector, kill_publishers, start_publisher
from mqtt_support import persistent_broker as make_broker

TRENDS = [f"{BASE}/trend/ssep_upper/L_median", f"{BASE}/trend/ssep_lower/R_tibial"]
ALARMS = f"{BASE}/alarm/event"
MOSQUITTO_CHECK_S = 6.0


def test_mqtt_sigkill_outbox_replays_unacknowledged(tmp_path: Path, mosq_dir: Path) -> None:
    broker = make_broker(mosq_dir)
    broker.start()
    sub = Collector(broker.host, broker.port, f"{BASE}/#", persistent=True, client_id="kill-sub")
    outbox = tmp_path / "outbox.db"
    proc = start_publisher(broker.host, broker.port, outbox, "--rate", "20")
    second = None
    try:
        assert sub.wait_for(lambda ms: sum(m.topic == TRENDS[0] for m in ms) >= 10, 10)
        broker.stop()  # outage: rows pile up in the outbox
        sub.connected.clear()
        time.sleep(1.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        db = sqlite3.connect(str(outbox))
        pending = [json.loads(p) for t, p in db.execute("SELECT topic, payload FROM outbox")]
        db.close()
        assert len(pending) >= 20, "the outage should have left unacknowledged rows"
        want = {p["msg_id"] for p in pending}

        broker.start()
        # the observer must be subscribed again before the replay starts, or the first
        # replayed rows can reach a broker with no subscriber yet (seen under load)
        assert sub.connected.wait(5)
        time.sleep(0.2)  # SUBACK
        second = start_publisher(broker.host, broker.port, outbox, "--rate", "20",
                                 "--start", "100000")
        got = lambda: {m.body.get("msg_id") for m in sub.msgs}  # noqa: E731
        assert sub.wait_for(lambda ms: want <= got(), 20), (
            f"missing {len(want - got())} of {len(want)}: "
            f"{[p for p in pending if p['msg_id'] not in got()]}")
        # and the restarted process carries on after them with the next sequence numbers
        assert sub.wait_for(
            lambda ms: any(m.topic == TRENDS[0] and m.body["t_s"] >= 100005 for m in ms), 10)
    finally:
        kill_publishers(proc, second)
        sub.close()
        broker.stop()
    by_topic = sub.by_topic()
    for topic in [*TRENDS, ALARMS]:
        seqs = [b["seq"] for b in by_topic[topic]]
        # every sequence number from 1 to the last one, each once, in order: nothing lost
        assert seqs == list(range(1, seqs[-1] + 1)), topic
    old = [b for b in by_topic[TRENDS[0]] if b["t_s"] < 100000]
    new = [b for b in by_topic[TRENDS[0]] if b["t_s"] >= 100000]
    assert new[0]["seq"] == old[-1]["seq"] + 1


def _birth_and_deaths(sub: Collector) -> tuple[list[dict], list[tuple[float, dict]]]:
    st = sub.on(f"{BASE}/status")
    births = [m.body for m in st if m.body.get("online") and not m.retain]
    deaths = [(m.t_mono, m.body) for m in st if m.body.get("online") is False and not m.retain]
    return births, deaths


def test_mqtt_last_will_on_sigkill_and_next_session_higher(tmp_path: Path, broker) -> None:
    sub = Collector(broker.host, broker.port, f"{BASE}/status")
    outbox = tmp_path / "outbox.db"
    keepalive_s = 5
    proc = start_publisher(broker.host, broker.port, outbox, "--keepalive", str(keepalive_s))
    second = None
    try:
        assert sub.wait_for(lambda ms: len(_birth_and_deaths(sub)[0]) >= 1, 5)
        first = _birth_and_deaths(sub)[0][-1]
        t_kill = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        assert sub.wait_for(lambda ms: len(_birth_and_deaths(sub)[1]) >= 1, 1.5 * keepalive_s)
        t_death, death = _birth_and_deaths(sub)[1][0]
        assert t_death - t_kill <= 1.5 * keepalive_s
        assert death["session"] == first["session"]
        assert death["seq"] == first["seq"] + 1
        second = start_publisher(broker.host, broker.port, outbox)
        assert sub.wait_for(lambda ms: len(_birth_and_deaths(sub)[0]) >= 2, 5)
        birth2 = _birth_and_deaths(sub)[0][-1]
        assert birth2["session"] > first["session"]
        assert birth2["seq"] > death["seq"]
    finally:
        kill_publishers(proc, second)
        sub.close()


def test_mqtt_last_will_on_frozen_process_within_keepalive(tmp_path: Path, broker) -> None:
    """SIGSTOP keeps the TCP connection open but silent, like a cut cable or a hung process:
    only the broker's keepalive can detect it. Mosquitto 2.0.x runs its keepalive check only
    every ~5-6 s (keepalive.c: `last_keepalive_check + 5 < now`), so the bound is
    1.5 x keepalive plus that granularity (a SIGKILL, above, is seen at once)."""
    sub = Collector(broker.host, broker.port, f"{BASE}/status")
    keepalive_s = 2
    proc = start_publisher(broker.host, broker.port, tmp_path / "o.db",
                           "--keepalive", str(keepalive_s))
    try:
        assert sub.wait_for(lambda ms: len(_birth_and_deaths(sub)[0]) >= 1, 5)
        t_stop = time.monotonic()
        proc.send_signal(signal.SIGSTOP)
        bound_s = 1.5 * keepalive_s + MOSQUITTO_CHECK_S
        assert sub.wait_for(lambda ms: len(_birth_and_deaths(sub)[1]) >= 1, bound_s)
        t_death = _birth_and_deaths(sub)[1][0][0]
        assert 1.5 * keepalive_s - 0.5 <= t_death - t_stop <= bound_s
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        sub.close()

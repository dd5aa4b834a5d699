"""Hospital scale: the appliance's link publishes to its local mosquitto, which bridges with the
shipped deploy/mosquitto/bridge.conf (TLS lines dropped, addresses rewritten) to a central
mosquitto with persistence, where a console keeps a persistent session.

The central broker is stopped for 30 s and restarted while trends and alarm events stream: every
one reaches the console, in order per topic, none missing by `seq`; duplicates (QoS 1: a message
in flight on the bridge when the link broke is sent again) are counted and bounded. A command
from a central-side client reaches the appliance through the bridge and its reply comes back
with the MQTT 5 correlation data."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from mqtt_support import BASE, DEVICE, REPO, Broker, Collector, make_cfg, persistent_broker, request

from appliance.outputs.mqtt import MqttLink

OUTAGE_S = 30.0  # the number
RATE_HZ = 5.0
TREND = f"{BASE}/trend/ssep_upper/L_median"
ALARM = f"{BASE}/alarm/event"


def bridged_pair(mosq_dir: Path) -> tuple[Any, Broker]:
    """(central, local): the central persistent broker and the OR's broker bridged to it."""
    central = persistent_broker(mosq_dir / "central")
    central.start()
    local_dir = mosq_dir / "local"
    local_dir.mkdir()
    local_dir.chmod(0o777)
    lines = []
    for line in (REPO / "deploy" / "mosquitto" / "bridge.conf").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith(("bridge_cafile", "bridge_cert",
                                                                "bridge_key", "bridge_tls",
                                                                "bridge_insecure")):
            continue  # loopback without TLS here (test_mqtt_security covers TLS)
        line = line.replace("ionm-or3", DEVICE)
        if line.startswith("address "):
            line = f"address 127.0.0.1:{central.port}"
        elif line.startswith("restart_timeout"):
            line = "restart_timeout 1"  # reconnect soon after the restart (no 30 s back-off)
        elif line.startswith("persistence "):
            line += f"\npersistence_location {local_dir}/"
        lines.append(line)
    local = Broker(local_dir, extra_conf="\n".join(lines) + "\n")
    local.start()
    return central, local


def _stream(link: MqttLink, stop: threading.Event, published: dict[str, int]) -> None:
    i = 0
    while not stop.is_set():
        link.publish_trend({"type": "trend", "t_s": i / RATE_HZ, "site": "L median",
                            "modality": "ssep_upper", "channel": "C3'-Fz", "n_sweeps": i,
                            "components": {}})
        published["trend"] += 1
        if i % 5 == 0:
            link.publish_alarm_event({
                "type": "alarm_event", "event": "raised" if i % 10 else "cleared",
                "alarm_id": "ssep.amplitude:L median:N20", "priority": "high",
                "kind": "physiological", "site": "L median", "message": "N20 amplitude -55 %",
                "evidence": {}, "latched": True, "t_s": i / RATE_HZ,
                "t_utc": "2026-01-01T00:00:00Z", "cause": "analysis"})
            published["alarm"] += 1
        i += 1
        stop.wait(1.0 / RATE_HZ)


def _seqs(sub: Collector, topic: str) -> list[int]:
    return [m.body["seq"] for m in sub.on(topic)]


def test_bridge_central_outage_30s_loses_nothing(tmp_path: Path, mosq_dir: Path) -> None:
    central, local = bridged_pair(mosq_dir)
    link = MqttLink(make_cfg(local.host, local.port), tmp_path / "outbox.db")
    stop = threading.Event()
    published = {"trend": 0, "alarm": 0}
    streamer = threading.Thread(target=_stream, args=(link, stop, published), daemon=True)
    console = Collector(central.host, central.port, f"{BASE}/#", persistent=True,
                        client_id="console-1")
    try:
        link.start()
        assert console.wait_for(lambda ms: any(m.topic == f"{BASE}/status" for m in ms), 10), \
            local.log.read_text()
        streamer.start()
        time.sleep(3.0)
        before = len(console.on(TREND))
        central.stop()
        time.sleep(OUTAGE_S)
        during = published["trend"]
        central.start()
        time.sleep(2.0)
        stop.set()
        streamer.join(5)
        n_trend, n_alarm = published["trend"], published["alarm"]
        assert console.wait_for(lambda ms: len(set(_seqs(console, TREND))) >= n_trend
                                and len(set(_seqs(console, ALARM))) >= n_alarm, 20), (
            n_trend, len(set(_seqs(console, TREND))), local.log.read_text()[-2000:])
        trends, alarms = _seqs(console, TREND), _seqs(console, ALARM)
        # none lost: every seq the link assigned arrived; in order once duplicates are dropped
        for seqs, n in ((trends, n_trend), (alarms, n_alarm)):
            first = list(dict.fromkeys(seqs))
            assert first == list(range(first[0], first[0] + n)), first
        dup_t, dup_a = len(trends) - n_trend, len(alarms) - n_alarm
        # QoS 1 at-least-once: only what was in flight on the bridge when it broke comes twice
        assert dup_t + dup_a <= 20, (dup_t, dup_a)
        assert link.stats()["outbox_rows"] == 0  # the local broker acknowledged everything
        print(f"\nbridge outage {OUTAGE_S:.0f} s: {n_trend} trends ({during - before} published "
              f"while the central broker was down), {n_alarm} alarm events, all delivered; "
              f"duplicates {dup_t} trend, {dup_a} alarm")
    finally:
        stop.set()
        link.stop()
        console.close()
        local.stop()
        central.stop()


def test_bridge_command_from_central_reaches_appliance_and_reply_returns(
        tmp_path: Path, mosq_dir: Path) -> None:
    central, local = bridged_pair(mosq_dir)
    calls: list[tuple[str, dict[str, Any], str]] = []

    def on_command(name: str, args: dict[str, Any], client: str) -> dict[str, Any]:
        calls.append((name, args, client))
        return {"t_s": 12.5}

    link = MqttLink(make_cfg(local.host, local.port), tmp_path / "outbox.db", on_command)
    console = Collector(central.host, central.port, [f"{BASE}/status", f"{BASE}/reply/#"])
    try:
        link.start()
        assert console.wait_for(lambda ms: any(m.topic == f"{BASE}/status" for m in ms), 10)
        time.sleep(0.5)  # the bridge's subscription to the command topics at the central broker
        request(console.c, f"{BASE}/cmd/neuro1/annotate", json.dumps({"text": "rod placed"})
                .encode(), f"{BASE}/reply/neuro1/abc", b"corr-1").wait_for_publish(5)
        assert console.wait_for(lambda ms: any(m.corr == b"corr-1" for m in ms), 10), (
            local.log.read_text()[-2000:])
        (reply,) = [m for m in console.msgs if m.corr == b"corr-1"]
        assert reply.topic == f"{BASE}/reply/neuro1/abc"
        assert reply.body["ok"] and reply.body["result"] == {"t_s": 12.5}
        time.sleep(0.5)  # no echo: the request is not bridged back and run twice
        assert calls == [("annotate", {"text": "rod placed"}, "neuro1")]
        assert len([m for m in console.msgs if m.corr == b"corr-1"]) == 1
    finally:
        link.stop()
        console.close()
        local.stop()
        central.stop()

"""`ionm bench mqtt`: the MqttLink against a raw paho client, on a private mosquitto on loopback.

Measured in the same run, so the ratios hold on a noisy machine:
  alarm latency   publish_alarm_event() -> a subscriber's on_message, p50/p99 (ms), one alarm
                  every 10 ms; peer: paho publish(qos=1) of the same payload from a loop_start
                  client. The link's figure includes the outbox commit; with the default
                  mqtt.alarm_fsync = "after_publish" the fsync follows the publish call, the
                  "fsync_first" figures are for "before_publish" (an fsync on the path).
  throughput      trends and waveforms in the shapes the analysis emits, for 8 channels with
                  every modality (4 sites x 2 channels), published as fast as the caller can;
                  rate = messages received / time to the last. Peer: raw paho, same messages.
                  `required_msgs_per_s` is the load of that montage at 2 updates/s per site
                  (trend + waveform per channel), so headroom = sustained / required.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt

from appliance.config import from_dict

SITES = [
    {"name": "L median", "modality": "ssep_upper", "channels": ["C3'-Fz", "Cv5-Fz"]},
    {"name": "R tibial", "modality": "ssep_lower", "channels": ["Cz'-Fz", "Pf-L"]},
    {"name": "L ear", "modality": "baep", "channels": ["Erb-L", "Erb-R"]},
    {"name": "R APB", "modality": "tcmep", "channels": ["Pf-R", "C4'-Fz"]},
]
UPDATES_PER_S = 2.0


class _Mosquitto:
    """A private mosquitto on a free loopback port; with `websockets` also a WebSocket listener
    (`ws_port`, the console bench's page)."""

    def __init__(self, websockets: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ionm-bench-mqtt-"))
        self.dir.chmod(0o777)
        self.port = _free_port()
        self.ws_port = _free_port() if websockets else None
        ws = (f"listener {self.ws_port} 127.0.0.1\nprotocol websockets\nallow_anonymous true\n"
              if websockets else "")
        conf = self.dir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{ws}"
                        "persistence false\nmax_queued_messages 100000\n")
        conf.chmod(0o644)
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:  # the last listener opened is up
                socket.create_connection(("127.0.0.1", self.ws_port or self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self.close()
        raise RuntimeError("bench: mosquitto did not start")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Sink:
    """Subscriber recording receive times by a key in the payload."""

    def __init__(self, port: int, *topics: str) -> None:
        self.times: dict[str, float] = {}
        self.count = 0
        self.last_s = 0.0
        self.lock = threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.c.on_message = self._on_message
        ready = threading.Event()
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.connect("127.0.0.1", port)
        self.c.subscribe([(t, 1) for t in topics])
        self.c.loop_start()
        ready.wait(5)

    def _on_message(self, c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        key = m.payload[m.payload.find(b'"k":"') + 5:][:12]
        with self.lock:
            self.times[key.decode(errors="replace")] = now
            self.count += 1
            self.last_s = now

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def _alarm(k: str) -> dict[str, Any]:
    return {"type": "alarm_event", "event": "raised", "alarm_id": "ssep.amplitude:L median:N20",
            "priority": "high", "kind": "physiological", "site": "L median",
            "message": "N20 amplitude -55 % from baseline", "evidence": {"k": k},
            "latched": True, "t_s": 1.0, "t_utc": "2026-01-01T00:00:00.000Z", "cause": "analysis"}


def _montage_messages(n_updates: int) -> list[tuple[str, dict[str, Any]]]:
    from appliance.analysis.outputs import ComponentValue, TrendPoint, Waveform

    t = np.arange(600) / 4000.0
    out = []
    for u in range(n_updates):
        for s in SITES:
            for ch in s["channels"]:
                tp = TrendPoint(u / UPDATES_PER_S, s["name"], s["modality"], ch, "cortical", 100,
                                {"N20": ComponentValue(20.0, 1.5, 0.9, True),
                                 "P25": ComponentValue(25.0, -1.0, 0.9, True)}, "N20", 2.5, 0.3,
                                3.0, 9.0, 0.8, {"phase": "zero", "band_hz": [30.0, 1000.0],
                                                "notch_hz": 60.0})
                wf = Waveform(u / UPDATES_PER_S, s["name"], s["modality"], ch, 100, 4000.0, -10.0,
                              np.sin(2 * np.pi * 50 * t + u))
                out.append(("trend", tp.to_json()))
                out.append(("waveform", wf.to_json()))
    return out


def _pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(xs), q)), 3) if xs else float("nan")


def _latency(port: int, publish: Any, topic: str, n: int, sink: _Sink) -> list[float]:
    sent: dict[str, float] = {}
    for i in range(n):
        k = f"{i:012d}"
        sent[k] = time.perf_counter()
        publish(k)
        time.sleep(0.01)
    deadline = time.monotonic() + 10
    while len(sink.times) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return [(sink.times[k] - t0) * 1e3 for k, t0 in sent.items() if k in sink.times]


def _throughput(publish_all: Any, n: int, sink: _Sink) -> float:
    t0 = time.perf_counter()
    publish_all()
    deadline = time.monotonic() + 120
    while sink.count < n and time.monotonic() < deadline:
        time.sleep(0.005)
    return sink.count / max(sink.last_s - t0, 1e-9)


def run(quick: bool = False) -> dict[str, Any]:
    from appliance.outputs.mqtt import MqttLink
    from appliance.outputs.mqtt.payloads import to_json

    n_alarms = 60 if quick else 400
    n_updates = 5 if quick else 40
    broker = _Mosquitto()
    work = Path(tempfile.mkdtemp(prefix="ionm-bench-outbox-"))

    def cfg(device: str, fsync: str) -> Any:
        return from_dict({"device": {"id": device},
                          "mqtt": {"host": "127.0.0.1", "port": broker.port, "keepalive_s": 10,
                                   "inflight_window": 20, "alarm_fsync": fsync},
                          "analysis": {"sites": SITES}})

    link = MqttLink(cfg("bench", "after_publish"), work / "outbox.db")
    strict = MqttLink(cfg("strict", "before_publish"), work / "strict.db")
    raw = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    raw.max_inflight_messages_set(20)
    raw.max_queued_messages_set(0)
    try:
        link.start()
        strict.start()
        raw.connect("127.0.0.1", broker.port)
        raw.loop_start()
        deadline = time.monotonic() + 5
        while not (link.stats()["connected"] and strict.stats()["connected"]) and (
                time.monotonic() < deadline):
            time.sleep(0.01)
        # alarm latency
        sink = _Sink(broker.port, "bench/raw/alarm")
        raw_lat = _latency(broker.port, lambda k: raw.publish(
            "bench/raw/alarm", to_json(_alarm(k)), qos=1), "bench/raw/alarm", n_alarms, sink)
        sink.close()
        sink = _Sink(broker.port, "ionm/v1/bench/alarm/event")
        link_lat = _latency(broker.port, lambda k: link.publish_alarm_event(_alarm(k)),
                            "ionm/v1/bench/alarm/event", n_alarms, sink)
        sink.close()
        sink = _Sink(broker.port, "ionm/v1/strict/alarm/event")
        strict_lat = _latency(broker.port, lambda k: strict.publish_alarm_event(_alarm(k)),
                              "ionm/v1/strict/alarm/event", n_alarms, sink)
        sink.close()
        strict.stop()
        # throughput for the 8-channel, all-modality montage
        msgs = _montage_messages(n_updates)
        n = len(msgs)
        sink = _Sink(broker.port, "bench/raw/#")
        raw_rate = _throughput(lambda: [raw.publish(f"bench/raw/{kind}", to_json(d), qos=1)
                                        for kind, d in msgs], n, sink)
        sink.close()
        sink = _Sink(broker.port, "ionm/v1/bench/trend/#", "ionm/v1/bench/waveform/#")

        def link_all() -> None:
            for kind, d in msgs:
                (link.publish_trend if kind == "trend" else link.publish_waveform)(d)

        link_rate = _throughput(link_all, n, sink)
        link_received = sink.count
        sink.close()
    finally:
        link.stop()
        strict.stop()
        raw.loop_stop()
        raw.disconnect()
        broker.close()
        shutil.rmtree(work, ignore_errors=True)
    channels = sum(len(s["channels"]) for s in SITES)
    required = channels * 2 * UPDATES_PER_S
    return {
        "mqtt_alarm_latency_p50_ms": _pct(link_lat, 50),
        "mqtt_alarm_latency_p99_ms": _pct(link_lat, 99),
        "mqtt_raw_paho_latency_p50_ms": _pct(raw_lat, 50),
        "mqtt_raw_paho_latency_p99_ms": _pct(raw_lat, 99),
        "mqtt_latency_p99_ratio_vs_raw": round(_pct(link_lat, 99) / _pct(raw_lat, 99), 2),
        "mqtt_alarms_received": f"{len(link_lat)}/{n_alarms}",
        "mqtt_alarm_latency_fsync_first_p50_ms": _pct(strict_lat, 50),
        "mqtt_alarm_latency_fsync_first_p99_ms": _pct(strict_lat, 99),
        "mqtt_montage": f"{channels} channels, {len(SITES)} modalities",
        "mqtt_required_msgs_per_s": required,
        "mqtt_sustained_msgs_per_s": round(link_rate, 1),
        "mqtt_raw_paho_msgs_per_s": round(raw_rate, 1),
        "mqtt_rate_ratio_vs_raw": round(link_rate / raw_rate, 3),
        "mqtt_headroom_x": round(link_rate / required, 1),
        "mqtt_montage_received": f"{link_received}/{n}",
    }

"""Helpers for the MQTT tests: config, a recording subscriber (a plain paho client, not our code),
the AsyncAPI schemas, and the repository's Broker class."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from appliance.config import Config, from_dict

REPO = Path(__file__).resolve().parents[2]
DEVICE = "or1"
BASE = f"ionm/v1/{DEVICE}"
PUBLISHER = Path(__file__).with_name("mqtt_publisher_proc.py")

_spec = importlib.util.spec_from_file_location("ionm_tests_root_conftest",
                                               REPO / "tests" / "conftest.py")
assert _spec and _spec.loader
_root = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_root)
Broker = _root.Broker
free_port = _root.free_port

PERSISTENT_CONF = "persistence true\npersistence_location {dir}/\nmax_queued_messages 100000\n"

SITES = [
    {"name": "L median", "modality": "ssep_upper", "channels": ["C3'-Fz", "Cv5-Fz"],
     "trigger_bit": 0},
    {"name": "R tibial", "modality": "ssep_lower", "channels": ["Cz'-Fz"], "trigger_bit": 1},
    {"name": "L ear", "modality": "baep", "channels": ["Erb-L"], "trigger_bit": 2},
    {"name": "R APB", "modality": "tcmep", "channels": ["Pf-R"], "trigger_bit": 3},
]


def alarm_event(i: int, t_s: float) -> dict[str, Any]:
    """The i-th alarm event of the outage streams: raised, then cleared every other time."""
    return {"type": "alarm_event", "event": "raised" if i % 10 else "cleared",
            "alarm_id": "ssep.amplitude:L median:N20", "priority": "high",
            "kind": "physiological", "site": "L median", "message": "N20 amplitude -55 %",
            "evidence": {}, "latched": True, "t_s": t_s, "t_utc": "2026-01-01T00:00:00Z",
            "cause": "analysis"}


def make_cfg(host: str, port: int, **mqtt_kw: Any) -> Config:
    m = {"host": host, "port": port, "keepalive_s": 5, "reconnect_min_s": 0.2,
         "reconnect_max_s": 1.0, **mqtt_kw}
    return from_dict({"device": {"id": DEVICE, "location": "OR 3"}, "mqtt": m,
                      "analysis": {"sites": SITES}})


def persistent_broker(workdir: Path, port: int | None = None) -> Any:
    """A broker that keeps a subscriber's session (and its queued messages) across a restart."""
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o777)  # mosquitto drops to its own user and writes the persistence file
    return Broker(workdir, extra_conf=PERSISTENT_CONF.format(dir=workdir), port=port)


def load_schemas() -> dict[str, jsonschema.protocols.Validator]:
    doc = yaml.safe_load((REPO / "docs" / "asyncapi.yaml").read_text())
    out = {}
    for name in doc["components"]["schemas"]:
        schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
        out[name] = jsonschema.Draft7Validator(schema)  # AsyncAPI Schema is a Draft 7 superset
    return out


def schema_for(msg: dict[str, Any]) -> str:
    t = msg.get("type")
    if t == "status":
        return "birth" if msg.get("online") else "death"
    return {"alarm_event": "alarmEvent", "active_alarms": "activeAlarms",
            "command_reply": "commandReply"}.get(str(t), str(t))


@dataclass
class Received:
    topic: str
    body: dict[str, Any]
    retain: bool
    qos: int
    props: Any
    t_mono: float

    @property
    def corr(self) -> bytes | None:
        """MQTT 5 Correlation Data, None when absent."""
        return getattr(self.props, "CorrelationData", None)


class Collector:
    """A subscriber that records every message. persistent=True keeps its broker session across
    disconnects (clean_start False, session expiry 1 h) so nothing is lost while it reconnects."""

    def __init__(self, host: str, port: int, topics: str | list[str] = "ionm/#",
                 persistent: bool = False, client_id: str = "", **tls: Any) -> None:
        self.msgs: list[Received] = []
        self.cond = threading.Condition()
        self.connected = threading.Event()
        self.topics = [topics] if isinstance(topics, str) else topics
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=client_id or f"collector-{uuid.uuid4().hex[:8]}",
                             protocol=mqtt.MQTTv5, **tls.pop("client_kw", {}))
        if tls.get("ssl_context"):
            self.c.tls_set_context(tls["ssl_context"])
        if tls.get("username"):
            self.c.username_pw_set(tls["username"], tls.get("password"))
        self.c.reconnect_delay_set(0.1, 0.5)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600 if persistent else 0
        self.c.connect(host, port, keepalive=5, clean_start=not persistent, properties=props)
        self.c.loop_start()
        if not self.connected.wait(5):
            raise RuntimeError("collector did not connect")
        time.sleep(0.1)  # SUBACK

    def _on_connect(self, c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
        if rc.is_failure:
            return
        for t in self.topics:
            c.subscribe(t, qos=1)
        self.connected.set()

    def _on_message(self, c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(m.payload)
        except ValueError:
            body = None
        if not isinstance(body, dict):  # e.g. someone's malformed command request
            body = {"_raw": m.payload.decode(errors="replace")}
        with self.cond:
            self.msgs.append(Received(m.topic, body, bool(m.retain), m.qos, m.properties,
                                      time.monotonic()))
            self.cond.notify_all()

    def wait_for(self, pred: Callable[[list[Received]], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while not pred(self.msgs):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.2))
        return True

    def on(self, topic: str) -> list[Received]:
        with self.cond:
            return [m for m in self.msgs if m.topic == topic]

    def by_topic(self) -> dict[str, list[dict[str, Any]]]:
        """First occurrence of every msg_id, per topic, in arrival order (duplicates dropped)."""
        seen: set[str] = set()
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        with self.cond:
            for m in self.msgs:
                mid = m.body.get("msg_id")
                if mid in seen:
                    continue
                seen.add(mid)
                out[m.topic].append(m.body)
        return out

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def request(c: mqtt.Client, topic: str, payload: bytes, response_topic: str,
            correlation: bytes) -> mqtt.MQTTMessageInfo:
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = response_topic
    props.CorrelationData = correlation
    return c.publish(topic, payload, qos=1, properties=props)


def start_publisher(host: str, port: int, outbox: Path, *extra: str) -> subprocess.Popen[str]:
    """The publisher script in its own process (so it can be SIGKILLed); waits for 'ready'."""
    p = subprocess.Popen(
        [sys.executable, str(PUBLISHER), "--host", host, "--port", str(port),
         "--outbox", str(outbox), *extra],
        stdout=subprocess.PIPE, text=True, cwd=str(REPO),
    )
    assert p.stdout is not None
    line = p.stdout.readline()
    if line.strip() != "ready":
        p.kill()
        raise RuntimeError(f"publisher did not start: {line!r}")
    return p


def kill_publishers(*procs: subprocess.Popen[str] | None) -> None:
    """SIGKILL and reap the publishers still running (None: never started)."""
    for p in procs:
        if p is not None and p.poll() is None:
            p.kill()
            p.wait(5)

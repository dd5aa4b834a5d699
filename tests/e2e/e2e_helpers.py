"""End-to-end helpers (a unique module name, not conftest.py): a config on the simulated
patient, a NOTIFY_SOCKET listener (a bound Unix datagram socket, as systemd has), and an MQTT
subscriber on the real broker."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import jsonschema
import paho.mqtt.client as mqtt
import yaml
from toml_text import to_toml  # noqa: F401 -- the e2e tests import it from here
from two_site_case import CHANNELS, SITE  # noqa: F401 -- the e2e tests import them from here
from two_site_case import config_dict as two_site_config

DROP_AT_S = 12.0
DEVICE = "e2e-dev"
# baselines within ~9 s of stream, a 60 % drop seen ~11 s later (the average must fall below
# 50 %, then hold for two updates)
N_SWEEPS_S = SITE["n_sweeps"] / SITE["rate_hz"]  # one full average window, s of stream


def config_dict(tmp: Path, broker: Any | None, realtime: bool) -> dict[str, Any]:
    return {
        **two_site_config(tmp, {"id": DEVICE}, "e2e-ssep-drop", DROP_AT_S, realtime),
        "lights": {"backend": "recording", "lamp_test_s": 0.2,
                   "file_path": str(tmp / "lights.jsonl")},
        "mqtt": {"enabled": broker is not None, "host": "127.0.0.1",
                 "port": broker.port if broker is not None else 1883, "keepalive_s": 5,
                 "health_interval_s": 1.0},
        "recording": {"directory": str(tmp / "cases"), "min_free_mb": 20.0, "stop_free_mb": 5.0},
    }


class NotifyListener:
    """What a daemon says on $NOTIFY_SOCKET, with monotonic receive times."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def first(self, prefix: str) -> float | None:
        return next((t for t, m in self.messages if m.startswith(prefix)), None)

    def texts(self, prefix: str) -> list[str]:
        return [m for _, m in self.messages if m.startswith(prefix)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.sock.close()



class Subscriber:
    """A paho client subscribed to ionm/v1/#; messages with monotonic receive times."""

    def __init__(self, host: str, port: int) -> None:
        self.messages: list[tuple[float, str, dict[str, Any]]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-sub",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_connect = lambda c, *a: c.subscribe("ionm/v1/#", qos=1)
        self.client.connect(host, port)
        self.client.loop_start()
        if not subscribed.wait(5.0):
            raise RuntimeError("test subscriber: no SUBACK within 5 s")

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            body = {"raw": msg.payload.decode(errors="replace")}
        self.messages.append((time.monotonic(), msg.topic, body))

    def of_type(self, kind: str) -> list[tuple[float, str, dict[str, Any]]]:
        return [m for m in self.messages if m[2].get("type") == kind]

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5.0)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()



def start_appliance(d: dict[str, Any], tmp: Path) -> tuple[Any, Any, threading.Thread]:
    """The real Appliance on config dict `d`, lamps on a RecordingBackend, run on a thread."""
    from appliance import config
    from appliance.outputs.gpio import RecordingBackend
    from appliance.service import Appliance

    backend = RecordingBackend()
    app = Appliance(config.from_dict(d), tmp / "state", lights_backend=backend)
    runner = threading.Thread(target=app.run, daemon=True)
    runner.start()
    return app, backend, runner


def wait_for(pred: Any, timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step_s)
    return bool(pred())


def contract_errors(messages: list[tuple[float, str, dict[str, Any]]]) -> list[str]:
    """Every message the appliance sent, checked against docs/asyncapi.yaml (Draft 7 schemas);
    what fails."""
    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml")
                         .read_text())
    names = {"alarm_event": "alarmEvent", "active_alarms": "activeAlarms",
             "command_reply": "commandReply", "eeg_trend": "eegTrend", "eeg_raw": "eegRaw",
             "emg_trend": "emgTrend", "emg_event": "emgEvent", "temg_response": "temgResponse",
             "temg_threshold": "temgThreshold"}
    errors = []
    for _, topic, body in messages:
        if "/cmd/" in topic:
            continue  # the test's own requests
        t = str(body.get("type"))
        name = ("birth" if body.get("online") else "death") if t == "status" else names.get(t, t)
        if name not in doc["components"]["schemas"]:
            errors.append(f"{topic}: no schema for type {t!r}")
            continue
        v = jsonschema.Draft7Validator({"$ref": f"#/components/schemas/{name}",
                                        "components": doc["components"]})
        errors += [f"{topic}: {e.message}" for e in v.iter_errors(body)]
    return errors

"""The console's test stack: a real mosquitto (a loopback listener for the appliance and a
WebSocket listener for browsers, password file + the shipped ACL), `ionm run` on a simulated
patient as a subprocess, `ionm console`'s server, Debian's chromium driven by Playwright, and an
independent paho observer on the broker."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from system_tools import need_tool, skip_or_fail  # noqa: F401 -- the console tests import it from here
from toml_text import to_toml
from two_site_case import config_dict as two_site_config

REPO = Path(__file__).resolve().parents[2]
DEVICE = "or7-ionm"
USERS = {DEVICE: "device-pw", "neuro1": "tech-pw", "viewer1": "view-pw"}
DROP_AT_S = 14.0
CHROMIUM = "/usr/bin/chromium"

_spec = importlib.util.spec_from_file_location("ionm_console_root_conftest",
                                               REPO / "tests" / "conftest.py")
assert _spec and _spec.loader
_root = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_root)
Broker, free_port = _root.Broker, _root.free_port

def chromium_path() -> str:
    """Debian's chromium; absent: skip, or fail under IONM_CI=1 (.ci/run installs it)."""
    return need_tool("chromium", "chromium")


def broker_dir() -> Path:
    d = Path(tempfile.mkdtemp(prefix="ionm-console-"))
    d.chmod(0o777)  # mosquitto drops to its own user
    return d


def start_broker(d: Path, tls: bool = False) -> tuple[Any, int]:
    """mosquitto with a password file and the shipped ACL: (broker, WebSocket port). tls: the
    WebSocket listener is secure (d/server.crt, d/server.key)."""
    passwd = d / "passwd"
    tool = need_tool("mosquitto_passwd", "mosquitto")
    for i, (user, pw) in enumerate(USERS.items()):
        subprocess.run([tool, *(["-c"] if i == 0 else []), "-b", str(passwd), user, pw],
                       check=True, capture_output=True)
    (d / "acl").write_text((REPO / "deploy/mosquitto/acl").read_text())
    (d / "device.password").write_text(USERS[DEVICE] + "\n")
    for f in d.iterdir():
        f.chmod(0o644)
    plain, ws = free_port(), free_port()
    auth = f"allow_anonymous false\npassword_file {passwd}\nacl_file {d}/acl\n"
    conf = (f"per_listener_settings true\nlistener {plain} 127.0.0.1\n{auth}"
            f"listener {ws} 127.0.0.1\nprotocol websockets\n{auth}"
            + (f"certfile {d}/server.crt\nkeyfile {d}/server.key\ntls_version tlsv1.2\n"
               if tls else "")
            + f"persistence false\nlog_dest file {d}/mosquitto.log\n")
    if os.geteuid() == 0:
        conf = "user root\n" + conf
    broker = Broker(d, extra_conf=conf, port=plain)
    broker.start()
    return broker, ws


def appliance_config(tmp: Path, port: int, pw_file: Path) -> Path:
    """The two-site case with the left median drop at DROP_AT_S (red SSEP alarm ~10 s later)."""
    d = {
        **two_site_config(tmp, {"id": DEVICE, "name": "IONM OR 7", "location": "OR 7"},
                          "console-ssep-drop", DROP_AT_S, realtime=True),
        "lights": {"backend": "file", "lamp_test_s": 0.2, "file_path": str(tmp / "lights.jsonl")},
        "mqtt": {"host": "127.0.0.1", "port": port, "keepalive_s": 5, "health_interval_s": 1.0,
                 "username": DEVICE, "password_file": str(pw_file)},
        "recording": {"directory": str(tmp / "cases"), "min_free_mb": 20.0, "stop_free_mb": 5.0},
    }
    path = tmp / "ionm.toml"
    path.write_text(to_toml(d))
    return path


class Observer:
    """An independent paho client (user neuro1, who may read everything) recording messages."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[float, str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="console-observer",
                             protocol=mqtt.MQTTv5)
        self.c.username_pw_set("neuro1", USERS["neuro1"])
        subscribed = threading.Event()
        self.c.on_subscribe = lambda *a: subscribed.set()
        self.c.on_connect = lambda c, *a: c.subscribe("ionm/v1/#", qos=1)
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        if not subscribed.wait(5):
            raise RuntimeError("observer: no SUBACK within 5 s")

    def _on_message(self, c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(m.payload)
        except ValueError:
            return
        with self.lock:
            self.messages.append((time.time(), m.topic, body))

    def events(self, **match: Any) -> list[dict[str, Any]]:
        with self.lock:
            return [b for _, _, b in self.messages if b.get("type") == "alarm_event"
                    and all(b.get(k) == v for k, v in match.items())]

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def wait_for(pred: Callable[[], Any], timeout_s: float, step_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(step_s)
    return pred()


@dataclass
class Stack:
    tmp: Path
    broker: Any
    ws_port: int
    console_url: str
    app: subprocess.Popen[bytes]
    observer: Observer
    log: Path
    server: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def broker_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/"

    def log_tail(self) -> str:
        return self.log.read_text()[-3000:] if self.log.exists() else ""


def start_stack(tmp: Path) -> Stack:
    from appliance.console.server import make_server, serve_in_thread

    d = broker_dir()
    broker, ws = start_broker(d)
    server = make_server("127.0.0.1", 0, f"ws://127.0.0.1:{ws}/")
    serve_in_thread(server)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    observer = Observer(broker.port)
    cfg = appliance_config(tmp, broker.port, d / "device.password")
    log = tmp / "ionm-run.log"
    app = subprocess.Popen([sys.executable, "-m", "appliance.cli", "run", "--config", str(cfg),
                            "--state-dir", str(tmp / "state")], cwd=str(REPO),
                           stdout=subprocess.DEVNULL, stderr=open(log, "wb"))  # noqa: SIM115
    return Stack(tmp, broker, ws, url, app, observer, log, server, {"dir": d})


def stop_stack(s: Stack) -> None:
    if s.app.poll() is None:
        s.app.terminate()
        try:
            s.app.wait(15)
        except subprocess.TimeoutExpired:
            s.app.kill()
            s.app.wait(5)
    s.observer.close()
    s.server.shutdown()
    s.server.server_close()
    s.broker.stop()
    shutil.rmtree(s.extra["dir"], ignore_errors=True)


def login(page: Any, s: Stack, user: str, password: str | None = None) -> None:
    page.goto(s.console_url)
    # the page fills the broker URL from config.json once its fetch is back
    # (polled from here: the page's CSP forbids evaluating strings)
    assert wait_for(lambda: page.input_value("#broker") != "", 5.0), "no broker URL"
    page.fill("#username", user)
    page.fill("#password", USERS[user] if password is None else password)
    page.click("#connect")


# bright pixels of a canvas (drawn lines on the dark background), and pixels near one colour
PIXELS_JS = """([sel, rgb]) => {
  const c = document.querySelector(sel);
  if (!c || !c.width) return -1;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] < 128) continue;
    const near = rgb && Math.abs(d[i] - rgb[0]) + Math.abs(d[i + 1] - rgb[1])
      + Math.abs(d[i + 2] - rgb[2]) < 60;
    if (rgb ? near : d[i] + d[i + 1] + d[i + 2] > 450) n++;
  }
  return n;
}"""


def pixels(page: Any, selector: str, rgb: tuple[int, int, int] | None = None) -> int:
    return int(page.evaluate(PIXELS_JS, [selector, list(rgb) if rgb else None]))



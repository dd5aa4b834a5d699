"""The console over TLS end to end: `ionm console --cert --key` serves https, the page logs in
over secure WebSockets (wss) to mosquitto's TLS WebSocket listener with a certificate made here
by the openssl CLI, and shows a device's retained state (a technical alarm in cyan). The
browser is told to accept the test CA's certificates (Playwright's ignore_https_errors). Also:
the page's waveform decoder against the appliance's encoder."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from console_helpers import (
    DEVICE,
    USERS,
    broker_dir,
    chromium_path,
    skip_or_fail,
    start_broker,
    wait_for,
)
from system_tools import need_tool

from appliance.analysis.outputs import encode_int16
from appliance.console.server import make_server, serve_in_thread

pytestmark = pytest.mark.timeout(120)


def _openssl(d: Path, *args: str) -> None:
    subprocess.run([need_tool("openssl", "openssl"), *args], cwd=d, check=True,
                   capture_output=True)


def _certificates(d: Path) -> None:
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(d, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=console-test-ca")
    _openssl(d, "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj",
             "/CN=localhost")
    (d / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl(d, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext")


def _publish_retained(port: int) -> None:
    """What a device leaves on the broker: its birth and an active technical alarm."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.username_pw_set(DEVICE, USERS[DEVICE])
    done = threading.Event()
    c.on_connect = lambda *a: done.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert done.wait(5)
    base = f"ionm/v1/{DEVICE}"
    env = {"seq": 1, "msg_id": "00000000-0000-4000-8000-000000000000", "device": DEVICE,
           "t_utc": "2026-01-01T00:00:00.000Z"}
    birth = {**env, "type": "status", "online": True, "session": 1, "name": "IONM OR 7",
             "location": "OR 7", "sites": []}
    active = {**env, "type": "active_alarms", "alarms": [{
        "alarm_id": "tech.lead_off:C4'-Fz", "priority": "medium", "kind": "technical",
        "site": "", "message": "lead off: C4'-Fz", "active": True, "latched": False,
        "acknowledged": False}]}
    for topic, body in ((f"{base}/status", birth), (f"{base}/alarm/active", active)):
        c.publish(topic, json.dumps(body), qos=1, retain=True).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()


def test_console_over_https_and_wss() -> None:
    chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (the `test` extra)")
    d = broker_dir()
    _certificates(d)
    broker, wss = start_broker(d, tls=True)
    server = make_server("127.0.0.1", 0, f"wss://127.0.0.1:{wss}/", "ionm/v1",
                         str(d / "server.crt"), str(d / "server.key"))
    serve_in_thread(server)
    try:
        _publish_retained(broker.port)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path())
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.goto(f"https://127.0.0.1:{server.server_address[1]}/")
            # the page fills the broker from config.json once its fetch is back
            # (polled from here: the page's CSP forbids evaluating strings)
            assert wait_for(lambda: page.input_value("#broker") != "", 5.0), "no broker URL"
            assert page.input_value("#broker") == f"wss://127.0.0.1:{wss}/"
            page.fill("#username", "viewer1")
            page.fill("#password", USERS["viewer1"])
            page.click("#connect")
            card = f'[data-device="{DEVICE}"]'
            page.wait_for_selector(f"{card} .alarm.technical", timeout=10_000)
            assert "lead off" in page.inner_text(card)
            assert "technical" in (page.get_attribute(card, "class") or "")
            assert wait_for(lambda: page.inner_text("#conn") == "connected", 5.0)
            assert "not encrypted" not in page.inner_text("#who")
            # the page decodes the appliance's waveform encoding exactly (int16 LE base64)
            trace = np.array([0.0, 1.5, -2.25, 10.0, -10.0, 3.3])
            scale, data = encode_int16(trace)
            got = page.evaluate("""async ([data, scale]) => Array.from(
                (await import('./js/model.js')).decodeInt16(data, scale))""", [data, scale])
            counts = np.frombuffer(base64.b64decode(data), "<i2")
            assert np.allclose(got, counts * scale, atol=1e-6 * abs(trace).max())
            assert np.allclose(got, trace, atol=scale)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
        broker.stop()
        shutil.rmtree(d, ignore_errors=True)

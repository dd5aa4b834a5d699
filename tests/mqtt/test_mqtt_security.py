"""Security against the shipped deploy/mosquitto config (paths and ports rewritten for a temp
dir): mutual TLS with a CA made here by the openssl CLI, a wrong client certificate refused, the
server certificate verified, username/password on loopback, ACLs that confine a device to its own
subtree and let only authorised operators command it, and the WebSockets listener for browsers."""

from __future__ import annotations

import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from mqtt_support import BASE, REPO, Broker, Collector, free_port, make_cfg, request
from system_tools import need_tool

from appliance.outputs.mqtt import MqttLink

DEVICE_PASSWORD = "device-secret-1"
OPERATORS = {"neuro1": "neuro-secret", "dashboard": "dash-secret", "eve": "eve-secret"}


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([need_tool("openssl", "openssl"), *args], cwd=cwd, check=True,
                   capture_output=True)


def _ca(d: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
             "-subj", f"/CN={name}", cwd=d)


def _cert(d: Path, ca: str, cn: str, name: str, server: bool = False) -> None:
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    ext = d / f"{name}.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n" if server else
                   "extendedKeyUsage=clientAuth\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", ext.name, cwd=d)


@dataclass
class Site:
    d: Path
    broker: Any
    plain: int  # loopback listener, password file
    tls: int  # mutual TLS
    wss: int  # secure WebSockets, password file

    def ctx(self, who: str | None, ca: str = "ca") -> ssl.SSLContext:
        c = ssl.create_default_context(cafile=str(self.d / f"{ca}.crt"))
        if who:
            c.load_cert_chain(str(self.d / f"{who}.crt"), str(self.d / f"{who}.key"))
        return c


@pytest.fixture(scope="module")
def site(mosq_module_dir: Path) -> Iterator[Site]:
    d = mosq_module_dir
    _ca(d, "ca")
    _ca(d, "rogue")
    _cert(d, "ca", "localhost", "server", server=True)
    for cn in ("or1", "neuro1", "eve"):
        _cert(d, "ca", cn, cn)
    _cert(d, "rogue", "or1", "or1-rogue")
    passwd = d / "passwd"
    mosquitto_passwd = need_tool("mosquitto_passwd", "mosquitto")
    subprocess.run([mosquitto_passwd, "-c", "-b", str(passwd), "or1", DEVICE_PASSWORD],
                   check=True, capture_output=True)
    for user, pw in OPERATORS.items():
        subprocess.run([mosquitto_passwd, "-b", str(passwd), user, pw], check=True,
                       capture_output=True)
    (d / "acl").write_text((REPO / "deploy/mosquitto/acl").read_text())
    (d / "or1.password").write_text(DEVICE_PASSWORD + "\n")
    for f in d.iterdir():
        f.chmod(0o644)  # mosquitto runs as its own user
    ports = {"plain": free_port(), "tls": free_port(), "wss": free_port()}
    conf = (REPO / "deploy/mosquitto/ionm.conf").read_text().replace("/etc/mosquitto/ionm",
                                                                        str(d))
    for old, new in (("listener 1883 127.0.0.1\n", f"listener {ports['plain']} 127.0.0.1\n"),
                     ("listener 8883\n", f"listener {ports['tls']} 127.0.0.1\n"),
                     ("listener 8884\n", f"listener {ports['wss']} 127.0.0.1\n")):
        assert old in conf, f"deploy/mosquitto/ionm.conf lost {old!r}"
        conf = conf.replace(old, new)
    conf += f"persistence false\nlog_dest file {d}/mosquitto.log\n"
    broker = Broker(d, extra_conf=conf, port=ports["plain"])
    broker.start()
    yield Site(d, broker, **ports)
    broker.stop()


def _client(s: Site, port: int, who: str | None = None, password: str | None = None,
            transport: str = "tcp", ca: str = "ca") -> tuple[mqtt.Client, dict[int, Any]]:
    """A connected raw paho client; returns it and a mid -> PUBACK reason code map."""
    acks: dict[int, Any] = {}
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, transport=transport)
    c.tls_set_context(s.ctx(None if password else who, ca))
    if password:
        c.username_pw_set(who, password)
    c.on_publish = lambda cl, u, mid, rc, p: acks.__setitem__(mid, rc)
    ok = threading.Event()
    c.on_connect = lambda cl, u, f, rc, p: ok.set() if not rc.is_failure else None
    c.connect("127.0.0.1", port, keepalive=5)
    c.loop_start()
    assert ok.wait(5), f"{who} could not connect"
    return c, acks


def _wait_ack(acks: dict[int, Any], mid: int) -> Any:
    deadline = time.monotonic() + 5
    while mid not in acks and time.monotonic() < deadline:
        time.sleep(0.01)
    return acks[mid]


def _wait_connected(link: MqttLink, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not link.stats()["connected"]:
        time.sleep(0.02)
    return link.stats()["connected"]


def test_mqtt_mutual_tls_and_acl(site: Site, tmp_path: Path) -> None:
    calls: list[tuple[str, dict, str]] = []
    cfg = make_cfg("127.0.0.1", site.tls, tls=True, ca_file=str(site.d / "ca.crt"),
                   cert_file=str(site.d / "or1.crt"), key_file=str(site.d / "or1.key"))
    link = MqttLink(cfg, tmp_path / "outbox.db", lambda n, a, c: calls.append((n, a, c)) or {})
    operator = Collector("127.0.0.1", site.tls, f"{BASE}/#",
                         ssl_context=site.ctx("neuro1"))
    link.start()
    eve, eve_acks = _client(site, site.tls, "eve")
    dev, dev_acks = _client(site, site.tls, "or1")
    try:
        assert _wait_connected(link), link.last_error
        assert operator.wait_for(lambda ms: any(m.topic == f"{BASE}/status" for m in ms), 5)
        time.sleep(0.2)  # the link's SUBACK
        # an authorised operator commands, under its own name
        request(operator.c, f"{BASE}/cmd/neuro1/acknowledge", b"{}",
                f"{BASE}/reply/neuro1/1", b"n1")
        assert operator.wait_for(lambda ms: any(m.corr == b"n1" and "/reply/" in m.topic
                                                for m in ms), 5)
        assert calls == [("acknowledge", {}, "neuro1")]
        # a foreign client (valid certificate, not in the ACL) is refused by the broker,
        # under its own name or pretending to be the operator
        for topic in (f"{BASE}/cmd/eve/acknowledge", f"{BASE}/cmd/neuro1/audio_pause"):
            info = request(eve, topic, b"{}", "ionm/v1/or1/reply/eve/1", b"eve")
            assert _wait_ack(eve_acks, info.mid).value == 135  # not authorised
        # a device writes only its own subtree
        assert _wait_ack(dev_acks, dev.publish("ionm/v1/or2/status", b"{}", qos=1).mid
                         ).value == 135
        assert _wait_ack(dev_acks, dev.publish(f"{BASE}/health", b"{}", qos=1).mid
                         ).value in (0, 16)
        time.sleep(0.3)
        assert calls == [("acknowledge", {}, "neuro1")], "a refused command reached the device"
        assert not any(m.corr == b"eve" for m in operator.msgs)  # not even the request
    finally:
        for c in (eve, dev):
            c.loop_stop()
            c.disconnect()
        link.stop()
        operator.close()


def test_mqtt_wrong_client_cert_and_unverified_server_refused(site: Site,
                                                              tmp_path: Path) -> None:
    d = site.d
    rogue_client = make_cfg("127.0.0.1", site.tls, tls=True, ca_file=str(d / "ca.crt"),
                            cert_file=str(d / "or1-rogue.crt"), key_file=str(d / "or1-rogue.key"))
    rogue_server = make_cfg("127.0.0.1", site.tls, tls=True, ca_file=str(d / "rogue.crt"),
                            cert_file=str(d / "or1.crt"), key_file=str(d / "or1.key"))
    no_cert = make_cfg("127.0.0.1", site.tls, tls=True, ca_file=str(d / "ca.crt"))
    links = [MqttLink(c, tmp_path / f"o{i}.db")
             for i, c in enumerate((rogue_client, rogue_server, no_cert))]
    for link in links:
        link.start()
    try:
        time.sleep(3.0)
        for link in links:
            assert not link.stats()["connected"]
            assert link.counts["connects"] == 0
            assert link.last_error
        assert "CERTIFICATE_VERIFY_FAILED" in links[1].last_error  # we checked the broker
    finally:
        for link in links:
            link.stop()
    log = (d / "mosquitto.log").read_text()
    assert "certificate verify failed" in log.lower() or "peer did not return" in log.lower()


def test_mqtt_password_on_loopback_and_websockets_for_browsers(site: Site,
                                                               tmp_path: Path) -> None:
    cfg = make_cfg("127.0.0.1", site.plain, username="or1",
                   password_file=str(site.d / "or1.password"))
    wrong = tmp_path / "wrong.password"
    wrong.write_text("guess\n")
    bad = make_cfg("127.0.0.1", site.plain, username="or1", password_file=str(wrong))
    link, bad_link = MqttLink(cfg, tmp_path / "a.db"), MqttLink(bad, tmp_path / "b.db")
    link.start()
    bad_link.start()
    try:
        assert _wait_connected(link), link.last_error
        link.publish_active_alarms([])
        time.sleep(0.5)
        assert not bad_link.stats()["connected"]
        assert "refused" in bad_link.last_error or "Not authorized" in bad_link.last_error
        # a browser's path: secure WebSockets, username and password, read-only viewer
        viewer = Collector("127.0.0.1", site.wss, f"{BASE}/#", ssl_context=site.ctx(None),
                           username="dashboard", password=OPERATORS["dashboard"],
                           client_kw={"transport": "websockets"})
        try:
            assert viewer.wait_for(lambda ms: {f"{BASE}/status", f"{BASE}/alarm/active"}
                                   <= {m.topic for m in ms if m.retain}, 5)
            info = request(viewer.c, f"{BASE}/cmd/dashboard/acknowledge", b"{}",
                           f"{BASE}/reply/dashboard/1", b"d")
            info.wait_for_publish(5)
            time.sleep(0.3)
            assert not any(m.corr == b"d" for m in viewer.msgs)  # refused: no reply
            assert link.stats()["commands"] == {"ok": 0, "rejected": 0}
        finally:
            viewer.close()
    finally:
        link.stop()
        bad_link.stop()

"""Every message type the link publishes validates against docs/asyncapi.yaml; a client no one
here wrote (mosquitto_sub) gets the retained status and active alarm set; topics, sequence and
session survive a restart; the config refuses plaintext to a remote broker."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from mqtt_support import (
    BASE,
    REPO,
    Broker,
    Collector,
    free_port,
    load_schemas,
    make_cfg,
    request,
    schema_for,
)
from system_tools import need_tool

from appliance.alarms import AlarmManager
from appliance.analysis.outputs import ComponentValue, FitValue, TrendPoint, Waveform
from appliance.commands import COMMANDS
from appliance.conditions import Condition, Kind, Priority
from appliance.config import from_dict
from appliance.errors import ConfigError
from appliance.outputs.mqtt import MqttLink
from appliance.outputs.mqtt.topics import Topics, level
from appliance.settings.alarms import AlarmSettings


def _trend() -> dict:
    return TrendPoint(
        t_s=12.5, site="L median", modality="ssep_upper", channel="C3'-Fz", role="cortical",
        n_sweeps=200,
        components={"N20": ComponentValue(20.1, -1.2, 0.93, True),
                    "P25": ComponentValue(float("nan"), 0.0, 0.1, False)},
        primary="N20", peak_to_peak_uv=2.1, residual_noise_uv=0.31, fsp=3.2, snr_db=9.1,
        split_half_r=0.8, filter={"phase": "zero", "band_hz": [30.0, 1000.0], "notch_hz": 60.0},
        rejected={"amplitude": 2},
        fit=FitValue(0.42, (0.3, 0.54), 0.88, 20.3, 0.2, True, 300, 150, ({}, {}),
                     latency_se_ms=0.21),
    ).to_json()


def _waveform() -> dict:
    t = np.arange(400) / 4000.0
    return Waveform(t_s=12.5, site="L median", modality="ssep_upper", channel="C3'-Fz",
                    n_sweeps=200, sample_rate_hz=4000.0, t0_ms=-10.0,
                    data_uv=2.0 * np.sin(2 * np.pi * 40 * t)).to_json()


def _alarms() -> tuple[list[dict], list[dict]]:
    mgr = AlarmManager(AlarmSettings())
    cond = Condition("ssep.amplitude:L median:N20", Kind.PHYSIOLOGICAL, Priority.HIGH, True,
                     1.0, "L median", "N20 amplitude -55 % from baseline",
                     {"baseline_uv": 2.0, "now_uv": 0.9})
    lead = Condition("tech.lead_off:C3'-Fz", Kind.TECHNICAL, Priority.MEDIUM, True, 1.0,
                     "C3'-Fz", "electrode off")
    events = mgr.update(cond) + mgr.update(lead) + mgr.acknowledge("mqtt:neuro1")
    events += mgr.audio_pause("button") or []
    return [e.to_json() for e in events], mgr.active_set()


def test_mqtt_every_message_type_validates_against_asyncapi(tmp_path: Path, broker) -> None:
    schemas = load_schemas()
    sub = Collector(broker.host, broker.port, "ionm/#")
    link = MqttLink(make_cfg(broker.host, broker.port), tmp_path / "outbox.db",
                    lambda name, args, client: {"accepted": name})
    link.start()
    try:
        events, active = _alarms()
        assert {"raised", "acknowledged"} <= {e["event"] for e in events}
        for e in events:
            link.publish_alarm_event(e)
        link.publish_active_alarms(active)
        link.publish_trend(_trend())
        link.publish_waveform(_waveform())
        link.publish_case({"type": "case", "state": "running", "case_id": "c-1",
                           "label": "spine", "procedure": "scoliosis",
                           "started_utc": "2026-11-27T10:00:00.000Z"})
        link.publish_health({"sample_rate_hz": 4000, "missed_samples": 0, "cpu_percent": 31.5})
        assert sub.wait_for(lambda ms: any(m.topic == f"{BASE}/status" for m in ms), 5)
        for i, (name, payload) in enumerate([("ping", b""), ("start_case", b'{"label": "x"}'),
                                             ("bogus", b"{}"), ("annotate", b"[1]")]):
            request(sub.c, f"{BASE}/cmd/neuro1/{name}", payload,
                    f"{BASE}/reply/neuro1/t", str(i).encode())
        assert sub.wait_for(lambda ms: sum(m.topic == f"{BASE}/reply/neuro1/t"
                                           for m in ms) == 4, 5)
        assert sub.wait_for(lambda ms: any(m.topic == f"{BASE}/health" for m in ms), 5)
    finally:
        link.stop()
    assert sub.wait_for(lambda ms: any(m.body.get("online") is False for m in ms), 5)
    sub.close()

    seen: dict[str, int] = {}
    for m in sub.msgs:
        if "/cmd/" in m.topic:
            continue  # the requests themselves
        name = schema_for(m.body)
        errors = [e.message for e in schemas[name].iter_errors(m.body)]
        assert not errors, (m.topic, name, errors, m.body)
        seen[name] = seen.get(name, 0) + 1
        assert m.qos == 1
    assert set(seen) == {"birth", "death", "health", "case", "trend", "waveform",
                         "alarmEvent", "activeAlarms", "commandReply"}
    # the schemas are not vacuous: a broken message fails
    bad = dict(sub.on(f"{BASE}/trend/ssep_upper/L_median")[0].body, seq=0)
    assert list(schemas["trend"].iter_errors(bad))
    trend = sub.on(f"{BASE}/trend/ssep_upper/L_median")[0].body
    assert trend["fit"]["measure"] == "template_fit"  # the judged measure travels with it
    assert list(schemas["trend"].iter_errors({**trend, "fit": {**trend["fit"], "n_sweeps": -1}}))
    # alarm events carry an MQTT 5 message expiry; the alarm set and case are retained
    ev = sub.on(f"{BASE}/alarm/event")[0]
    assert 0 < ev.props.MessageExpiryInterval <= 300
    replies = {m.corr: m.body for m in sub.on(f"{BASE}/reply/neuro1/t")}
    assert replies[b"0"]["ok"] and replies[b"1"]["result"] == {"accepted": "start_case"}
    assert replies[b"2"]["error"]["code"] == "unknown_command"
    assert replies[b"3"]["error"]["code"] == "malformed"


def test_mqtt_mosquitto_sub_gets_retained_status_and_alarm_set(tmp_path: Path, broker) -> None:
    link = MqttLink(make_cfg(broker.host, broker.port), tmp_path / "outbox.db")
    link.start()
    try:
        events, active = _alarms()
        link.publish_active_alarms(active)
        probe = Collector(broker.host, broker.port, f"{BASE}/alarm/active")
        assert probe.wait_for(lambda ms: len(ms) >= 1, 5)
        probe.close()
        out = subprocess.run(
            [need_tool("mosquitto_sub", "mosquitto-clients"), "-h", broker.host,
             "-p", str(broker.port), "-V", "mqttv5",
             "-t", f"{BASE}/status", "-t", f"{BASE}/alarm/active", "--retained-only",
             "-C", "2", "-W", "5", "-F", "%t %p"],
            capture_output=True, text=True, timeout=10,
        )
    finally:
        link.stop()
    assert out.returncode == 0, out.stderr
    got = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    schemas = load_schemas()
    status = json.loads(got[f"{BASE}/status"])
    assert status["online"] is True and not list(schemas["birth"].iter_errors(status))
    # each site's planned criteria travel in the birth, so consoles draw the real lines
    site = status["sites"][0]
    assert site["criteria"]["amplitude_ratio_min"] == 0.5  # the SSEP default
    assert list(schemas["birth"].iter_errors(
        {**status, "sites": [{**site, "criteria": {"amplitude_ratio_min": "half"}}]}))
    alarm_set = json.loads(got[f"{BASE}/alarm/active"])
    assert not list(schemas["activeAlarms"].iter_errors(alarm_set))
    assert {a["alarm_id"] for a in alarm_set["alarms"]} == {a["alarm_id"] for a in active}


def test_mqtt_site_names_become_safe_topic_levels(tmp_path: Path, broker) -> None:
    assert level("L median") == "L_median"
    assert level("a/b+#c") == "a_b__c"
    assert level("") == "_" and level("$SYS") == "_SYS"
    t = Topics("ionm/v1", "or1")
    assert t.parse_cmd("ionm/v1/or1/cmd/neuro1/ping") == ("neuro1", "ping")
    assert t.parse_cmd("ionm/v1/or1/cmd/neuro1/ping/x") is None
    sub = Collector(broker.host, broker.port, f"{BASE}/trend/#")
    link = MqttLink(make_cfg(broker.host, broker.port), tmp_path / "outbox.db")
    link.start()
    try:
        link.publish_trend(dict(_trend(), site="L/R +#median"))
        link.publish_trend({"type": "trend", "site": "no modality"})  # rejected and counted
        assert sub.wait_for(lambda ms: len(ms) == 1, 5)
    finally:
        link.stop()
        sub.close()
    assert sub.msgs[0].topic == f"{BASE}/trend/ssep_upper/L_R___median"
    assert sub.msgs[0].body["site"] == "L/R +#median"
    assert link.counts["rejected_publish"] == 1


def test_mqtt_sequence_and_session_survive_restart(tmp_path: Path, broker) -> None:
    sub = Collector(broker.host, broker.port, f"{BASE}/#")
    cfg = make_cfg(broker.host, broker.port)
    topic = f"{BASE}/trend/ssep_upper/L_median"
    sessions = []
    for k in range(2):
        link = MqttLink(cfg, tmp_path / "outbox.db")
        link.start()
        for _ in range(3):
            link.publish_trend(_trend())
        assert sub.wait_for(lambda ms, k=k: len(sub.by_topic()[topic]) >= 3 * (k + 1), 5)
        link.stop()
        sessions.append(link.stats()["session"])
    sub.close()
    assert [b["seq"] for b in sub.by_topic()[topic]] == [1, 2, 3, 4, 5, 6]
    assert len(sub.on(topic)) == 6  # a clean stop leaves no acknowledged row to resend
    assert sessions[1] > sessions[0] >= 1


def test_mqtt_config_refuses_plaintext_to_remote_broker(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.host.*mqtt\.tls"):
        from_dict({"mqtt": {"host": "10.20.30.40"}})
    with pytest.raises(ConfigError, match=r"mqtt\.host"):
        from_dict({"mqtt": {"host": "broker.hospital.example"}})
    assert from_dict({"mqtt": {"host": "10.20.30.40", "allow_plaintext_remote": True}})
    assert from_dict({"mqtt": {"host": "::1"}}).mqtt.host == "::1"
    cfg = from_dict({"mqtt": {"host": "10.20.30.40", "tls": True}})
    assert cfg.mqtt.tls
    with pytest.raises(ConfigError, match=r"mqtt\.cert_file/mqtt\.key_file"):
        from_dict({"mqtt": {"tls": True, "cert_file": "a.pem"}})
    missing = from_dict({"mqtt": {"username": "or1", "password_file": str(tmp_path / "nope")}})
    with pytest.raises(ConfigError, match=r"mqtt\.password_file"):
        MqttLink(missing, tmp_path / "o.db")
    bad_ca = from_dict({"mqtt": {"tls": True, "ca_file": str(tmp_path / "none.pem")}})
    with pytest.raises(ConfigError, match=r"mqtt\.ca_file"):
        MqttLink(bad_ca, tmp_path / "o.db")


def test_mqtt_asyncapi_document_is_consistent_with_the_code() -> None:
    doc = yaml.safe_load((REPO / "docs" / "asyncapi.yaml").read_text())
    assert doc["asyncapi"].startswith("3.")

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref"] + [
                r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        node: object = doc
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(node, dict) and part in node, f"dangling $ref {ref}"
            node = node[part]
    t = Topics("ionm/v1", "or1")
    code = {t.status, t.health, t.case, t.annotation, t.alarm_event, t.alarm_active,
            t.baseline("ssep_upper", "L median", "Orb-oc L"),
            t.trend("ssep_upper", "L median"), t.waveform("ssep_upper", "L median"),
            f"{t.cmd_prefix}neuro1/ping",
            # EEG and EMG (appliance/analysis/continuous.py)
            t.continuous("eeg_trend"), t.continuous("eeg_raw"), t.continuous("emg_trend"),
            t.continuous("emg_event", "Orb-oc L"), t.continuous("temg_response", "L4 screw"),
            t.continuous("temg_threshold", "L4 screw")}
    sample = {"device": "or1", "modality": "ssep_upper", "site": "L_median",
              "client": "neuro1", "command": "ping", "channel": "Orb-oc_L",
              "target": "L4_screw"}
    documented = {ch["address"].format(**sample) for ch in doc["channels"].values()
                  if ch["address"]}
    assert documented == code
    assert set(doc["channels"]["command"]["parameters"]["command"]["enum"]) == set(COMMANDS)


def test_mqtt_session_counts_only_accepted_connections(tmp_path: Path) -> None:
    """Failed reconnects (no broker yet) do not raise the session counter; each accepted
    connection does, once."""
    port = free_port()
    cfg = make_cfg("127.0.0.1", port)
    link = MqttLink(cfg, tmp_path / "outbox.db")
    link.start()
    broker = Broker(tmp_path / "b", port=port)
    try:
        deadline = time.monotonic() + 10
        while "connect" not in link.stats()["last_error"] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.0)  # several refused attempts (0.2 s doubling to 1 s)
        assert "Refused" in link.stats()["last_error"] and not link.stats()["connected"]
        (tmp_path / "b").mkdir()
        broker.start()
        while not link.stats()["connected"] and time.monotonic() < deadline + 10:
            time.sleep(0.05)
        assert link.stats()["connected"] and link.stats()["session"] == 1
        link.stop()
        link = MqttLink(cfg, tmp_path / "outbox.db")
        link.start()
        while not link.stats()["connected"] and time.monotonic() < deadline + 20:
            time.sleep(0.05)
        assert link.stats()["session"] == 2
    finally:
        link.stop()
        broker.stop()

"""EEG and EMG payloads from the real pipelines, published through the real link to a real
broker, validate against docs/asyncapi.yaml on the documented topics; the new commands are in
the contract's command enum."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from mqtt_support import BASE, REPO, Collector, load_schemas, make_cfg

from appliance import config
from appliance.analysis.monitor import Monitor
from appliance.commands import COMMANDS
from appliance.frontend.block import SampleBlock
from appliance.frontend.simulated.patient import Patient
from appliance.frontend.simulated.scenario import from_dict as scenario
from appliance.outputs.mqtt import MqttLink
from appliance.settings.analysis import SiteSettings

SCHEMA = {"eeg_trend": "eegTrend", "eeg_raw": "eegRaw", "emg_trend": "emgTrend",
          "emg_event": "emgEvent", "temg_response": "temgResponse",
          "temg_threshold": "temgThreshold"}


def _outputs() -> list[dict]:
    """A few seconds of each modality on the simulated patient."""
    ch = ["C3'-Fz", "C4'-Fz", "Orb-oc L", "TA L"]
    cfg = config.from_dict({"frontend": {"channels": ch, "sample_rate_hz": 2000}, "analysis": {
        "eeg": {"left": [ch[0]], "right": [ch[1]], "baseline_s": 4.0},
        "emg_free": {"channels": [ch[2]]}, "emg_triggered": {"channels": [ch[3]]}}})
    mon = Monitor(cfg)
    probe = SiteSettings(name="probe", modality="ssep_upper", channels=(), trigger_bit=1,
                         rate_hz=2.0)
    p = Patient(ch, 2000, [probe], scenario({"name": "m", "event": [
        {"type": "a_train", "at_s": 2.0, "channel": ch[2], "duration_s": 0.3},
        {"type": "emg_burst", "at_s": 4.0, "channel": ch[2], "duration_s": 0.1},
        {"type": "cautery", "at_s": 6.0, "duration_s": 0.5, "channels": ch[2:]},
        {"type": "screw", "at_s": 0.0, "channel": ch[3], "threshold_ma": 3.0}]}), seed=5)
    p.stim_intensity_ma = lambda: mon.continuous.temg.intensity_ma
    mon.temg_search("L4 left screw")
    out, n = [], 32
    for k in range(int(10.0 * 2000) // n):
        uv, trig = p.generate(n)
        out += [o.to_json() for o in mon.push(SampleBlock(
            uv, trig, np.zeros(uv.shape, bool), np.zeros(4, bool), k * n, 2000.0, 0.0))]
    return [o for o in out if o.get("type") in SCHEMA]


def test_continuous_payloads_validate_on_their_topics(tmp_path: Path, broker) -> None:
    outs = _outputs()
    types = {o["type"] for o in outs}
    assert types == set(SCHEMA), types
    assert {o["kind"] for o in outs if o["type"] == "emg_event"} >= {"a_train", "cautery"}
    schemas = load_schemas()
    sub = Collector(broker.host, broker.port, f"{BASE}/+/#")
    link = MqttLink(make_cfg(broker.host, broker.port), tmp_path / "outbox.db")
    link.start()
    try:
        for o in outs:
            link.publish_continuous(o)
        assert sub.wait_for(lambda ms: sum(m.body.get("type") in SCHEMA for m in ms)
                            == len(outs), 10)
    finally:
        link.stop()
    sub.close()
    topics = set()
    for m in sub.msgs:
        t = m.body.get("type")
        if t not in SCHEMA:
            continue
        errors = [e.message for e in schemas[SCHEMA[t]].iter_errors(m.body)]
        assert not errors, (m.topic, t, errors)
        topics.add(m.topic.removeprefix(BASE + "/"))
    assert {"eeg/trend", "eeg/raw", "emg/trend", "emg/event/Orb-oc_L", "emg/event/all",
            "temg/response/L4_left_screw", "temg/threshold/L4_left_screw"} <= topics
    # the schemas are not vacuous: a broken message fails
    bad = dict(next(m.body for m in sub.msgs if m.body.get("type") == "emg_event"), kind="x")
    assert list(schemas["emgEvent"].iter_errors(bad))


def test_new_commands_are_in_the_contract() -> None:
    doc = yaml.safe_load((REPO / "docs" / "asyncapi.yaml").read_text())
    enum = doc["channels"]["command"]["parameters"]["command"]["enum"]
    assert set(COMMANDS) <= set(enum), set(COMMANDS) - set(enum)


def test_eeg_alarm_evidence_is_in_the_contract() -> None:
    # EEG conditions from the real criterion, through the real AlarmManager: their alarm events
    # and active-set entries validate, evidence included (eegEvidence has no extra fields)
    from appliance.alarms.manager import AlarmManager
    from appliance.analysis.eeg import EegPipeline
    from appliance.settings.continuous import EegSettings

    p = EegPipeline(EegSettings(left=("L",), right=("R",)), [0, 1], 250.0)
    mgr = AlarmManager()
    events = []
    for rl, rr in [(1.0, 1.0)] * 4 + [(0.2, 1.0)] * 4 + [(0.2, 0.3)] * 6:
        for c in p._judge({"L": {"fast_ratio": rl}, "R": {"fast_ratio": rr},
                           "asymmetry": {"fast_lr": round((rl - rr) / (rl + rr), 3)}}):
            events += [e.to_json() for e in mgr.update(c)]
    assert {e["alarm_id"] for e in events} == {"eeg.fast_loss:L", "eeg.global_change"}
    env = {"seq": 1, "msg_id": "12345678-1234-4123-8123-123456789abc", "device": "or1",
           "t_utc": "2026-12-06T06:00:00Z"}
    schemas = load_schemas()
    for e in events:
        assert not [x.message for x in schemas["alarmEvent"].iter_errors({**env, **e})], e
    for a in mgr.active_set():
        assert not [x.message for x in schemas["activeAlarm"].iter_errors(a)], a
    bad = {**env, **events[0], "evidence": {**events[0]["evidence"], "new_field": 1}}
    assert list(schemas["alarmEvent"].iter_errors(bad))  # a field the contract lacks fails

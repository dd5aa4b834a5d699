"""End to end in one process: simulated patient (acquisition process, real time) ->
Monitor -> AlarmManager -> Lights on the recording GPIO backend, MQTT to a real mosquitto, case
recorder, sd_notify on a bound datagram socket.

Detection time = the moment the Monitor's push() returns the active SSEP amplitude condition
(the trend update at which the criterion is met, `Appliance.timeline.detected_s`). The red light's
first rising edge and the alarm event at an MQTT subscriber must each follow within 1 s.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
from e2e_helpers import (
    DEVICE,
    DROP_AT_S,
    N_SWEEPS_S,
    config_dict,
    contract_errors,
    start_appliance,
    wait_for,
)

from appliance import config
from appliance.outputs.gpio import RecordingBackend
from appliance.service import Appliance

ALARM = "ssep.amplitude:L median:C4'-Fz"


def test_e2e_ssep_drop_reaches_red_light_and_mqtt_within_1_s(tmp_path: Path, broker, notify,
                                                              subscriber) -> None:
    cfg = config.from_dict(config_dict(tmp_path, broker, realtime=True))
    backend = RecordingBackend()
    app = Appliance(cfg, tmp_path / "state", lights_backend=backend)
    runner = threading.Thread(target=app.run, name="appliance", daemon=True)
    runner.start()
    try:
        assert wait_for(lambda: ALARM in app.timeline.detected_s, 90.0), (
            f"no {ALARM} within 90 s; detected: {app.timeline.detected_s}, "
            f"status: {app.status_line()}")
        detected = app.timeline.detected_s[ALARM]
        # the drop is detected after it happens, within two full averaging windows
        t_stream = app.timeline.detected_t_s[ALARM]
        assert DROP_AT_S < t_stream <= DROP_AT_S + 2 * N_SWEEPS_S, t_stream

        def mqtt_raised() -> list[float]:
            return [t for t, _, b in subscriber.of_type("alarm_event")
                    if b["alarm_id"] == ALARM and b["event"] == "raised"]

        assert wait_for(lambda: mqtt_raised() and len(backend.edges("red", detected)[0]) >= 5, 4.0)
        # red flashes at 2 Hz, 50 %: its first rise within 1 s of detection
        t_all, s_all = backend.edges("red")
        assert not s_all[t_all < detected][-1]  # dark (after the lamp test) until detection
        t_red, s_red = backend.edges("red", since_s=detected)
        rises = t_red[s_red]
        assert rises.size >= 2
        red_delay_s = rises[0] - detected
        assert red_delay_s <= 1.0, red_delay_s
        period, duty = backend.flash_timing("red", since_s=detected)
        assert np.all(np.abs(period - 0.5) < 0.1) and np.all(np.abs(duty - 0.5) < 0.1), (
            period, duty)
        # alarm event at the subscriber within 1 s of detection
        mqtt_delay_s = mqtt_raised()[0] - detected
        assert 0.0 <= mqtt_delay_s <= 1.0, mqtt_delay_s
        (_, topic, ev), = [m for m in subscriber.of_type("alarm_event")
                           if m[2]["alarm_id"] == ALARM and m[2]["event"] == "raised"]
        assert topic == f"ionm/v1/{DEVICE}/alarm/event"
        assert ev["priority"] == "high" and ev["latched"] and ev["cause"] == "analysis"
        assert abs(ev["t_s"] - t_stream) < 1.0  # stream clock, as the BDF+ annotations use
        active = subscriber.of_type("active_alarms")
        assert any(ALARM in [a["alarm_id"] for a in b["alarms"]] for _, _, b in active)
        assert subscriber.of_type("trend") and subscriber.of_type("case")
        case_dirs_before = list((tmp_path / "cases").iterdir())

        # acknowledge over MQTT: the command goes through the loop and is answered
        subscriber.publish(f"ionm/v1/{DEVICE}/cmd/tester/acknowledge", "{}")
        assert wait_for(lambda: subscriber.of_type("command_reply"), 5.0)
        reply = subscriber.of_type("command_reply")[0][2]
        assert reply["ok"], reply
        acked = [b for _, _, b in subscriber.of_type("alarm_event")
                 if b["event"] == "acknowledged" and b["alarm_id"] == ALARM]
        assert acked and acked[0]["cause"] == "mqtt:tester"

        def command(name: str, payload: str) -> dict:
            n = len(subscriber.of_type("command_reply"))
            subscriber.publish(f"ionm/v1/{DEVICE}/cmd/tester/{name}", payload)
            assert wait_for(lambda: len(subscriber.of_type("command_reply")) > n, 5.0), name
            return subscriber.of_type("command_reply")[n][2]

        # set_baseline runs on the loop (the Monitor is not thread-safe) and is answered
        r = command("set_baseline", '{"site": "L median"}')
        assert r["ok"] and {b["channel"] for b in r["result"]["baselines"]} >= {"C4'-Fz"}, r
        r = command("set_baseline", '{"site": "nowhere"}')
        assert not r["ok"] and "nowhere" in r["error"]["message"]
        # a new case: a new folder, the old one stopped, the case topic says so
        first_case = app.case_id
        r = command("start_case", '{"label": "P-002", "procedure": "ACDF C5-6"}')
        assert r["ok"], r
        assert r["result"]["case_id"] != first_case == case_dirs_before[0].name
        assert wait_for(lambda: any(b.get("case_id") == r["result"]["case_id"]
                                    and b["state"] == "running"
                                    for _, _, b in subscriber.of_type("case")), 3.0)
        r = command("stop_case", "{}")
        assert r["ok"] and app.case_id is None
        r = command("annotate", '{"text": "no case"}')
        assert not r["ok"] and "no case" in r["error"]["message"]
        print(f"\ndetection -> red light {red_delay_s * 1e3:.1f} ms, "
              f"-> MQTT subscriber {mqtt_delay_s * 1e3:.1f} ms (stream t {t_stream:.1f} s)")
    finally:
        app.request_stop()
        runner.join(20.0)
    assert not runner.is_alive()

    # everything the appliance published keeps the documented contract
    assert subscriber.of_type("health") and not contract_errors(subscriber.messages)
    acq = [b["acquisition"] for _, _, b in subscriber.of_type("health") if "acquisition" in b]
    assert acq and acq[-1]["samples"] > 0  # the loss accounting is published
    assert acq[-1]["missed_samples"] == acq[-1]["corrupt_frames"] == 0
    cases = [b for _, _, b in subscriber.of_type("case")]
    assert cases[0]["label"] == DEVICE and cases[0]["started_utc"]

    # systemd: READY once analysing, STATUS lines, WATCHDOG only after READY, STOPPING at the end
    ready = notify.first("READY=1")
    assert ready is not None and abs(ready - app.timeline.ready_s) < 1.0
    watchdogs = [t for t, m in notify.messages if m == "WATCHDOG=1"]
    assert len(watchdogs) >= 3 and min(watchdogs) >= ready
    statuses = notify.texts("STATUS=")
    assert any("case " in s and "2 sites" in s and "2000 Hz" in s and "alarms 1" in s
               for s in statuses), statuses[-3:]
    assert notify.messages[-1][1] == "STOPPING=1"
    # green lit while monitoring, dark after shutdown; everything off at the end
    t_g, s_g = backend.edges("green")
    assert s_g.any() and not s_g[-1]
    # two cases: the first (stopped by start_case) holds the alarm and the baselines the
    # service saved for recovery; the second was stopped by stop_case
    import sqlite3

    case_dirs = sorted((tmp_path / "cases").iterdir())
    assert len(case_dirs) == 2
    db = sqlite3.connect(case_dirs[0] / "case.sqlite")
    kinds = dict(db.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
    assert kinds.get("alarm_event", 0) >= 2 and kinds.get("trend", 0) > 0, kinds
    assert kinds.get("command", 0) >= 2, kinds  # acknowledge and set_baseline are recorded
    state = dict(db.execute("SELECT key, json FROM state").fetchall())
    assert json.loads(state["baselines"])["current"]
    stopped = [db.execute('SELECT stopped_utc FROM "case"').fetchone()[0]]
    db.close()
    db = sqlite3.connect(case_dirs[1] / "case.sqlite")
    stopped += [db.execute('SELECT label, stopped_utc FROM "case"').fetchone()]
    db.close()
    assert stopped[0] and stopped[1][0] == "P-002" and stopped[1][1]


def test_e2e_mqtt_broker_down_is_a_technical_alarm_and_monitoring_goes_on(
        tmp_path: Path, broker, notify) -> None:
    """Broker gone: tech.mqtt (low), the analysis and the green light carry on, the watchdog is
    still fed (the outbox accepts); broker back: the alarm ends and the backlog is delivered."""
    d = config_dict(tmp_path, broker, realtime=True)
    d["mqtt"]["reconnect_max_s"] = 1.0  # reconnect soon after the broker is back
    app, backend, runner = start_appliance(d, tmp_path)
    try:
        assert wait_for(lambda: app.mqtt is not None and app.mqtt.stats()["connected"], 10.0)
        broker.stop()
        assert wait_for(lambda: "tech.mqtt" in app.timeline.raised_s, 15.0)
        active = {a["alarm_id"]: a for a in app.manager.active_set()}
        assert active["tech.mqtt"]["priority"] == "low"
        t_down = time.monotonic()
        n_wd = len([1 for t, m in notify.messages if m == "WATCHDOG=1" and t > t_down])
        blocks = app.blocks
        time.sleep(1.5)
        assert app.blocks > blocks  # analysis goes on
        assert len([1 for t, m in notify.messages if m == "WATCHDOG=1" and t > t_down]) > n_wd
        assert backend.levels[app.cfg.lights.green_pin]
        broker.start()
        assert wait_for(lambda: "tech.mqtt" not in
                        {a["alarm_id"] for a in app.manager.active_set()}, 20.0)
    finally:
        app.request_stop()
        runner.join(20.0)
    assert not runner.is_alive()

"""The EEG baseline re-taken by command, through the real path: MQTT `set_baseline` -> the
service loop -> Monitor.set_baseline -> the EEG pipeline, whose `eeg/trend` messages then say
`baseline: false` until the new baseline is taken."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from e2e_helpers import contract_errors, start_appliance, wait_for

DEVICE = "or-eeg"
CH = ["C3'-Fz", "C4'-Fz"]


def test_e2e_set_baseline_over_mqtt_restarts_the_eeg_baseline(
        tmp_path: Path, broker: Any, subscriber: Any) -> None:
    # short epochs and a 4-s baseline so the test streams ~12 s
    d = {"device": {"id": DEVICE},
         "frontend": {"kind": "simulated", "sample_rate_hz": 250, "channels": CH,
                      "realtime": True, "seed": 2},
         "analysis": {"eeg": {"left": CH[:1], "right": CH[1:], "epoch_s": 0.5, "welch_s": 1.0,
                              "segment_s": 0.5, "baseline_s": 4.0}},
         "alarms": {"control_socket": str(tmp_path / "alarm.sock")},
         "lights": {"backend": "recording", "lamp_test_s": 0.2},
         "mqtt": {"enabled": True, "host": "127.0.0.1", "port": broker.port,
                  "keepalive_s": 5},
         "recording": {"enabled": False}}
    app, _, runner = start_appliance(d, tmp_path)

    def trends(since: float = 0.0) -> list[dict]:
        return [b for t, _, b in subscriber.of_type("eeg_trend") if t > since]

    def command(name: str, payload: str) -> dict:
        n = len(subscriber.of_type("command_reply"))
        subscriber.publish(f"ionm/v1/{DEVICE}/cmd/tester/{name}", payload)
        assert wait_for(lambda: len(subscriber.of_type("command_reply")) > n, 5.0), name
        return subscriber.of_type("command_reply")[n][2]

    try:
        assert wait_for(lambda: any(b["baseline"] for b in trends()), 20.0), trends()[-3:]
        r = command("set_baseline", '{"site": "eeg"}')
        assert r["ok"] and r["result"]["baselines"] == [], r
        t_reply = subscriber.of_type("command_reply")[-1][0]
        # the next epochs have no baseline; ~4 s later there is one again
        assert wait_for(lambda: any(not b["baseline"] for b in trends(t_reply)), 5.0)
        assert not trends(t_reply)[0]["baseline"]
        assert wait_for(lambda: trends(t_reply)[-1]["baseline"], 10.0), trends(t_reply)[-3:]
        # an EEG channel names the same pipeline; an unknown name lists what is allowed
        r = command("set_baseline", '{"site": "C4\'-Fz"}')
        assert r["ok"], r
        r = command("set_baseline", '{"site": "nowhere"}')
        assert not r["ok"] and "'eeg'" in r["error"]["message"], r
    finally:
        app.request_stop()
        runner.join(15.0)
    assert not runner.is_alive()
    assert not contract_errors(subscriber.messages)

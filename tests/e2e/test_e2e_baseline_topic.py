"""The retained baseline topic: a console that joins mid-case gets each channel's baseline with
the average it was taken from (the real appliance, a real broker, mosquitto_sub as the late
reader); a new case replaces it with `cleared`. The baseline on command is annotated in the case's
raw recording, and `ionm replay` of that recording takes the same baseline at the same sample."""

from __future__ import annotations

import base64
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from e2e_helpers import DEVICE, config_dict, contract_errors, start_appliance, wait_for
from system_tools import need_tool

TOPIC = f"ionm/v1/{DEVICE}/baseline/ssep_upper/L_median/C4_-Fz"


def _late_reader(broker: Any) -> dict[str, Any]:
    """What a client subscribing now gets: the retained message only."""
    out = subprocess.run([need_tool("mosquitto_sub", "mosquitto-clients"), "-h", broker.host,
                          "-p", str(broker.port), "-V", "mqttv5", "-t", TOPIC,
                          "--retained-only", "-C", "1", "-W", "5"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _uv(w: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(w["data"]), "<i2") * w["scale_uv"]


def test_baseline_is_retained_with_its_average_and_cleared_by_a_new_case(
        tmp_path: Path, broker, subscriber) -> None:
    app, _, runner = start_appliance(config_dict(tmp_path, broker, realtime=True), tmp_path)

    def command(name: str, args: dict[str, Any]) -> dict[str, Any]:
        n = len(subscriber.of_type("command_reply"))
        subscriber.publish(f"ionm/v1/{DEVICE}/cmd/tester/{name}", json.dumps(args))
        assert wait_for(lambda: len(subscriber.of_type("command_reply")) > n, 5.0), name
        return subscriber.of_type("command_reply")[n][2]

    def on_topic() -> list[dict[str, Any]]:
        return [m for _, t, m in subscriber.messages if t == TOPIC]

    try:
        waves = lambda: [m for _, t, m in subscriber.messages  # noqa: E731
                         if m.get("type") == "waveform" and m["channel"] == "C4'-Fz"
                         and m["site"] == "L median"]
        assert wait_for(lambda: waves(), 30.0), "no average"
        reply = command("set_baseline", {"site": "L median"})
        assert reply["ok"], reply
        # the reply names what was taken, as the baseline message does, without the template
        taken = reply["result"]["baselines"]
        assert taken and all(d["type"] == "baseline" and d["site"] == "L median"
                             and d["amplitude_uv"] > 0 and "template_uv" not in d
                             for d in taken), taken
        assert wait_for(lambda: any(m.get("reason") == "command" for m in on_topic()), 5.0)
        b = next(m for m in on_topic() if m.get("reason") == "command")
        # the trace is the average the baseline was taken from, at the baseline's update
        w = next(w for w in waves() if w["t_s"] == b["waveform"]["t_s"])
        assert np.array_equal(_uv(b["waveform"]), _uv(w)) and len(_uv(w)) > 50
        assert b["amplitude_uv"] > 0 and b["modality"] == "ssep_upper"
        late = _late_reader(broker)
        assert late["reason"] in ("command", "auto") and late["waveform"]["data"]
        assert not contract_errors([(0.0, TOPIC, m) for m in on_topic()])
        # a new patient: the retained baseline is replaced by `cleared`
        assert command("start_case", {"label": "P-2"})["ok"]
        assert wait_for(lambda: _late_reader(broker).get("cleared") is True, 5.0)
        assert not contract_errors([(0.0, TOPIC, m) for m in on_topic()])
    finally:
        app.request_stop()
        runner.join(20.0)
    assert not runner.is_alive()
    # the first case's recording, replayed: the same baseline on command, at the same sample
    from appliance import config
    from appliance.replay import replay

    raw = sorted((tmp_path / "cases").glob("*/raw-001.bdf"))
    assert raw, list((tmp_path / "cases").glob("*/*"))
    out, err = io.StringIO(), io.StringIO()
    replay(str(raw[0]), config.from_dict(config_dict(tmp_path, None, realtime=False)),
           out=out, err=err)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    again = [m for m in lines if m.get("type") == "baseline" and m.get("reason") == "command"
             and m["site"] == "L median" and m["channel"] == "C4'-Fz"]
    assert len(again) == 1, (again, err.getvalue())
    assert again[0]["t_s"] == pytest.approx(b["t_s"], abs=0.01)
    assert again[0]["amplitude_uv"] == pytest.approx(b["amplitude_uv"], rel=1e-6)
    assert again[0]["n_sweeps"] == b["n_sweeps"]

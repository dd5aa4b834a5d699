"""A real case for the report tests (a unique module name, not conftest.py): the appliance on
the simulated patient, faster than real time, with an SSEP alarm, annotated events, an
acknowledgement, a restart that resumes the case (a second raw segment) and a stop."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

ALARM_ID = "ssep.amplitude:L median:C4'-Fz"
CHANNELS = ["C3'-Fz", "C4'-Fz", "Cv5-Fz", "Erb-L", "Erb-R"]
# a quiet EEG, a strong response and 80-sweep averages at 9.7 Hz: baselines within ~9 s of
# stream, the 60 % drop at 12 s raised as an alarm at ~20 s (the real Monitor, unchanged)
SCENARIO = """
name = "report-ssep-drop"
[patient]
eeg_rms_uv = 6.0
response_scale = 2.0
[[event]]
type = "amplitude"
at_s = 12.0
site = "L median"
component = "cortical"
to_percent = 40.0
ramp_s = 0.0
"""
SITE = {"rate_hz": 9.7, "n_sweeps": 80, "update_sweeps": 20}


def config_dict(tmp: Path) -> dict[str, Any]:
    scenario = tmp / "scenario.toml"
    scenario.write_text(SCENARIO)
    return {
        "device": {"id": "report-dev", "name": "OR 3 cart", "location": "OR 3"},
        "frontend": {"kind": "simulated", "sample_rate_hz": 2000, "channels": CHANNELS,
                     "scenario": str(scenario), "realtime": False, "seed": 1},
        "analysis": {"sites": [
            {"name": "L median", "modality": "ssep_upper", "trigger_bit": 0,
             "channels": ["C4'-Fz", "Cv5-Fz", "Erb-L"], **SITE},
            {"name": "R median", "modality": "ssep_upper", "trigger_bit": 1,
             "channels": ["C3'-Fz", "Cv5-Fz", "Erb-R"], **SITE},
        ]},
        "alarms": {"control_socket": str(tmp / "alarm.sock")},
        "lights": {"backend": "recording", "lamp_test_s": 0.0},
        "mqtt": {"enabled": False},
        "recording": {"directory": str(tmp / "cases"), "min_free_mb": 20.0, "stop_free_mb": 5.0,
                      "fsync": False},
    }


def wait_for(pred: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return bool(pred())


def start(tmp: Path) -> tuple[Any, threading.Thread]:
    """The real Appliance (lamps on a RecordingBackend) running on a thread."""
    from appliance import config
    from appliance.outputs.gpio import RecordingBackend
    from appliance.service import Appliance

    app = Appliance(config.from_dict(config_dict(tmp)), tmp / "state",
                    lights_backend=RecordingBackend())
    runner = threading.Thread(target=app.run, daemon=True)
    runner.start()
    return app, runner


def stop(app: Any, runner: threading.Thread) -> None:
    app.request_stop()
    runner.join(30)
    assert not runner.is_alive(), "the appliance did not stop"


def make_case(tmp: Path) -> Path:
    """Run 1: baselines, "screw L4 left", the alarm, acknowledged, "rod placed"; stopped like a
    crash would (the case stays open). Run 2 resumes it: a second segment, "closure", then
    stop_case. ~10 s of wall time."""
    app, runner = start(tmp)
    try:
        assert wait_for(lambda: app.stream_t_s > 10.0, 60), "no stream"
        app.command("annotate", {"text": "screw L4 left"}, "")
        assert wait_for(lambda: ALARM_ID in app.timeline.raised_s, 90), "no alarm"
        app.command("acknowledge", {}, "")
        assert wait_for(lambda: app.stream_t_s > 24.0, 60)
        app.command("annotate", {"text": "rod placed"}, "")
        assert wait_for(lambda: app.stream_t_s > 28.0, 60)
    finally:
        stop(app, runner)
    app, runner = start(tmp)  # resumes the open case
    try:
        assert wait_for(lambda: app.stream_t_s > 6.0, 60)
        app.command("annotate", {"text": "closure"}, "")
        assert wait_for(lambda: app.stream_t_s > 9.0, 60)
        app.command("stop_case", {}, "")
    finally:
        stop(app, runner)
    (case,) = (tmp / "cases").iterdir()
    return case

"""The two-median-site case the e2e, console and report tests run the appliance on (tests/ is on
sys.path through its conftest.py): the simulated patient with a quiet EEG and a strong
response, 9.7 Hz and 80-sweep averages (baselines within ~9 s of stream), and a 60 % drop of
the left median cortical response at `drop_at_s` (the real Monitor, unchanged)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHANNELS = ["C3'-Fz", "C4'-Fz", "Cv5-Fz", "Erb-L", "Erb-R"]
SITE = {"rate_hz": 9.7, "n_sweeps": 80, "update_sweeps": 20}


def scenario(name: str, drop_at_s: float) -> str:
    return f"""
name = "{name}"
[patient]
eeg_rms_uv = 6.0
response_scale = 2.0
[[event]]
type = "amplitude"
at_s = {drop_at_s}
site = "L median"
component = "cortical"
to_percent = 40.0
ramp_s = 0.0
"""


def config_dict(tmp: Path, device: dict[str, Any], scenario_name: str, drop_at_s: float,
                realtime: bool) -> dict[str, Any]:
    """device, frontend, analysis and alarms; the caller adds lights, mqtt and recording."""
    path = tmp / "scenario.toml"
    path.write_text(scenario(scenario_name, drop_at_s))
    return {
        "device": device,
        "frontend": {"kind": "simulated", "sample_rate_hz": 2000, "channels": CHANNELS,
                     "scenario": str(path), "realtime": realtime, "seed": 1},
        "analysis": {"sites": [
            {"name": "L median", "modality": "ssep_upper", "trigger_bit": 0,
             "channels": ["C4'-Fz", "Cv5-Fz", "Erb-L"], **SITE},
            {"name": "R median", "modality": "ssep_upper", "trigger_bit": 1,
             "channels": ["C3'-Fz", "Cv5-Fz", "Erb-R"], **SITE},
        ]},
        "alarms": {"control_socket": str(tmp / "alarm.sock")},
    }

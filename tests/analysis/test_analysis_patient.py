"""The real Monitor on engineer C's simulated patient (pink EEG, EMG, ECG, mains, drift,
sweep-to-sweep jitter): no false alarm on a stable patient over 10 minutes, and the shipped
ssep-drop scenario raises the left cortical amplitude alarm, and only that."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import upper_cfg

from appliance.analysis.monitor import Monitor
from appliance.frontend.block import SampleBlock
from appliance.frontend.simulated.patient import Patient
from appliance.frontend.simulated.scenario import Scenario, load_scenario

FS = 4000
CH = ["C3'-Fz", "C4'-Fz", "Cv5-Fz", "Erb-L", "Erb-R"]
SITES = [
    {"name": "L median", "modality": "ssep_upper", "channels": ["C4'-Fz", "Cv5-Fz", "Erb-L"],
     "trigger_bit": 0},
    {"name": "R median", "modality": "ssep_upper", "channels": ["C3'-Fz", "Cv5-Fz", "Erb-R"],
     "trigger_bit": 1},
]
SCENARIOS = Path(__file__).resolve().parents[2] / "deploy" / "scenarios"


def _conditions(scenario: Scenario, duration_s: float, seed: int) -> list[dict]:
    cfg = upper_cfg(CH, SITES, FS)
    p = Patient(CH, FS, cfg.analysis.sites, scenario=scenario, seed=seed)
    mon = Monitor(cfg)
    out, n = [], 0
    while n < duration_s * FS:
        uv, trig = p.generate(4000)
        blk = SampleBlock(uv, trig, np.zeros(uv.shape, bool), np.zeros(len(CH), bool), n, FS, 0)
        out += [o.to_json() for o in mon.push(blk) if "id" in o.to_json()]
        n += 4000
    return out


def test_analysis_stable_simulated_patient_ten_minutes_without_alarm():
    conds = _conditions(Scenario(), 600.0, seed=1)
    # only "this channel has no baseline yet" may appear (the patient's C4' is slow to settle)
    assert {c["id"].split(":")[0] for c in conds} <= {"ssep.no_baseline"}, conds
    assert all(c["kind"] == "technical" and c["priority"] == "low" for c in conds)


def test_analysis_ssep_drop_scenario_raises_left_cortical_amplitude_only():
    conds = _conditions(load_scenario(SCENARIOS / "ssep-drop.toml"), 330.0, seed=3)
    physio = [c for c in conds if c["kind"] == "physiological"]
    assert physio and {c["id"] for c in physio} == {"ssep.amplitude:L median:C4'-Fz"}, physio
    raised = physio[0]
    assert raised["active"] and 180.0 < raised["t_s"] < 300.0  # the drop is at 180 s
    assert raised["priority"] == "high" and raised["evidence"]["amplitude_ratio"] < 0.5

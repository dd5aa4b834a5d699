"""The real Monitor on engineer C's simulated patient (pink EEG, EMG, ECG, mains, drift,
sweep-to-sweep jitter): no false alarm on a stable patient over 10 minutes (fast detection, on
by default, included), and the shipped ssep-drop scenario raises the left cortical amplitude
alarm and the left site's fast alarm, and only those."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from analysis_helpers import PATIENT_CH, PATIENT_FS, PATIENT_SITES, patient_conditions, upper_cfg

from appliance.analysis.monitor import Monitor
from appliance.frontend.block import SampleBlock
from appliance.frontend.simulated.patient import Patient
from appliance.frontend.simulated.scenario import Scenario, load_scenario

FS, CH, SITES = PATIENT_FS, PATIENT_CH, PATIENT_SITES
SCENARIOS = Path(__file__).resolve().parents[2] / "deploy" / "scenarios"


def _conditions(scenario: Scenario, duration_s: float, seed: int) -> list[dict]:
    cfg = upper_cfg(CH, SITES, FS)
    return patient_conditions(cfg, scenario, duration_s, seed)[0]


def test_analysis_stable_simulated_patient_ten_minutes_without_alarm():
    conds = _conditions(Scenario(), 600.0, seed=1)
    # only "this channel has no baseline yet" may appear (the patient's C4' is slow to settle)
    assert {c["id"].split(":")[0] for c in conds} <= {"ssep.no_baseline"}, conds
    assert all(c["kind"] == "technical" and c["priority"] == "low" for c in conds)


def test_analysis_ssep_drop_scenario_raises_left_cortical_amplitude_only():
    conds = _conditions(load_scenario(SCENARIOS / "ssep-drop.toml"), 330.0, seed=3)
    physio = [c for c in conds if c["kind"] == "physiological"]
    conventional = [c for c in physio if not c["id"].startswith("fast.")]
    assert conventional and {c["id"] for c in conventional} == {
        "ssep.amplitude:L median:C4'-Fz"}, physio
    raised = conventional[0]
    assert raised["active"] and 180.0 < raised["t_s"] < 300.0  # the drop is at 180 s
    assert raised["priority"] == "high" and raised["evidence"]["amplitude_ratio"] < 0.5
    # fast detection (on by default, armed at ~128 s) sees the same drop, on that site only:
    # its HIGH, and maybe its MEDIUM "possible", never before the drop nor on R median
    fast = [c for c in physio if c["id"].startswith("fast.")]
    assert {c["id"] for c in fast} <= {"fast.amplitude:L median", "fast.possible:L median"}, fast
    assert all(c["t_s"] > 180.0 for c in fast), fast
    high = [c for c in fast if c["id"] == "fast.amplitude:L median" and c["active"]]
    assert high and high[0]["priority"] == "high" and high[0]["t_s"] < 300.0, fast


def test_analysis_tcmep_on_simulated_patient_median_baseline_and_loss():
    from appliance import config
    from appliance.frontend.simulated.scenario import from_dict

    ch = ["APB-R"]
    cfg = config.from_dict({"frontend": {"channels": ch, "sample_rate_hz": FS},
                            "analysis": {"sites": [{"name": "R hand", "modality": "tcmep",
                                                    "channels": ch, "trigger_bit": 2,
                                                    "rate_hz": 0.5}]}})
    sc = from_dict({"event": [{"type": "amplitude", "at_s": 100.0, "site": "R hand",
                               "to_percent": 10.0}]})
    p = Patient(ch, FS, cfg.analysis.sites, scenario=sc, seed=4)
    mon = Monitor(cfg)
    out, n = [], 0
    while n < 140 * FS:
        uv, trig = p.generate(4000)
        blk = SampleBlock(uv, trig, np.zeros(uv.shape, bool), np.zeros(1, bool), n, FS, 0)
        out += [{"type": "condition", **o.to_json()} for o in mon.push(blk)]
        n += 4000
    trends = [d for d in out if d["type"] == "trend"]
    assert all(d["n_sweeps"] == 1 for d in trends) and len(trends) >= 65
    base = next(d for d in out if d["type"] == "baseline")
    truth = p.truth("R hand", "MEP", 10.0)
    # the median of three single sweeps, each varying ~40 %: within 35 % of the mean response
    assert abs(base["amplitude_uv"] - truth.amplitude_uv) < 0.35 * truth.amplitude_uv
    conds = [d for d in out if d["type"] == "condition"]
    assert conds and {c["id"] for c in conds} <= {"tcmep.amplitude:R hand:APB-R",
                                                  "tcmep.lost:R hand:APB-R"}, conds
    assert 100.0 < conds[0]["t_s"] < 110.0 and conds[0]["priority"] == "high"


if __name__ == "__main__":  # the demo's stream offline (docs/service.md, "The demo")
    # python tests/analysis/test_analysis_patient.py SEED SECONDS: deploy/config/demo.toml and
    # the ssep-drop scenario, fast detection on and off: every physiological raise and clear
    import sys

    from appliance import config
    from appliance.validate import read_toml

    seed, seconds = int(sys.argv[1]), float(sys.argv[2])
    for fast in (True, False):
        data = read_toml(SCENARIOS.parent / "config" / "demo.toml", "demo config")
        data["analysis"]["fast_detection"] = fast
        data["mqtt"]["enabled"] = False
        conds, mon = patient_conditions(config.from_dict(data),
                                        load_scenario(SCENARIOS / "ssep-drop.toml"), seconds, seed)
        seen: set[tuple[str, bool]] = set()
        for c in conds:
            if c["kind"] == "physiological" and (c["id"], c["active"]) not in seen:
                seen.add((c["id"], c["active"]))
                print(f"fast {'on ' if fast else 'off'}", c["t_s"], c["id"], c["active"])
        for name, f in mon.fast.items():
            d = f.detector
            print(f"fast on  {name}: armed {d.ready}, sigma_a {d.sigma_ratio:.2f}, "
                  f"estimate {d._estimate()}")

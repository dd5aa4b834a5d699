"""The fast sequential detector wired into the real Monitor (analysis.fast_detection), on engineer
C's simulated patient: a 60 % cortical drop on "L median" raises `fast.amplitude:L median` with
its evidence; a stable patient of the same length raises no fast high-priority condition; with
the setting off (it is on by default) there are no fast conditions at all. The conventional
criteria run unchanged.

4.7 Hz with the detector's default baseline (600) and calibration (1500) sweeps: the detector
arms after ~450 s of stream, the drop comes at 480 s. (At 9.7 Hz the simulated cortical response
is ~30 % smaller per sweep, and smaller baselines make a noisy template: both slower.) One
run of 840 s takes ~5 s here.

Run as a script for the survey in docs/analysis.md: `python tests/analysis/test_analysis_fast.py
1 13` prints the first raise of every physiological condition per seed, drop and stable.
"""

from __future__ import annotations

import json
import sys

import pytest
from analysis_helpers import PATIENT_CH, PATIENT_FS, PATIENT_SITES, patient_conditions, upper_cfg

from appliance.analysis.monitor import Monitor
from appliance.errors import ConfigError
from appliance.frontend.simulated.scenario import from_dict

FS, CH, SITES = PATIENT_FS, PATIENT_CH, PATIENT_SITES
DROP_AT_S, DURATION_S = 480.0, 840.0
EVIDENCE = ("amplitude_ratio_ci95", "statistic", "threshold", "short_average", "channel")


def _run(seed: int, drop: bool, sites=SITES, **analysis) -> tuple[list[dict], Monitor]:
    cfg = upper_cfg(CH, sites, FS, **analysis)
    ev = ([{"type": "amplitude", "at_s": DROP_AT_S, "site": "L median",
            "component": "cortical", "to_percent": 40.0}] if drop else [])
    return patient_conditions(cfg, from_dict({"event": ev}), DURATION_S, seed)


def _first(conds: list[dict], cid: str) -> dict | None:
    return next((c for c in conds if c["id"] == cid and c["active"]), None)


def test_analysis_fast_drop_raises_fast_amplitude_with_evidence():
    # seed 3: one where the fast alarm comes first; over 12 seeds it does in 5 (docs/analysis.md)
    conds, mon = _run(3, drop=True, fast_detection=True)
    fast = [c for c in conds if c["id"].startswith("fast.")]
    assert all(c["t_s"] > DROP_AT_S for c in fast), fast  # nothing before the drop
    raised = _first(conds, "fast.amplitude:L median")
    assert raised is not None, conds
    assert raised["priority"] == "high" and raised["kind"] == "physiological"
    assert raised["site"] == "L median"
    ev = raised["evidence"]
    assert all(k in ev for k in EVIDENCE), ev
    assert ev["channel"] == "C4'-Fz"
    assert json.loads(json.dumps(raised)) == raised  # as `ionm replay` and MQTT carry it
    lo, hi = ev["amplitude_ratio_ci95"]
    assert lo < ev["amplitude_ratio"] < hi and hi < 0.9  # the trend shows the drop
    assert ev["statistic"] >= ev["threshold"] > 0
    assert ev["short_average"]["n_sweeps"] >= 1 and ev["short_average"]["amplitude_ratio"] < 0.7
    conventional = _first(conds, "ssep.amplitude:L median:C4'-Fz")
    if conventional is not None:
        assert raised["t_s"] < conventional["t_s"], (raised, conventional)
    assert not any(c["id"].endswith(":R median") for c in fast), fast
    assert "fast.amplitude:L median" in mon.active_condition_ids()
    # the conventional averages and criteria still publish beside it
    assert any(c["id"].startswith("ssep.amplitude:L median") for c in conds), conds


def test_analysis_fast_combines_every_cortical_channel_of_a_site():
    two = [{**SITES[0], "channels": ["C4'-Fz", "C3'-Fz", "Cv5-Fz", "Erb-L"]}, SITES[1]]
    conds, mon = _run(5, drop=True, sites=two, fast_detection=True)
    site = mon.fast["L median"]
    assert site.channels == ["C4'-Fz", "C3'-Fz"] and site.detector.model.n_channels == 2
    raised = _first(conds, "fast.amplitude:L median")
    assert raised is not None and raised["t_s"] > DROP_AT_S, conds
    ev = raised["evidence"]
    assert ev["channel"] == "C4'-Fz" and ev["channels"] == ["C4'-Fz", "C3'-Fz"]
    short = ev["short_average"]
    assert short["n_channels"] == 2
    assert len(short["data"]) == 4 * -(-2 * site.window.size * 2 // 3)  # base64 of 2 x int16


def test_analysis_fast_stable_patient_no_fast_high_alarm():
    conds, mon = _run(5, drop=False, fast_detection=True)
    assert all(f.detector.ready for f in mon.fast.values())  # it did monitor, armed
    assert mon.fast["L median"].detector.n_seen > 1000
    high = [c for c in conds if c["id"].startswith("fast.") and c["priority"] == "high"]
    assert not high, high


def test_analysis_fast_off_no_fast_conditions():
    conds, mon = _run(5, drop=True, fast_detection=False)
    assert not mon.fast
    assert not [c for c in conds if c["id"].startswith("fast.")]
    # the conventional measure still runs and sees the drop: the template fit of the last
    # update. (On this seed the fit settles at ~0.55 of baseline: the patient's scalp channel
    # carries components the cortical drop does not scale, and the baseline read ~1.15, so
    # the 50 % criterion is not reached; docs/analysis.md.)
    fit = {p.channel: p.fit for p in mon._last_points["L median"]}["C4'-Fz"]
    assert fit is not None and fit.ratio < 0.75, fit


def test_analysis_fast_per_site_override_and_window_check():
    lower = {"name": "L tibial", "modality": "ssep_lower", "channels": ["Cz'-Fz"],
             "trigger_bit": 2}
    ch = [*CH, "Cz'-Fz"]
    on = upper_cfg(ch, [SITES[0], {**SITES[1], "fast_detection": "off"}, lower], FS,
                   fast_detection=True)
    assert set(Monitor(on).fast) == {"L median", "L tibial"}
    lw = Monitor(on).fast["L tibial"]
    assert lw.detector.cfg.latency_shift_ms == pytest.approx(3.7)
    assert lw.window.size == int(45e-3 * FS)  # 25-70 ms at 4 kSPS
    off = upper_cfg(ch, [SITES[0], {**SITES[1], "fast_detection": "on"}], FS,
                    fast_detection=False)
    assert set(Monitor(off).fast) == {"R median"}
    # on by default: every SSEP site with a cortical channel
    assert set(Monitor(upper_cfg(ch, [*SITES, lower], FS)).fast) == {
        "L median", "R median", "L tibial"}
    # a window too short for the detector is refused when the config is built (what
    # `ionm check-config` runs), also when fast detection is on only by default
    short = [{**SITES[0], "window_ms": [10.0, 30.0]}]
    for analysis in ({"fast_detection": True}, {}):
        with pytest.raises(ConfigError, match=r"analysis.sites\[0\].window_ms.*fast detection"):
            upper_cfg(CH, short, FS, **analysis)
    assert not Monitor(upper_cfg(CH, short, FS, fast_detection=False)).fast
    assert not Monitor(upper_cfg(CH, [{**short[0], "fast_detection": "off"}], FS)).fast


if __name__ == "__main__":  # the survey behind the figures in docs/analysis.md
    for seed in range(int(sys.argv[1]), int(sys.argv[2])):
        for drop in (True, False):
            conds, mon = _run(seed, drop, fast_detection=True)
            first: dict[str, float] = {}
            for c in conds:
                if c["kind"] == "physiological" and c["active"]:
                    first.setdefault(c["id"], c["t_s"])
            sig = {k: round(f.detector.sigma_ratio, 2) for k, f in mon.fast.items()}
            print(seed, "drop" if drop else "stable", sig,
                  {k: round(v, 1) for k, v in first.items()}, flush=True)

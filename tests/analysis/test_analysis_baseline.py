"""Baselines on command and after restart, re-baseline history, config errors naming the key,
and bad input that is counted without stopping the monitor."""

from __future__ import annotations

import json

import numpy as np
import pytest
from analysis_helpers import N20, P25, SynthSite, blocks, run_monitor, synth_stream, upper_cfg

from appliance import config
from appliance.analysis.monitor import Monitor
from appliance.errors import CommandError, ConfigError
from appliance.frontend.block import SampleBlock

FS = 4000
CH = ["C4'-Fz", "Erb-L"]
SITE = {"name": "L median", "modality": "ssep_upper", "channels": CH, "n_sweeps": 50,
        "update_sweeps": 25}
CORTICAL = [(N20["latency_ms"], N20["amplitude_uv"], N20["sd_ms"]),
            (P25["latency_ms"], P25["amplitude_uv"], P25["sd_ms"])]


def _stream(duration_s: float, scale=lambda t: 1.0, seed: int = 5):
    site = SynthSite(0, 4.7, {"C4'-Fz": CORTICAL, "Erb-L": [(9.5, -3.5, 0.7)]},
                     scale=scale, peripheral={"Erb-L"})
    return synth_stream(CH, FS, duration_s, [site], noise_uv=1.5, mains_uv=3.0, seed=seed)


def test_analysis_manual_baseline_on_command_with_history():
    mon = Monitor(upper_cfg(CH, [SITE], FS, baseline_policy="manual"))
    with pytest.raises(CommandError, match="no average yet"):
        mon.set_baseline("L median")
    with pytest.raises(CommandError, match="unknown site 'R median'"):
        mon.set_baseline("R median")
    data, trig = _stream(30.0)
    out = run_monitor(mon, data, trig, FS)
    assert not [d for d in out if d["type"] == "baseline"]  # manual: never on its own
    first = mon.set_baseline("L median")
    assert {b.channel for b in first} == set(CH) and all(b.reason == "command" for b in first)
    second = mon.set_baseline()  # every site
    state = mon.baseline_state()
    assert len(state["current"]) == 2 and len(state["history"]) == 2
    assert state["history"][0]["t_s"] == first[0].t_s
    assert state["current"][0]["t_s"] == second[0].t_s
    json.dumps(state, allow_nan=False)  # JSON-able as it is


def test_analysis_restored_baselines_keep_judging_after_a_restart():
    cfg = upper_cfg(CH, [SITE], FS)
    before = Monitor(cfg)
    data, trig = _stream(40.0)
    out = run_monitor(before, data, trig, FS)
    assert [d for d in out if d["type"] == "baseline"]  # auto after stable updates
    saved = json.loads(json.dumps(before.baseline_state()))

    # the daemon restarts while the cortical response is down to a fifth
    after = Monitor(upper_cfg(CH, [SITE], FS, baseline_policy="manual"))
    after.restore_baselines(saved)
    data, trig = _stream(40.0, scale=lambda t: 0.2, seed=6)
    conds = [d for d in run_monitor(after, data, trig, FS) if d["type"] == "condition"]
    assert conds and conds[0]["id"] == "ssep.amplitude:L median:C4'-Fz" and conds[0]["active"]
    base = saved["current"][0]
    assert conds[0]["evidence"]["baseline"]["t_s"] == pytest.approx(base["t_s"], abs=1e-3)


def test_analysis_bad_block_is_counted_and_monitoring_continues():
    mon = Monitor(upper_cfg(CH, [SITE], FS))
    data, trig = _stream(12.0)
    bad = SampleBlock(np.zeros((3, 10)), np.zeros(10, np.uint16), np.zeros((3, 10), bool),
                      np.zeros(3, bool), 0, FS, 0.0)
    outs = mon.push(bad)
    assert mon.bad_blocks == 1 and len(outs) == 1
    c = outs[0].to_json()
    assert c["kind"] == "technical" and "(2, n)" in c["message"]
    nan_block = next(blocks(data * np.nan, trig, FS, 64))
    assert mon.push(nan_block)[0].id == "analysis.bad_block" and mon.bad_blocks == 2
    out = run_monitor(mon, data, trig, FS)
    assert [d for d in out if d["type"] == "trend"]


@pytest.mark.parametrize("site, key", [
    ({"roles": ["cortical"]}, "analysis.sites[0].roles"),
    ({"roles": ["cortex", "peripheral"]}, "analysis.sites[0].roles[0]"),
    ({"criteria": {"amplitude_ratio": 0.4}}, "analysis.sites[0].criteria.amplitude_ratio"),
    ({"band_hz": [300.0, 30.0]}, "analysis.sites[0].band_hz"),
    ({"window_ms": [10.0]}, "analysis.sites[0].window_ms"),
    ({"averaging": "median"}, "analysis.sites[0].averaging"),
])
def test_analysis_config_errors_name_the_key(site, key):
    with pytest.raises(ConfigError) as e:
        upper_cfg(CH, [{**SITE, **site}], FS)
    assert key in str(e.value)


def test_analysis_muscle_mep_is_never_averaged():
    with pytest.raises(ConfigError, match=r"analysis.sites\[0\].n_sweeps.*never averaged"):
        Monitor(config.from_dict({
            "frontend": {"channels": ["APB-R"], "sample_rate_hz": 8000},
            "analysis": {"sites": [{"name": "R hand", "modality": "tcmep",
                                    "channels": ["APB-R"], "n_sweeps": 4}]}}))


def test_analysis_band_above_nyquist_is_cut_and_recorded():
    cfg = config.from_dict({"frontend": {"channels": ["Cz-A1"], "sample_rate_hz": 4000},
                            "analysis": {"sites": [{"name": "L ear", "modality": "baep",
                                                    "channels": ["Cz-A1"]}]}})
    plan = Monitor(cfg).plans[0]
    assert plan.filter.band_hz == (100.0, 1800.0)  # BAEP's 3 kHz needs >= 8 kSPS
    with pytest.raises(ConfigError, match="band_hz"):
        Monitor(config.from_dict({"frontend": {"channels": ["Cz-A1"], "sample_rate_hz": 2000},
                                  "analysis": {"sites": [{"name": "L ear", "modality": "baep",
                                                          "channels": ["Cz-A1"]}]}}))


def test_analysis_roles_from_channel_names_and_overrides():
    cfg = upper_cfg(["C3'-Fz", "Cv5-Fz", "Erb-R", "ch4"], [
        {"name": "R median", "modality": "ssep_upper",
         "channels": ["C3'-Fz", "Cv5-Fz", "Erb-R", "ch4"]},
        {"name": "R2", "modality": "ssep_upper", "channels": ["ch4"], "roles": ["peripheral"],
         "trigger_bit": 1},
    ], FS)
    plans = Monitor(cfg).plans
    assert plans[0].roles == ("cortical", "cervical", "peripheral", "cortical")
    assert plans[1].roles == ("peripheral",)

"""Artefacts are rejected and counted by reason without alarming; D-wave averaging and its
50 % criterion; `ionm replay --speed realtime` keeps the recorded pace."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
from analysis_helpers import N20, P25, SynthSite, run_monitor, synth_stream, upper_cfg

from appliance import config
from appliance.analysis.monitor import Monitor
from appliance.frontend.block import SampleBlock

FS = 4000
CH = ["C4'-Fz"]
CORTICAL = [(N20["latency_ms"], N20["amplitude_uv"], N20["sd_ms"]),
            (P25["latency_ms"], P25["amplitude_uv"], P25["sd_ms"])]


def test_analysis_cautery_and_saturation_are_rejected_counted_and_silent():
    site = SynthSite(0, 4.7, {"C4'-Fz": CORTICAL})
    data, trig = synth_stream(CH, FS, 90.0, [site], noise_uv=1.5, mains_uv=3.0, seed=11)
    rng = np.random.default_rng(2)
    burst = slice(int(50 * FS), int(56 * FS))  # 6 s of electrocautery: broadband, 500 uV
    data[0, burst] += rng.normal(0.0, 500.0, burst.stop - burst.start)
    sat = np.zeros(data.shape, bool)
    sat[0, int(70 * FS):int(72 * FS)] = True  # 2 s at the ADC rail
    mon = Monitor(upper_cfg(CH, [{"name": "L median", "modality": "ssep_upper",
                                  "channels": CH, "n_sweeps": 100, "update_sweeps": 25}], FS))
    out = []
    for i in range(0, data.shape[1], 400):
        blk = SampleBlock(data[:, i:i + 400], trig[i:i + 400], sat[:, i:i + 400],
                          np.zeros(1, bool), i, float(FS), 0.0)
        out += [o.to_json() for o in mon.push(blk)]
    trends = [d for d in out if d.get("type") == "trend"]
    rejected = trends[-1]["rejected"]
    # ~28 sweeps overlap the burst and ~10 the rail (sweeps with their padding are longer)
    assert rejected["cautery"] + rejected["amplitude"] >= 25, rejected
    assert rejected["saturated"] >= 9, rejected
    assert [d for d in out if d.get("type") == "baseline"]  # a baseline was taken before
    assert not [d for d in out if "id" in d], [d["id"] for d in out if "id" in d]
    assert trends[-1]["components"]["N20"]["latency_ms"] is not None


def test_analysis_d_wave_is_averaged_and_alarms_below_half():
    ch = ["Epi-D"]
    d_wave = [(5.0, 12.0, 0.6)]  # a positive D-wave at 5 ms, 12 uV
    during = lambda t: 40.0 <= t < 70.0  # noqa: E731
    site = SynthSite(1, 2.0, {"Epi-D": d_wave}, scale=lambda t: 0.35 if during(t) else 1.0)
    data, trig = synth_stream(ch, 8000, 100.0, [site], noise_uv=4.0, mains_uv=2.0, seed=5)
    cfg = config.from_dict({"frontend": {"channels": ch, "sample_rate_hz": 8000},
                            "analysis": {"sites": [{"name": "D-wave", "modality": "tcmep",
                                                    "channels": ch, "trigger_bit": 1,
                                                    "rate_hz": 2.0, "d_wave": True}]}})
    out = run_monitor(Monitor(cfg), data, trig, 8000, block=800)
    trends = [d for d in out if d["type"] == "trend"]
    assert trends[0]["role"] == "epidural" and max(d["n_sweeps"] for d in trends) == 20
    assert abs(trends[10]["components"]["D"]["latency_ms"] - 5.0) < 0.2
    conds = [d for d in out if d["type"] == "condition"]
    assert {c["id"] for c in conds} == {"tcmep.amplitude:D-wave:Epi-D"}, conds
    assert 40.0 < conds[0]["t_s"] < 70.0 and conds[0]["evidence"]["criteria"][
        "amplitude_ratio_min"] == 0.5
    assert conds[-1]["active"] is False and conds[-1]["t_s"] > 70.0


def test_analysis_replay_realtime_keeps_the_recorded_pace(tmp_path):
    from test_analysis_replay import CONFIG, _write_bdf

    bdf = tmp_path / "case.bdf"
    _write_bdf(bdf, True, duration_s=3.0)
    cfg = tmp_path / "ssep.toml"
    cfg.write_text(CONFIG)
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "appliance.cli", "replay", str(bdf), "--config",
                        str(cfg), "--speed", "realtime"], capture_output=True, text=True,
                       timeout=60)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert elapsed >= 2.9  # 3 s of recording take at least 3 s
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert all("t_s" in d for d in lines)


def _ssep(duration_s: float, seed: int = 3):
    site = SynthSite(0, 4.7, {"C4'-Fz": CORTICAL})
    return synth_stream(CH, FS, duration_s, [site], noise_uv=1.0, mains_uv=3.0, seed=seed)


def test_analysis_causal_phase_delays_peaks_and_says_so():
    from appliance.dsp.filters import bandpass_sos, group_delay_ms

    data, trig = _ssep(40.0)
    res = {}
    for phase in ("zero", "causal"):
        cfg = upper_cfg(CH, [{"name": "L median", "modality": "ssep_upper", "channels": CH,
                              "phase": phase}], FS)
        last = [d for d in run_monitor(Monitor(cfg), data, trig, FS)
                if d["type"] == "trend"][-1]
        assert last["filter"]["phase"] == phase
        res[phase] = last["components"]["N20"]["latency_ms"]
    assert abs(res["zero"] - N20["latency_ms"]) < 0.1
    # a causal band-pass moves the N20 (here the high-pass's phase lead wins over the
    # low-pass delay: earlier), by tenths of a millisecond: the size of a BAEP criterion
    assert abs(res["causal"] - N20["latency_ms"]) > 0.15, res
    assert float(group_delay_ms(bandpass_sos(30.0, 1000.0, FS), FS, 150.0)) > 0.1


def test_analysis_lost_samples_drop_straddling_sweeps_and_carry_on():
    data, trig = _ssep(60.0)
    mon = Monitor(upper_cfg(CH, [{"name": "L median", "modality": "ssep_upper",
                                  "channels": CH}], FS))
    out = []
    lost = range(int(20 * FS) // 400, int(21 * FS) // 400)  # 1 s of blocks never arrive
    for k, i in enumerate(range(0, data.shape[1], 400)):
        if k in lost:
            continue
        blk = SampleBlock(data[:, i:i + 400], trig[i:i + 400], np.zeros((1, 400), bool),
                          np.zeros(1, bool), i, float(FS), 0.0)
        out += [{"type": "condition", **o.to_json()} for o in mon.push(blk)]
    trends = [d for d in out if d["type"] == "trend"]
    assert trends[-1]["t_s"] > 45.0 and trends[-1]["components"]["N20"]["latency_ms"]
    assert abs(trends[-1]["components"]["N20"]["latency_ms"] - N20["latency_ms"]) < 0.2
    # the stimuli inside the gap are never seen; the few whose sweep (with its padding)
    # straddles the gap cannot be cut and are counted as dropped
    assert 1 <= mon.sites["L median"].epocher.dropped <= 3
    assert not [d for d in out if d["type"] == "condition"]

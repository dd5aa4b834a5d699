"""Free-running EMG against labelled simulated cases: A-train sensitivity, false A-trains on
bursts, cautery and stimulus artefacts, latency, train time, blanking and cautery suppression."""

from __future__ import annotations

import dataclasses

from continuous_helpers import conditions, first_raised, make_cfg, run_patient

from appliance.bench.emg import STIM, run_case, score

CH = ["Orb-oc L", "Orb-or L"]


def test_labelled_cases_sensitivity_false_trains_and_latency():
    out, truth, _ = run_case(30.0, seed=7)
    sc = score(out, truth, 30.0)
    assert sc["a_trains"] >= 8
    assert sc["sensitivity"] >= 0.95, sc
    assert sc["false_a_trains"] == 0, sc  # bursts, spikes, cautery and 500 µV artefacts
    assert sc["latency_ms_max"] <= 250.0, sc
    kinds = {o["kind"] for _, o in out if o.get("type") == "emg_event"}
    assert {"a_train", "burst", "spike", "cautery"} <= kinds


def _run(events, duration_s, emg=None, **kw):
    cfg = make_cfg(CH, 4000, {"emg_free": {"channels": CH, **(emg or {})}})
    return run_patient(cfg, events, duration_s, **kw)


def test_train_time_escalates_medium_then_high_past_threshold():
    out, mon, _ = _run([{"type": "a_train", "at_s": 1.0, "channel": CH[0], "duration_s": 3.0,
                         "amplitude_uv": 120.0}], 5.0,
                       emg={"train_time_warning_s": 0.5, "train_time_alarm_s": 2.0})
    tt = [o for o in conditions(out, "emg.train_time:Orb-oc L")]
    assert [o["priority"] for o in tt] == ["medium", "high"]
    assert 1.5 <= tt[0]["t_s"] <= 1.7 and 3.0 <= tt[1]["t_s"] <= 3.2  # 0.5 s, 2 s in
    assert first_raised(out, "emg.a_train:Orb-oc L") <= 1.25
    assert not conditions(out, "emg.train_time:Orb-or L")
    end = [o for o in out if o.get("kind") == "a_train" and o.get("phase") == "end"]
    assert abs(end[0]["duration_ms"] - 3000.0) <= 60.0 and abs(end[0]["train_time_s"] - 3.0) < 0.06
    assert abs(end[0]["frequency_hz"] - 120.0) <= 20.0
    assert "emg.train_time:Orb-oc L" in mon.active_condition_ids()


def test_burst_is_medium_spike_is_only_an_event():
    out, _, _ = _run([{"type": "emg_burst", "at_s": 1.0, "channel": CH[1], "duration_s": 0.2},
                      {"type": "emg_burst", "at_s": 2.0, "channel": CH[0], "duration_s": 0.003}],
                     5.0, emg={"burst_hold_s": 1.0})
    burst = conditions(out, "emg.burst:Orb-or L")
    assert [c["active"] for c in burst] == [True, False] and burst[0]["priority"] == "medium"
    # (a Poisson burst may shed a last discharge as a spike after a 30 ms gap: CH[0] only here)
    spikes = [o for o in out if o.get("kind") == "spike" and o["channel"] == CH[0]]
    assert len(spikes) == 1 and abs(spikes[0]["t_s"] - 2.0) < 0.02
    assert spikes[0]["snippet"]["encoding"] == "int16-le-base64"
    assert not conditions(out, "emg.burst:Orb-oc L") and not conditions(out, "emg.a_train")


def test_cautery_suppresses_detection():
    # an A-train under cautery is not judged; cautery is reported as events
    out, _, _ = _run([{"type": "cautery", "at_s": 1.0, "duration_s": 2.0},
                      {"type": "a_train", "at_s": 1.5, "channel": CH[0], "duration_s": 1.0}], 4.0)
    caut = [o for o in out if o.get("kind") == "cautery"]
    assert [c["phase"] for c in caut] == ["onset", "end"]
    assert abs(caut[0]["t_s"] - 1.0) < 0.02 and 3.0 <= caut[1]["t_s"] <= 3.4
    assert not [o for o in out if o.get("kind") in ("a_train", "burst", "spike")]


def test_stimulus_blanking_removes_artefacts():
    stim = dataclasses.replace(STIM, rate_hz=5.0)  # 500 µV artefacts on every channel
    found = {}
    for blank_ms in (8.0, 0.0):
        out, _, _ = _run([], 4.0, emg={"blank_ms": blank_ms}, stim_sites=(stim,),
                         patient={"stim_artefact_uv": 500.0})
        found[blank_ms] = [o for o in out if o.get("type") == "emg_event"]
    assert len(found[0.0]) >= 10  # ~20 artefacts per channel are seen without blanking
    assert found[8.0] == []


def test_flush_analyses_the_last_partial_batch():
    # cautery in the last 32 ms of a recording (< the 48 ms batch): seen only at flush
    import numpy as np

    from appliance.analysis.monitor import Monitor
    from appliance.frontend.block import SampleBlock

    mon = Monitor(make_cfg(CH, 4000, {"emg_free": {"channels": CH}}))
    rng = np.random.default_rng(1)
    out, n = [], 64  # 16 ms blocks; 60 of them are 20 whole batches
    for k in range(62):
        uv = rng.normal(0, 1000.0 if k >= 60 else 5.0, (2, n))
        out += mon.push(SampleBlock(uv, np.zeros(n, np.uint16), np.zeros(uv.shape, bool),
                                    np.zeros(2, bool), k * n, 4000.0, 0.0))
    assert not [o for o in out if getattr(o, "kind", "") == "cautery"]
    ev = [o.to_json() for o in mon.flush() if getattr(o, "kind", "") == "cautery"]
    assert ev and ev[0]["phase"] == "onset" and ev[0]["t_s"] >= 60 * n / 4000.0, ev

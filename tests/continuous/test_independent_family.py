"""The free-running EMG and EEG claims on a case family written independently of the detectors
and of the simulated patient (tests/continuous/independent_emg.py; sources in its docstring).
Goals (issue 15): A-trains >= 100 ms detected >= 95 %, <= 1 false A-train per hour on bursts,
spikes, cautery, stimulus artefacts and movement, onset -> condition <= 250 ms; EEG one-sided
fast loss -> HIGH within 20 s, both sides -> global only, stable -> nothing."""

from __future__ import annotations

import independent_emg as ie
import numpy as np
import pytest


def _score(case, cfg=None):
    cfg = cfg or ie.emg_cfg(trigger_mask=1 << ie.TRIGGER_BIT)
    out = ie.run(cfg, case.data_uv, case.trigger, ie.FS_EMG, 64)  # 16 ms blocks
    return ie.score_emg(case, out), out


def test_a_trains_sensitivity_and_onset_to_condition_delay():
    # 3 cases x 12 trains (100 ms-3 s, 60-210 Hz, 100 µV-1 mV), 4-channel montage, ~100 s
    scores = [_score(ie.train_case(seed, 12))[0] for seed in (1, 2, 3)]
    n = sum(s["trains"] for s in scores)
    det = sum(s["detected"] for s in scores)
    assert det / n >= 0.95, [s["missed"] for s in scores]
    assert sum(s["false_a_trains"] for s in scores) == 0  # the bursts/spikes in the gaps
    assert max(s["delay_ms_max"] for s in scores) <= 250.0, scores


def test_no_false_a_trains_on_artefacts():
    # 3 min (0.05 h) packed with bursts, spikes, cautery, triggered stimulus artefacts and
    # movement: <= 1/h cannot be shown in 0.05 h, so none is allowed (the long run in
    # docs/continuous.md covers 1 h)
    total_h, false, kinds = 0.0, 0, set()
    for seed in (11, 12, 13):
        s, out = _score(ie.artefact_case(seed, 60.0))
        total_h += s["hours"]
        false += s["false_a_trains"]
        kinds |= {o["kind"] for _, o in out if o.get("type") == "emg_event"}
    assert round(total_h, 3) == 0.05
    assert false == 0
    assert {"burst", "cautery"} <= kinds  # the artefacts were there and were seen


def _near_pulses(case, out, within_s: float = 0.03) -> int:
    """Spike/burst events whose onset (a 10 ms window's start) is from 10 ms before to
    `within_s` after a stimulus pulse."""
    pulses = np.flatnonzero(case.trigger) / ie.FS_EMG
    return sum(bool(np.any((o["t_s"] - pulses >= -0.01) & (o["t_s"] - pulses <= within_s)))
               for _, o in out if o.get("kind") in ("spike", "burst"))


def test_stimulus_artefact_tails_are_not_spikes():
    # 2-3 mV artefacts leave ~200 µV at the end of the fixed 8 ms blank: with the adaptive
    # extension none becomes a spike event; without it, most pulses give one per channel
    case = ie.artefact_case(12, 60.0)
    assert np.count_nonzero(case.trigger) >= 20
    _, out = _score(case)
    assert _near_pulses(case, out) == 0
    _, out = _score(case, ie.emg_cfg(trigger_mask=1 << ie.TRIGGER_BIT, blank_extend_ms=0.0))
    assert _near_pulses(case, out) >= np.count_nonzero(case.trigger)


def test_large_a_train_on_a_two_channel_montage_is_not_cautery():
    ch = ie.EMG_CH[:2]
    cfg = ie.config.from_dict({"frontend": {"channels": ch, "sample_rate_hz": ie.FS_EMG},
                               "analysis": {"emg_free": {"channels": ch}}})
    big = ie.train_case(4, 8)
    for tr in big.trains:
        tr.channel %= 2
        tr.amplitude_uv = 600.0 + 400.0 * (tr.freq_hz - 60.0) / 150.0
    case = _rebuild_two_channel(big)
    s, _ = _score(case, cfg)
    assert s["sensitivity"] >= 0.95, s


def _rebuild_two_channel(template):
    """The trains of `template` synthesised afresh on a two-channel background."""
    rng = np.random.default_rng(99)
    n = int(template.duration_s * ie.FS_EMG)
    x = ie.background(rng, n)[:2]
    for tr in template.trains:
        ie.add(x, tr.channel, int(tr.at_s * ie.FS_EMG), ie.a_train(rng, tr))
    return ie.EmgCase(x, np.zeros(n, np.uint16), template.trains, template.duration_s)


@pytest.mark.parametrize("side", [0, 1])
def test_eeg_one_sided_fast_loss_is_high_within_20_s(side):
    change_s = 50.0  # baseline 30 s; fast power x 0.4 (a 60 % loss) from 50 s
    conds = ie.eeg_conditions(ie.eeg_case(1, 75.0, change_s, (side,), 0.4))
    cid = f"eeg.fast_loss:{'LR'[side]}"
    first = next((t for t, o in conds if o["id"] == cid and o["active"]), None)
    assert first is not None and change_s < first <= change_s + 20.0, conds
    assert conds[0][1]["priority"] == "high"
    assert {o["id"] for _, o in conds} == {cid}


def test_eeg_stable_raises_nothing():
    assert ie.eeg_conditions(ie.eeg_case(3, 90.0, 1e9, (0, 1), 0.4)) == []


def test_eeg_both_sides_is_global_at_first():
    conds = ie.eeg_conditions(ie.eeg_case(1, 62.0, 50.0, (0, 1), 0.4))
    assert conds and conds[0][1]["id"] == "eeg.global_change" and conds[0][0] <= 70.0
    assert {o["id"] for _, o in conds} == {"eeg.global_change"}


def test_eeg_both_sides_seed_1_stays_global_only():
    # the case that raised a one-sided HIGH at 71.7 s before the asymmetry test and hysteresis
    conds = ie.eeg_conditions(ie.eeg_case(1, 80.0, 50.0, (0, 1), 0.4))
    assert {o["id"] for _, o in conds} == {"eeg.global_change"}, conds


def test_eeg_both_sides_stays_global_only():
    # the claim on 20 seeds, at most one exception (seed 7: the right side's 8-s mean ratio is
    # 0.45 x the left's for two epochs, 68-76 s; docs/continuous.md); 20/20 went one-sided with
    # per-epoch decisions, 9/20 with the per-epoch asymmetry test
    one_sided = []
    for seed in range(20):
        conds = ie.eeg_conditions(ie.eeg_case(seed, 120.0, 50.0, (0, 1), 0.4))
        assert conds and conds[0][1]["id"] == "eeg.global_change", (seed, conds)
        if {o["id"] for _, o in conds} != {"eeg.global_change"}:
            one_sided.append(seed)
    assert len(one_sided) <= 1, one_sided

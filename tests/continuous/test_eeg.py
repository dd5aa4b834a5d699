"""Processed EEG: measures against scipy, and the hemispheric criterion on the simulated patient
(unilateral slowing at a carotid clamp -> HIGH on that side; both sides -> global)."""

from __future__ import annotations

import numpy as np
import pytest
from continuous_helpers import first_raised, make_cfg, run_patient
from scipy import signal

from appliance.errors import ConfigError
from appliance.modalities import eeg

CH = ["C3'-Fz", "C4'-Fz"]
EEG = {"left": ["C3'-Fz"], "right": ["C4'-Fz"], "baseline_s": 30.0}


def test_band_powers_equal_scipy_welch():
    rng = np.random.default_rng(5)
    fs = 250.0
    t = np.arange(int(8 * fs)) / fs
    x = rng.normal(0, 3, (3, t.size)) + 20 * np.sin(2 * np.pi * 10 * t) + 50
    for nperseg in (500, 333):
        f_ref, p_ref = signal.welch(x, fs, nperseg=nperseg)
        m = eeg.measures(x, fs, nperseg)
        df = f_ref[1] - f_ref[0]
        for name, (lo, hi) in eeg.BANDS_HZ.items():
            ref = p_ref[:, (f_ref >= lo) & (f_ref < hi)].sum(axis=1) * df
            np.testing.assert_allclose(m[name], ref, rtol=1e-6, atol=0)
        alpha = p_ref[:, (f_ref >= 8) & (f_ref < 13)].sum(axis=1) * df
        delta = p_ref[:, (f_ref >= 0.5) & (f_ref < 4)].sum(axis=1) * df
        np.testing.assert_allclose(m["alpha_delta"], alpha / delta, rtol=1e-6)
    # a 10 Hz sine dominates: SEF95 just above 10 Hz, relative alpha high
    assert 10.0 <= m["sef95_hz"][0] <= 13.0 and m["relative_alpha"][0] > 0.5


def test_burst_suppression_runs():
    fs = 100.0
    x = np.full((1, 300), 50.0)
    x[0, 100:180] = 1.0  # 0.8 s flat: suppressed
    x[0, 200:230] = 1.0  # 0.3 s flat: too short
    sup = eeg.suppressed(x, fs, 5.0, 0.5)
    assert sup.sum() == 80 and sup[0, 100:180].all()


def _eeg_run(events, duration_s=80.0):
    cfg = make_cfg(CH, 250, {"eeg": EEG})
    return run_patient(cfg, events, duration_s, block_ms=128.0)


def test_unilateral_slowing_raises_high_on_that_side_within_20_s():
    clamp_s = 50.0
    out, mon, _ = _eeg_run([{"type": "eeg_slowing", "at_s": clamp_s, "fast_to_percent": 40.0,
                             "channels": ["C3'-Fz"]}])
    t = first_raised(out, "eeg.fast_loss:L")
    assert t is not None and clamp_s < t <= clamp_s + 20.0, t
    assert first_raised(out, "eeg.fast_loss:R") is None
    assert first_raised(out, "eeg.global_change") is None
    c = next(o for o in out if o.get("id") == "eeg.fast_loss:L")
    assert c["priority"] == "high" and c["evidence"]["fast_ratio"]["L"] < 0.5
    trends = [o for o in out if o.get("type") == "eeg_trend" and o["baseline"]]
    assert trends[-1]["sides"]["asymmetry"]["fast_lr"] < -0.3  # left now weaker than right
    assert any(o.get("type") == "eeg_raw" for o in out)
    assert "eeg.fast_loss:L" in mon.active_condition_ids()


def test_bilateral_slowing_is_global_not_one_sided():
    out, _, _ = _eeg_run([{"type": "eeg_slowing", "at_s": 50.0, "fast_to_percent": 40.0}])
    t = first_raised(out, "eeg.global_change")
    assert t is not None and t <= 70.0
    assert first_raised(out, "eeg.fast_loss:L") is None
    assert first_raised(out, "eeg.fast_loss:R") is None


def test_stable_eeg_raises_nothing():
    out, _, _ = _eeg_run([], duration_s=70.0)
    assert not [o for o in out if o.get("id", "").startswith("eeg.")]


def test_cautery_epochs_are_marked_and_not_judged():
    # cautery on the left only during the clamp: its epochs must not count as a (non-)loss
    out, _, _ = _eeg_run([{"type": "cautery", "at_s": 20.0, "duration_s": 3.0,
                           "channels": ["C3'-Fz"]},
                          {"type": "cautery", "at_s": 52.0, "duration_s": 1.0,
                           "channels": ["C3'-Fz"]}], duration_s=64.0)
    marked = [o["t_s"] for o in out if o.get("type") == "eeg_trend" and o["artefact"]]
    assert marked and all(20.0 < t < 28.0 or 52.0 < t < 58.0 for t in marked), marked
    assert not [o for o in out if o.get("id", "").startswith("eeg.")]


def test_eeg_settings_errors_name_the_key():
    with pytest.raises(ConfigError, match="analysis.eeg.channels: got 'C5'"):
        make_cfg(CH, 500, {"eeg": {"left": ["C5"], "right": ["C4'-Fz"]}})
    with pytest.raises(ConfigError, match="left/right"):
        make_cfg(CH, 500, {"eeg": {"left": ["C3'-Fz"]}})


def _judge_ratios(pairs):
    """The hemispheric criterion on a sequence of (left, right) fast-power ratios to baseline:
    [(epoch, condition id, active)] of every condition message."""
    from appliance.analysis.eeg import EegPipeline
    from appliance.settings.continuous import EegSettings

    p = EegPipeline(EegSettings(left=("L",), right=("R",)), [0, 1], 250.0)
    out = []
    for i, (rl, rr) in enumerate(pairs):
        sides = {"L": {"fast_ratio": rl}, "R": {"fast_ratio": rr},
                 "asymmetry": {"fast_lr": (rl - rr) / (rl + rr)}}
        out += [(i, c.id, c.active) for c in p._judge(sides)]
    return out


def test_fast_loss_hovering_at_the_criterion_is_one_condition():
    # the left side drops to 0.3 at epoch 4 and then hovers at 0.45-0.58 (criterion 0.5, clear
    # margin 0.1): raised once when the 8-s L/R mean is below 0.5, never cleared while hovering
    seq = [(1.0, 1.0)] * 4 + [(0.3, 1.0)] * 3 + [(0.55, 1.0), (0.45, 1.0), (0.58, 0.95),
                                                (0.5, 1.0), (0.56, 1.0)]
    out = _judge_ratios(seq)
    assert [(i, a) for i, cid, a in out if cid == "eeg.fast_loss:L"] == [
        (i, True) for i in range(6, len(seq))], out
    # back to 0.8 (beyond 0.6): cleared after clear_epochs (3) epochs
    out = _judge_ratios(seq + [(0.8, 1.0)] * 5)
    cleared = [i for i, cid, a in out if cid == "eeg.fast_loss:L" and not a]
    assert cleared and len(seq) + 2 <= cleared[0] <= len(seq) + 4, out


def test_one_epoch_dip_is_not_a_loss():
    # a single low epoch (an estimate's scatter) on one side: the averaged ratios stay above
    out = _judge_ratios([(1.0, 1.0)] * 4 + [(0.3, 1.0)] + [(1.0, 1.0)] * 4)
    assert out == [], out


def test_bilateral_loss_with_one_side_lower_stays_global():
    # both sides lost, the left a little lower (0.35 vs 0.45: L/R 0.78 > asymmetry_max 0.5)
    out = _judge_ratios([(0.35, 0.45)] * 6)
    assert {cid for _, cid, _ in out} == {"eeg.global_change"}, out
    # a clearly one-sided deepening under the global change (0.15 vs 0.45: L/R 0.33 < 0.5 - 0.1)
    out = _judge_ratios([(0.35, 0.45)] * 3 + [(0.15, 0.45)] * 4)
    assert ("eeg.fast_loss:L", True) in {(cid, a) for _, cid, a in out}, out


def test_set_baseline_restarts_the_eeg_baseline():
    from appliance.analysis.monitor import Monitor
    from appliance.errors import CommandError
    from appliance.frontend.block import SampleBlock

    cfg = make_cfg(CH, 250, {"eeg": {**EEG, "baseline_s": 4.0, "epoch_s": 0.5,
                                     "welch_s": 1.0, "segment_s": 0.5}})
    mon, rng, k = Monitor(cfg), np.random.default_rng(0), [0]

    def push(seconds: float) -> list[bool]:
        out = []
        for _ in range(int(seconds * 250) // 25):
            uv = rng.normal(0, 20, (2, 25))
            out += [o.baseline for o in mon.push(SampleBlock(
                uv, np.zeros(25, np.uint16), np.zeros(uv.shape, bool), np.zeros(2, bool),
                k[0], 250.0, 0.0)) if o.to_json().get("type") == "eeg_trend"]
            k[0] += 25
        return out

    assert push(6.0)[-1]
    assert mon.set_baseline() == []  # no evoked site: the EEG alone, no "no average yet"
    assert not any(push(3.0)) and push(2.0)[-1]  # a new 4-s baseline
    assert mon.set_baseline("C3'-Fz") == [] and not any(push(1.0))
    with pytest.raises(CommandError, match="'eeg'"):
        mon.set_baseline("C5")

"""Family B (appliance/detection/family_b.py), the independently written SSEP case simulator, and
the Monitor-level evaluation harness (appliance/detection/evaluate.py): the generator's own
claims (residual noise of a 300-sweep average at the two noise levels, the changes really
happen, seeded determinism, saturation under cautery, BDF+ export that `ionm replay` runs) and
that the harness measures delays, false alarms and flaps from the real Monitor's output."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from appliance.detection import evaluate, family_b
from appliance.detection.family_b import Case
from appliance.frontend.bdf import read_recording

L, CORT = "L median", family_b.CORTICAL["L median"]


def _sweeps(case: Case, seed: int = 1):
    return family_b.conditioned_sweeps(family_b.render(case, seed), case, L, CORT)


def _scale(sweeps: np.ndarray) -> float:
    """Least-squares scale of the noiseless cortical response (N20...P45, without the far
    field below the cortex, which does not change) in the average."""
    base = Case("base")
    lost = Case("lost", "drop", 0.0, change_at_s=0.0)
    far = family_b.mean_response(lost, L, CORT, 1.0)[: sweeps.shape[1]]
    cortical = family_b.mean_response(base, L, CORT)[: sweeps.shape[1]] - far
    return float((sweeps.mean(axis=0) - far) @ cortical / (cortical @ cortical))


def test_family_b_residual_noise_of_300_sweep_average_at_both_levels():
    # 130 s: ~600 sweeps per site, two 300-sweep averages
    low = family_b.average_stats(_sweeps(Case("low", duration_s=130, artefacts=False))[0])
    high = family_b.average_stats(_sweeps(Case("high", noise="higher", duration_s=130,
                                               artefacts=False))[0])
    assert low["n_blocks"] == high["n_blocks"] == 2
    assert 0.11 < low["residual_uv"] < 0.19, low  # the "lower": ~0.15 µV
    assert 1.7 < high["residual_uv"] / low["residual_uv"] < 2.3, (low, high)  # doubled
    assert 1.8 < low["n20_p25_uv"] < 2.6, low  # 2 µV N20-P25 (+ the noise's own p-p)


def test_family_b_drop_loss_and_latency_really_happen_at_the_onset():
    # ~560 sweeps on each side: the scale of one average is within ~±0.07 (sd) of the truth
    kw = {"change_at_s": 120.0, "duration_s": 240.0}
    for to_ratio in (0.4, 0.0):
        case = Case("d", "drop", to_ratio, artefacts=False, **kw)
        sweeps, t = _sweeps(case)
        before = _scale(sweeps[t < 120.0])
        after = _scale(sweeps[t >= 120.0])
        assert before == pytest.approx(1.0, abs=0.15)
        assert after == pytest.approx(to_ratio, abs=0.15)
        assert family_b.truth(case).amplitude_ratio(130.0) == to_ratio
        assert family_b.truth(case).amplitude_ratio(130.0, "R median") == 1.0
    case = Case("lat", "latency", latency_pct=12.0, artefacts=False, **kw)
    sweeps, t = _sweeps(case)
    n = sweeps.shape[1]
    # the latency of the cortical response in each average: the best-fitting shift of the
    # noiseless response (a peak pick in a 700-sweep average is only good to ~±0.5 ms)
    shifts = np.arange(-1.0, 4.0, 0.1)
    grid = [family_b.mean_response(Case("s", "latency", latency_pct=100 * d / 19.61,
                                        change_at_s=0.0), L, CORT, 1.0)[:n] for d in shifts]

    def latency(avg):
        return shifts[np.argmax([avg @ g / np.sqrt(g @ g) for g in grid])]
    shift = latency(sweeps[t >= 120].mean(axis=0)) - latency(sweeps[t < 120].mean(axis=0))
    assert shift == pytest.approx(0.12 * family_b.n20_peak_ms(), abs=0.5)
    assert family_b.truth(case).latency_ratio(200.0) == pytest.approx(1.12)


def test_family_b_ramp_fade_and_determinism_by_seed():
    case = Case("r", "drop", 0.4, ramp_s=60.0, change_at_s=100.0, fade_per_h=0.3)
    tr = family_b.truth(case)
    assert tr.amplitude_ratio(100.0) == pytest.approx(1 - 0.3 * 100 / 3600)
    assert tr.amplitude_ratio(130.0) == pytest.approx((1 - 0.3 * 130 / 3600) * 0.7)
    assert tr.amplitude_ratio(400.0) == pytest.approx((1 - 0.3 * 400 / 3600) * 0.4)
    short = Case("s", duration_s=6.0)
    a, b, c = (family_b.render(short, s) for s in (5, 5, 6))
    assert np.array_equal(a.data_uv, b.data_uv) and np.array_equal(a.trigger, b.trigger)
    assert not np.allclose(a.data_uv, c.data_uv)
    # two sites interleaved at ~4.7 Hz on their own bits, every interval jittered
    for bit in (0, 1):
        on = np.flatnonzero(a.trigger & (1 << bit)) / family_b.FS_HZ
        isi = np.diff(on)
        assert np.all(np.abs(isi * family_b.RATE_HZ - 1) <= family_b.ISI_JITTER + 1e-3)
        assert isi.std() > 0.003
    with pytest.raises(ValueError, match="noise 'loud'"):
        Case("x", noise="loud")


def test_family_b_cautery_saturates_and_is_flagged():
    long = Case("c", duration_s=300.0)
    seed = next(s for s in range(1, 60) if any(
        k == "cautery" and a > 0.5 * family_b.ADC_FULL_SCALE_UV and t < 290
        for k, t, _, a in family_b.artefact_events(long, s)))
    r = family_b.render(long, seed)
    full = np.abs(r.data_uv) >= family_b.ADC_FULL_SCALE_UV
    assert r.saturated.any() and np.array_equal(full, r.saturated)
    assert np.abs(r.data_uv).max() <= family_b.ADC_FULL_SCALE_UV
    assert not family_b.artefact_events(replace(long, artefacts=False), seed)


def test_family_b_bdf_export_replays(tmp_path):
    case = Case("bdf", "drop", 0.0, change_at_s=10.0, duration_s=20.0)
    path = family_b.write_bdf(case, 2, tmp_path / "b.bdf")
    rec = read_recording(path)
    ref = family_b.render(case, 2)
    assert list(rec.channel_names) == list(family_b.CHANNELS)
    assert rec.data_uv.shape == ref.data_uv.shape
    assert np.max(np.abs(rec.data_uv - ref.data_uv)) < 0.1  # 24-bit at ±187.5 mV: 0.02 µV
    assert np.array_equal(rec.trigger & 3, ref.trigger)
    assert any("truth: drop L median" in a.text for a in rec.annotations)
    cfg = tmp_path / "b.toml"
    sites = "".join(
        f'[[analysis.sites]]\nname = "{s["name"]}"\nmodality = "ssep_upper"\n'
        f'channels = {json.dumps(s["channels"])}\ntrigger_bit = {s["trigger_bit"]}\n'
        for s in family_b.site_dicts())
    cfg.write_text(f'[frontend]\nchannels = {json.dumps(list(family_b.CHANNELS))}\n'
                   f'sample_rate_hz = {family_b.FS_HZ}\n[analysis]\nnotch_hz = 60.0\n{sites}')
    out = subprocess.run([sys.executable, "-m", "appliance.cli", "replay", str(path),
                          "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    trends = [d for d in lines if d["type"] == "trend" and d["channel"] == CORT]
    assert trends and all(d["site"] == L for d in trends)
    assert not [d for d in lines if d["type"] == "condition" and d["kind"] == "technical"
                and "no_stimulus" in d["id"]]


def test_harness_measures_a_loss_delay_from_the_onset_through_the_real_monitor():
    # a loss at 170 s (the automatic baseline waits for a ~600-sweep template: ~130 s): the
    # judged fit's recent sweeps show it within ~30-80 s. The same seed with the loss 40 s
    # later must be detected within the same span of its own onset. (At 170 s the baseline's
    # template is still growing; grown to 798 sweeps by 180 s, its recent thirds read this
    # seed's loss at 0.27-0.38 where the channel carries 0.12: raised after 80 s, where the
    # first 563-sweep template's read 0.20-0.30 and raised after 30 s.)
    delays = []
    for onset in (170.0, 210.0):
        case = Case("loss", "drop", 0.0, change_at_s=onset, duration_s=onset + 90.0)
        r = evaluate.evaluate(evaluate.Spec("B", case, {"fast_detection": False}), 3)
        assert r["conv_false_high"] == 0, r["conv_false_high_ids"]
        assert r["conv_high_s"] is not None and 20.0 <= r["conv_high_s"] <= 90.0, r
        first = next(c for c in r["conditions"] if c["id"].startswith("ssep.amplitude:L median")
                     and c["active"])
        assert first["t_s"] == pytest.approx(onset + r["conv_high_s"], abs=0.05)
        assert r["conv_high_clears"] == 0  # the loss persists: the alarm must not clear
        assert r["conv_armed_s"] is not None and r["conv_armed_s"] < 170.0
        assert r["n_star_s"] is not None and r["n_star_s"] > 0 and r["sigma_a"] > 0
        delays.append(r["conv_high_s"])
    # both within 20-90 s of their own onset: the delay is measured from the onset (the two
    # differ by the noise in each fit window: 80 and 60 s on this seed)
    assert len(delays) == 2


def test_harness_counts_false_raises_and_flaps():
    spec = evaluate.Spec("B", Case("d", "drop", 0.4, change_at_s=100.0, duration_s=400.0))

    def cond(cid, active, t, prio="high", site=L):
        return {"id": cid, "active": active, "priority": prio, "t_s": t, "site": site}
    a = "ssep.amplitude:L median:C4'-Fz"
    conds = [cond(a, True, 50.0), cond(a, False, 60.0),  # false: before the onset
             cond(a, True, 130.0), cond(a, True, 140.0), cond(a, False, 180.0),  # flap
             cond(a, True, 220.0),
             cond("ssep.amplitude:R median:C3'-Fz", True, 300.0, site="R median"),  # false
             cond("fast.possible:L median", True, 110.0, "medium"),
             cond("fast.amplitude:L median", True, 125.0)]
    r = evaluate._alarms(spec, conds)
    assert r["conv_high_s"] == 30.0 and r["conv_false_high"] == 2
    assert r["conv_false_high_ids"] == [a, "ssep.amplitude:R median:C3'-Fz"]
    assert r["conv_high_clears"] == 1
    assert r["fast_high_s"] == 25.0 and r["fast_medium_s"] == 10.0 and r["fast_false_high"] == 0
    assert r["site_hours"] == pytest.approx((100.0 + 400.0) / 3600.0, abs=1e-4)
    row = evaluate.summarise_runs(spec, [{**r, "sigma_a": 1.0, "n_star_s": 20.0}])
    assert row["conv_high_median_s"] == 30.0 and row["conv_high_over_n_star"] == 1.5


def test_harness_counts_a_medium_confirmed_high_as_a_high_raise_when_it_turns_high():
    """An imprecise channel's change is raised MEDIUM and turns HIGH in the same episode
    (appliance/analysis/criteria.py): the bench's HIGH delay is when it turned HIGH, the
    MEDIUM delay when it was raised, and falling back within the episode raises nothing."""
    spec = evaluate.Spec("B", Case("d", "drop", 0.4, change_at_s=100.0, duration_s=400.0))
    a = "ssep.amplitude:L median:C4'-Fz"
    g = "ssep.global_change"
    conds = [{"id": a, "active": True, "priority": "medium", "t_s": 150.0, "site": L},
             {"id": a, "active": True, "priority": "medium", "t_s": 160.0, "site": L},
             {"id": a, "active": True, "priority": "high", "t_s": 400.0, "site": L},
             {"id": a, "active": True, "priority": "high", "t_s": 410.0, "site": L},
             {"id": g, "active": True, "priority": "medium", "t_s": 200.0, "site": ""},
             {"id": g, "active": True, "priority": "low", "t_s": 210.0, "site": ""},
             {"id": g, "active": True, "priority": "medium", "t_s": 220.0, "site": ""}]
    r = evaluate._alarms(spec, conds)
    assert (r["conv_medium_s"], r["conv_high_s"]) == (50.0, 300.0)
    assert r["conv_high_clears"] == r["conv_medium_clears"] == 0
    # the global change (another "site") once, not again after its dip to LOW
    assert r["conv_false_medium"] == 1 and r["conv_false_high"] == 0


def test_bench_reports_both_families_side_by_side_with_conventional_and_n_star():
    from appliance.bench import detection_families

    # (170 s after the change: the conventional SSEP measure's window is sized by the noise,
    # ~90 s here; the change after the automatic baseline, which waits for a precise template)
    case = Case("loss-short", "drop", 0.0, change_at_s=200.0, duration_s=370.0)
    specs = [evaluate.Spec(f, case, {"fast_detection": False}) for f in ("A", "B")]
    r = detection_families.run(cases=specs, seeds=(2,), processes=1)
    rows = r["detection_families"]
    assert [(x["family"], x["case"]) for x in rows] == [("A", "loss-short"), ("B", "loss-short")]
    for row in rows:
        assert row["n_star_s"] > 0 and row["sigma_a"] > 0
        assert len(row["conv_high_s"]) == 1 and row["conv_high_median_s"] is not None, row
        assert row["conv_high_median_s"] < 170.0 and row["conv_false_high"] == 0, row
        assert row["fast_high_s"] == [None]  # fast detection off: nothing from it
    json.dumps(r)  # --json carries it
    text = detection_families.table(rows)
    assert text.count("loss-short") == 2 and "n*" in text


def test_family_b_far_field_is_not_separable_by_window_on_one_derivation():
    """Why a 40 % cortical response reads ~0.45 on family B's scalp channel (docs/detection.md,
    "The judged measure on family B"): the far-field N18 (18 ms, falling over 11 ms) lies under
    N20/P25 and is 58 % collinear with them, so the least-squares scale of the noiseless
    baseline response in the changed one is 0.44-0.47 for every window from the N20 onset to
    beyond P25 and with a slow nuisance (a line) fitted beside it; the ipsilateral scalp's far
    field, the physiological nuisance template, is ~0.04 uV rms there: under the ~0.075 uV
    residual of the longest template the appliance averages (1200 sweeps)."""
    t = family_b.response_t_ms()
    base, drop = Case("base"), Case("d", "drop", 0.4, change_at_s=0.0)
    b = family_b.mean_response(base, L, CORT)
    x = family_b.mean_response(drop, L, CORT, 1.0)
    ipsi = family_b.mean_response(base, L, family_b.IPSI_SCALP[L])
    for lo, hi in [(16.0, 33.0), (16.5, 30.0), (17.0, 28.0), (15.0, 35.0), (10.0, 45.0)]:
        w = (t >= lo) & (t <= hi)
        line = np.c_[np.ones(w.sum()), t[w]]
        for nuisance in (np.zeros((w.sum(), 0)), line):
            a = np.linalg.lstsq(np.c_[b[w], nuisance], x[w], rcond=None)[0][0]
            assert 0.43 <= a <= 0.47, (lo, hi, nuisance.shape, a)
    w = (t >= 16.0) & (t <= 33.0)
    assert np.sqrt(np.mean(ipsi[w] ** 2)) < 0.05


def test_family_b_channel_ratio_is_what_the_channel_carries():
    """channel_ratio renders the same stimuli without background or artefacts: a stable case
    reads 1, a loss keeps only the far field, a 40 % cortical response reads above 0.40 by the
    far field's share; the quiet render has the same triggers as the noisy one."""
    case = Case("d", "drop", 0.4, change_at_s=60.0, duration_s=150.0)
    loud, quiet = family_b.render(case, 5), family_b.render(case, 5, background=False)
    assert np.array_equal(loud.trigger, quiet.trigger)
    assert np.abs(quiet.data_uv).max() < 60.0 < np.abs(loud.data_uv).max()
    spans = ((0.0, 60.0), (80.0, 150.0))
    stable = family_b.channel_ratio(Case("s", duration_s=150.0), 5, "L median", *spans)
    drop = family_b.channel_ratio(case, 5, "L median", *spans)
    loss = family_b.channel_ratio(replace(case, to_ratio=0.0), 5, "L median", *spans)
    assert abs(stable - 1.0) < 0.06, stable  # only the sweeps' own slow wander
    assert 0.44 < drop < 0.55 and 0.05 < loss < 0.16, (drop, loss)
    # the other site's channel is untouched by this site's change
    other = family_b.channel_ratio(case, 5, "R median", *spans)
    assert abs(other - 1.0) < 0.06, other

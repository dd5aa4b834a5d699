"""The judged SSEP measure: a least-squares fit of the baseline average (appliance/dsp/
template.py) through the real Monitor. A response at 40 % of baseline reads 40 +- 10 % at the
issue's two noise levels, where peak picking read it high; a drop that persists near the
criterion raises one alarm that stays raised (hysteresis) and clears once on recovery; the
hysteresis margins are range-checked settings. The same goal on family B (appliance/detection/
family_b.py, written independently), whose scalp channel also carries the far-field P14/N18 that
a cortical drop leaves unchanged (docs/detection.md, "The judged measure on family B")."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_helpers import SynthSite, blocks, synth_stream, upper_cfg

from appliance import config
from appliance.analysis.monitor import Monitor
from appliance.detection import family_b
from appliance.errors import ConfigError
from appliance.frontend.block import SampleBlock

FS = 4000
CH = ["C4'-Fz"]
# ~2 uV N20-P25 after the 30-1000 Hz band, as in the cases
CORTICAL = [(19.5, -1.05, 1.2), (25.5, 0.95, 2.0)]
SITE = {"name": "L median", "modality": "ssep_upper", "channels": CH, "trigger_bit": 0}
# white noise per sample (uV) giving a 300-sweep residual of ~0.15 uV ("lower") and twice it
NOISE_UV = {"lower": 3.7, "higher": 7.4}


BASELINE_S = 130.0  # a baseline on command after two full windows (as a clinician would)


def _run(scale, duration_s: float, noise: str, seed: int = 2, **analysis) -> list[dict]:
    """The stream through a real Monitor; the baseline is taken on command at BASELINE_S (at
    the higher noise Fsp stays under 3.1, so an automatic baseline would never come)."""
    site = SynthSite(0, 4.7, {"C4'-Fz": CORTICAL}, scale=scale)
    data, trig = synth_stream(CH, FS, duration_s, [site], noise_uv=NOISE_UV[noise],
                              mains_uv=2.0, seed=seed)
    mon = Monitor(upper_cfg(CH, [SITE], FS, baseline_policy="manual", **analysis))
    out: list[dict] = []
    for b in blocks(data, trig, FS, 4000):
        if b.first_sample == int(BASELINE_S * FS):
            out += [{"type": "baseline", **x.to_json()} for x in mon.set_baseline()]
        out += [{"type": "condition", **o.to_json()} for o in mon.push(b)]
    return out


@pytest.mark.parametrize("noise", ["lower", "higher"])
def test_analysis_forty_percent_reads_forty_percent(noise):
    change_s = 200.0
    out = _run(lambda t: 0.4 if t >= change_s else 1.0, 480.0, noise)
    trends = [d for d in out if d["type"] == "trend" and d["fit"]]
    pre = [d for d in trends if d["t_s"] < change_s]
    assert pre and abs(np.mean([d["fit"]["amplitude_ratio"] for d in pre]) - 1.0) < 0.1
    # latency from the last 150 sweeps: well inside the 110 % criterion (+1.95 ms)
    assert all(abs(d["fit"]["latency_shift_ms"]) < 1.0 for d in pre)
    # once the judged window holds only the changed sweeps
    post = [d for d in trends if d["t_s"] > change_s + d["fit"]["n_sweeps"] / 4.7 + 11]
    assert len(post) >= 5, [d["fit"] for d in trends]
    ratios = np.array([d["fit"]["amplitude_ratio"] for d in post])
    assert abs(ratios.mean() - 0.4) < 0.1, ratios
    covered = [lo <= 0.4 <= hi for lo, hi in (d["fit"]["amplitude_ratio_ci95"] for d in post)]
    assert np.mean(covered) >= 0.8, [d["fit"] for d in post]
    # the displayed peak to peak is still there for the clinician, and reads the drop high
    base = next(d for d in out if d["type"] == "baseline")
    p2p = np.mean([d["peak_to_peak_uv"] for d in post]) / base["amplitude_uv"]
    assert p2p > ratios.mean(), (p2p, ratios.mean())
    # the alarm says which measure it judged
    cond = next(d for d in out if d["type"] == "condition" and d["active"]
                and d["id"] == "ssep.amplitude:L median:C4'-Fz")
    assert cond["evidence"]["measure"] == "template_fit" and "template fit" in cond["message"]
    lo, hi = cond["evidence"]["amplitude_ratio_ci95"]
    assert lo < cond["evidence"]["amplitude_ratio"] < hi


def _family_b_fits(seed: int, noise: str, change_s: float,
                   duration_s: float) -> tuple[list[tuple[float, dict]], object]:
    """(t_s, fit) of the changed cortical channel's trend, and its baseline: family B, a
    cortical drop to 40 %, artefacts on, the baseline on command at BASELINE_S (two windows,
    as a clinician takes it; at the higher noise the automatic one may never come),
    conventional criteria only."""
    case = family_b.Case("drop60", "drop", 0.4, noise=noise, change_at_s=change_s,
                         duration_s=duration_s)
    mon = Monitor(family_b.config(case, fast_detection=False, baseline_policy="manual"))
    lead = np.zeros(len(family_b.CHANNELS), bool)
    fits = []
    for ch in family_b.generate(case, seed):
        if ch.first_sample == int(BASELINE_S * family_b.FS_HZ):
            mon.set_baseline()
        for o in mon.push(SampleBlock(ch.data_uv, ch.trigger, ch.saturated, lead,
                                      ch.first_sample, float(family_b.FS_HZ), 0.0)):
            d = o.to_json()
            if (d.get("type") == "trend" and d["channel"] == family_b.CORTICAL["L median"]
                    and d["fit"]):
                fits.append((d["t_s"], d["fit"]))
    return fits, mon.baselines.get("L median", family_b.CORTICAL["L median"]), case


# (change at s, case length s): the higher noise judges on ~900 sweeps, so it settles later
FAMILY_B_TIMING = {"lower": (240.0, 450.0), "higher": (300.0, 640.0)}


@pytest.mark.parametrize("noise", ["lower", "higher"])
def test_analysis_forty_percent_reads_forty_percent_on_family_b(noise):
    """The issue's goal 1 on family B, seeds 1-4 (not chosen), at both noise levels: the mean
    post-change reading within 0.1 of what the channel really carries, the interval covering
    that in >= 80 % of updates, the pre-change reading within 0.1 of 1.

    What the channel carries is family B's `channel_ratio`: the same sweeps without background
    and artefacts, over the same spans. A 40 % cortical response is 0.46-0.51 of the channel's
    response there, because the far-field P14/N18 under N20/P25 do not change with the cortex
    (docs/detection.md, "The judged measure on family B"): no measure of one derivation can
    read the cortical 0.40 (the readings' mean is 0.43-0.55, so against 0.40 this fails)."""
    change_s, duration_s = FAMILY_B_TIMING[noise]
    pre_means, means, truths, covered = [], [], [], []
    for seed in (1, 2, 3, 4):
        fits, base, case = _family_b_fits(seed, noise, change_s, duration_s)
        assert base is not None and base.template_sweeps > 500, (seed, base)
        pre = [f["amplitude_ratio"] for t, f in fits if t < change_s]
        post = [(t, f) for t, f in fits
                if t > change_s + f["n_sweeps"] / family_b.RATE_HZ + 11]
        assert pre and len(post) >= 5, (seed, fits)
        # the channel over the template's sweeps and the first settled window's to the end
        t_first = post[0][0] - post[0][1]["n_sweeps"] / family_b.RATE_HZ
        truth = family_b.channel_ratio(
            case, seed, "L median", (base.t_s - base.template_sweeps / family_b.RATE_HZ,
                                     base.t_s), (t_first, duration_s))
        assert 0.44 < truth < 0.55, truth  # the far field's share: not the cortical 0.40
        pre_means.append(float(np.mean(pre)))
        means.append(float(np.mean([f["amplitude_ratio"] for _, f in post])))
        truths.append(truth)
        covered += [lo <= truth <= hi for lo, hi in (f["amplitude_ratio_ci95"] for _, f in post)]
    assert abs(np.mean(pre_means) - 1.0) < 0.1, pre_means
    assert abs(np.mean(means) - np.mean(truths)) < 0.1, (means, truths)
    assert np.mean(covered) >= 0.8, covered


def _transitions(out: list[dict], cid: str) -> list[tuple[float, bool]]:
    seq: list[tuple[float, bool]] = []
    for d in out:
        if d["type"] == "condition" and d["id"] == cid and (not seq or seq[-1][1] != d["active"]):
            seq.append((d["t_s"], d["active"]))
    return seq


def test_analysis_persisting_drop_near_the_criterion_does_not_flap():
    # a drop to 45 %: the unbiased measure wanders across 50 % while it lasts
    drop = (200.0, 720.0)
    scale = lambda t: 0.45 if drop[0] <= t < drop[1] else 1.0  # noqa: E731
    cid = "ssep.amplitude:L median:C4'-Fz"
    seq = _transitions(_run(scale, 900.0, "higher", seed=5), cid)
    assert len(seq) == 2 and seq[0][1] and not seq[1][1], seq
    assert drop[0] < seq[0][0] < drop[0] + 240 and seq[1][0] > drop[1], seq
    # without the margin (clear back at 50 %) the measure crosses 50 % again and again while
    # the drop persists, and a plain threshold would flap; an alarm still clears only on a
    # clear recovery (one standard error above the clearing level), so it holds here too
    out = _run(scale, 900.0, "higher", seed=5, clear_amplitude_margin=0.0)
    seq0 = _transitions(out, cid)
    assert len(seq0) == 2 and seq0[1][0] > drop[1], seq0
    above = [d["t_s"] for d in out if d["type"] == "trend" and d["fit"]
             and seq0[0][0] < d["t_s"] < drop[1] and d["fit"]["amplitude_ratio"] >= 0.5]
    assert len(above) > 2, above


def test_analysis_clear_margins_are_range_checked():
    ok = upper_cfg(CH, [SITE], FS, clear_amplitude_margin=0.2, clear_latency_margin=0.0)
    assert ok.analysis.clear_amplitude_margin == 0.2
    with pytest.raises(ConfigError, match="clear_amplitude_margin"):
        upper_cfg(CH, [SITE], FS, clear_amplitude_margin=0.7)
    with pytest.raises(ConfigError, match=r"criteria\.clear_latency_margin"):
        config.from_dict({"frontend": {"channels": CH, "sample_rate_hz": FS},
                          "analysis": {"sites": [{**SITE,
                                                  "criteria": {"clear_latency_margin": -0.1}}]}})


def _auto_run(scale, duration_s: float, seed: int = 3) -> tuple[list[dict], Monitor]:
    """The lower-noise stream through a real Monitor under the automatic baseline policy."""
    site = SynthSite(0, 4.7, {"C4'-Fz": CORTICAL}, scale=scale)
    data, trig = synth_stream(CH, FS, duration_s, [site], noise_uv=NOISE_UV["lower"],
                              mains_uv=2.0, seed=seed)
    mon = Monitor(upper_cfg(CH, [SITE], FS))
    out = [o.to_json() for b in blocks(data, trig, FS, 4000) for o in mon.push(b)]
    return out, mon


def test_analysis_auto_baseline_template_grows_until_a_change_is_seen():
    """The automatic baseline comes after at most two windows; its template goes on taking in
    the sweeps that follow (a smaller gain error) up to four windows, but not once a change
    is seen: a drop soon after the baseline is not absorbed into it."""
    cap = 4 * 300  # JUDGE_MAX_WINDOWS moving windows of the site's 300 sweeps
    out, mon = _auto_run(lambda t: 1.0, 330.0)
    first = next(d for d in out if d.get("type") == "baseline" and d["channel"] == CH[0])
    assert first["template_sweeps"] <= 2 * 300, first
    grown = mon.baselines.get("L median", CH[0])
    assert grown.t_s == first["t_s"] and grown.template_sweeps == cap, grown.template_sweeps

    for after_s in (3.0, 40.0):  # the same stream (seed): the same baseline time
        change_s = first["t_s"] + after_s
        out, mon = _auto_run(lambda t, c=change_s: 0.4 if t >= c else 1.0, 600.0)
        base = mon.baselines.get("L median", CH[0])
        assert base.t_s == first["t_s"]
        # grown until the first update that shows the change (~10 s of it), no more
        assert base.template_sweeps < (change_s + 20.0) * 4.7, (after_s, base.template_sweeps)
        settled = [d["fit"]["amplitude_ratio"] for d in out if d.get("type") == "trend"
                   and d["fit"] and d["t_s"] > change_s + d["fit"]["n_sweeps"] / 4.7 + 11]
        assert len(settled) >= 5 and abs(np.mean(settled) - 0.4) < 0.1, (after_s, settled)
        assert any(d.get("id", "").startswith("ssep.amplitude:L median") and d["active"]
                   for d in out), after_s

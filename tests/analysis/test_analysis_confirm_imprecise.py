"""On a channel whose judged amplitude is too imprecise for its criterion (`ssep.cannot_see`),
a change is raised MEDIUM and turns HIGH only when a whole window of sweeps newer than the raise
shows it too: two consecutive updates share all but a few sweeps and confirm little, and at the
issue's higher noise a 30 %/h fade read below 50 % 3-5 times per 8 h (docs/detection.md). A
channel precise enough is raised HIGH at once, as before. Family B (appliance/detection/
family_b.py, written independently of the project's simulator) through the real Monitor."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.analysis.monitor import Monitor
from appliance.detection import evaluate, family_b
from appliance.frontend.block import SampleBlock

CORT = family_b.CORTICAL["L median"]
CID = f"ssep.amplitude:L median:{CORT}"
CHANGE_S = 600.0  # the fit's window is at its longest (1,200 sweeps) well before this


def _run(noise: str, stop_s: float, family: str = "B", to_ratio: float = 0.4,
         latency_pct: float = 0.0, seed: int = 1, ids: tuple[str, ...] = (CID,),
         **analysis) -> tuple[list[dict], list[dict]]:
    """(L median's cortical conditions `ids`, its trend points) for a drop to `to_ratio` (or
    an N20 latency rise of latency_pct) at CHANGE_S, up to stop_s (one case: its duration sets
    its random draws)."""
    change = ("latency", 1.0) if latency_pct else ("drop", to_ratio)
    case = family_b.Case(f"{change[0]}-{noise}", *change, latency_pct=latency_pct,
                         change_at_s=CHANGE_S, noise=noise, duration_s=1100.0)
    spec = evaluate.Spec(family, case, {"fast_detection": False, **analysis})
    mon = Monitor(spec.config())
    lead = np.zeros(len(family_b.CHANNELS), bool)
    conds, trend = [], []
    for ch in evaluate.chunks(spec, seed, spec.config()):
        for o in mon.push(SampleBlock(ch.data_uv, ch.trigger, ch.saturated, lead,
                                      ch.first_sample, float(family_b.FS_HZ), 0.0)):
            d = o.to_json()
            if d.get("id") in ids:
                conds.append(d)
            elif d.get("type") == "trend" and d["site"] == "L median" and d["channel"] == CORT:
                trend.append(d)
        if ch.first_sample / family_b.FS_HZ > stop_s:
            break
    return conds, trend


@pytest.fixture(scope="module")
def higher() -> tuple[list[dict], list[dict]]:
    return _run("higher", 1100.0)


def test_an_imprecise_drop_is_medium_until_new_sweeps_show_it(higher):
    conds, trend = higher
    raised = [d for d in conds if d["active"]]
    assert raised, "the 60 % drop was never raised"
    first = raised[0]
    assert first["priority"] == "medium", first["message"]
    assert first["evidence"]["imprecise"] is True
    assert "MEDIUM while the measure is imprecise" in first["message"]
    high = [d for d in raised if d["priority"] == "high"]
    assert high, "never confirmed HIGH: " + raised[-1]["message"]
    # one episode: raised once, never cleared before it turned HIGH
    assert not [d for d in conds if not d["active"] and d["t_s"] < high[0]["t_s"]]
    # what confirms it holds only sweeps newer than the raise: the next recent third for a
    # change raised as a loss (the noisy recent third read below 30 % first, here), else the
    # next whole window
    fit = first["evidence"]["fit"]
    window = max(p["fit"]["n_sweeps"] for p in trend if p["fit"] and p["t_s"] <= first["t_s"])
    span = fit["recent_n_sweeps"] if fit["lost"] else window
    assert high[0]["t_s"] - first["t_s"] >= span / family_b.RATE_HZ - 10.0
    assert high[0]["evidence"]["fit"]["amplitude_ratio"] < 0.5


def test_without_confirmation_the_same_drop_is_high_at_once(higher):
    medium_t_s = next(d["t_s"] for d in higher[0] if d["active"])
    conds, _ = _run("higher", medium_t_s + 20.0, confirm_imprecise=False)
    first = next(d for d in conds if d["active"])
    assert (first["t_s"], first["priority"]) == (medium_t_s, "high")
    assert "MEDIUM while" not in first["message"]


def test_a_precise_channel_raises_high_at_once():
    conds, trend = _run("lower", CHANGE_S + 240.0)
    first = next(d for d in conds if d["active"])
    assert first["priority"] == "high", first["message"]
    assert first["evidence"]["imprecise"] is False
    assert first["t_s"] > CHANGE_S


def test_an_imprecise_loss_is_confirmed_by_the_next_recent_sweeps():
    """A loss is judged from the fit's recent third; raised MEDIUM on an imprecise channel, it
    turns HIGH when the next third, all newer sweeps, reads below the criterion too: about a
    third of a window later, not a whole window (family A's channels are the imprecise ones
    at the higher noise)."""
    conds, trend = _run("higher", CHANGE_S + 300.0, family="A", to_ratio=0.0)
    raised = [d for d in conds if d["active"]]
    assert raised, "the loss was never raised"
    first = raised[0]
    assert first["priority"] == "medium" and first["evidence"]["fit"]["lost"], first["message"]
    high = next(d for d in raised if d["priority"] == "high")
    recent = first["evidence"]["fit"]["recent_n_sweeps"]
    window = max(p["fit"]["n_sweeps"] for p in trend if p["fit"])
    assert recent < window
    waited_s = high["t_s"] - first["t_s"]
    assert recent / family_b.RATE_HZ - 10.0 <= waited_s < window / family_b.RATE_HZ - 10.0


LATENCY_CID = f"ssep.latency:L median:{CORT}"
SEE_CID = f"ssep.cannot_see:L median:{CORT}"


def test_a_latency_is_judged_by_its_own_precision():
    """A latency change is MEDIUM first only while the latency's own SE is too large for its
    criterion (4.5 SE from the baseline latency), not because the amplitude is imprecise:
    family A at the higher noise, whose amplitude cannot judge 50 % (`cannot_see` stands),
    has an N20 sharp enough to raise a +12 % rise HIGH at once on some seeds."""
    at_once = 0
    for seed in (1, 2, 3):
        conds, trend = _run("higher", CHANGE_S + 150.0, family="A", latency_pct=12.0,
                            seed=seed, ids=(LATENCY_CID, SEE_CID))
        first = next((d for d in conds if d["id"] == LATENCY_CID and d["active"]), None)
        assert first is not None, f"seed {seed}: the latency rise was never raised"
        fit = first["evidence"]["fit"]
        gap_ms = 0.1 * first["evidence"]["baseline"]["latency_ms"]
        sharp = gap_ms >= 4.5 * fit["latency_se_ms"]
        assert first["evidence"]["imprecise"] is (not sharp), (seed, fit)
        assert first["priority"] == ("high" if sharp else "medium"), (seed, first["message"])
        if not sharp:
            assert f"SE {fit['latency_se_ms']:.2f} ms" in first["message"], first["message"]
        see = [d for d in conds if d["id"] == SEE_CID and d["t_s"] <= first["t_s"]]
        if sharp and see and see[-1]["active"]:
            at_once += 1
    assert at_once, "no latency rise was raised HIGH at once while the amplitude was imprecise"


def test_a_false_latency_crossing_with_an_imprecise_latency_stays_medium():
    """Family B at the higher noise, fast detection off, seed 1: the stable R median's N20
    crossed 110 % at 240 s (21.74 ms for 19.77, SE 0.44 ms), a false latency HIGH in stop 17.
    Judged by its own SE it is MEDIUM, and clears without turning HIGH; while no latency can
    be measured the message says so (it read 'nan ms')."""
    case = family_b.Case("drop60-higher", "drop", 0.4, change_at_s=900.0, noise="higher",
                         duration_s=1200.0)
    spec = evaluate.Spec("B", case, {"fast_detection": False})
    mon = Monitor(spec.config())
    lead = np.zeros(len(family_b.CHANNELS), bool)
    conds = []
    for ch in evaluate.chunks(spec, 1, spec.config()):
        for o in mon.push(SampleBlock(ch.data_uv, ch.trigger, ch.saturated, lead,
                                      ch.first_sample, float(family_b.FS_HZ), 0.0)):
            d = o.to_json()
            if str(d.get("id", "")).startswith("ssep.latency:R median"):
                conds.append(d)
        if ch.first_sample / family_b.FS_HZ > 300.0:
            break
    raised = [d for d in conds if d["active"]]
    assert raised, "the crossing this test is about no longer happens: pick another case"
    assert all(d["priority"] == "medium" for d in raised), [d["message"] for d in raised]
    assert "ms against a" in raised[0]["message"], raised[0]["message"]
    assert not conds[-1]["active"], conds[-1]["message"]  # cleared by 300 s
    assert not any("nan" in d["message"] for d in conds), [d["message"] for d in conds]

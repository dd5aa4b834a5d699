"""Issue 12, goals 4-5, for the fast detector on both case families: armed within 3 min, a 60 %
drop raises HIGH (not only "possible") within 1.2 n*, a loss within 25 s, the displayed
estimate within 10 points of the truth, one raise and no clearing across a persisting drop, no
false HIGH on stable cases. Small fixed seed sets of short cases; the measured table is in
docs/detection.md.
"""

import numpy as np
import pytest

from appliance.conditions import Priority
from appliance.detection import cases
from appliance.detection import family_b as fb
from appliance.detection.detector import DetectorSettings, SweepDetector

# the sequential bounds on family B (one false alarm per 8 h, lower noise)
N_STAR_60_LOWER_S = 59.0
CHANGE_S = 300.0


def _run(stream, fs_hz: float, site: str = "site") -> dict:
    """Feed (sweeps, t_s) chunks; every report with its time, when the detector armed."""
    det = SweepDetector(site, fs_hz, DetectorSettings())
    reports, armed_s = [], None
    for x, t in stream:
        for i in range(0, len(t), 5):  # updates of 5 sweeps, as the monitor sends them
            reports += det.push(x[i:i + 5], t[i:i + 5])
            if armed_s is None and det.ready:
                armed_s = float(t[min(i + 4, len(t) - 1)])
    return {"reports": reports, "armed_s": armed_s, "det": det}


def _family_b(case: fb.Case, seed: int) -> dict:
    chunk = fb.render(case, seed)
    x, t = fb.conditioned_sweeps(chunk, case, case.site, fb.CORTICAL[case.site], (10.0, 45.0))
    return _run([(x, t)], fb.FS_HZ, case.site)


def _raised(reports, prio: Priority = Priority.HIGH) -> list:
    return [c for c in reports if c.active and c.priority is prio
            and c.evidence.get("design_drop") is not None
            and c.evidence.get("sweeps_since_change") is None]  # first reports, not updates


def test_armed_within_3_minutes_of_a_stable_baseline():
    a = _run(cases.sweeps(cases.Case("stable", change_at_s=None, duration_s=200,
                                     noise_scale=0.5), 1), cases.FS_HZ)
    b = _family_b(fb.Case("stable", duration_s=200), 1)
    for r in (a, b):
        assert r["armed_s"] is not None and r["armed_s"] <= 180.0, r["armed_s"]
        det = r["det"]
        assert 0.5 < det.sigma_ratio < 5.0 and 0.5 < det.reference < 1.5


@pytest.mark.parametrize("seed", [1, 3, 4])
def test_family_b_60pct_drop_raises_high_within_1_2_n_star(seed):
    case = fb.Case("drop60", "drop", 0.4, change_at_s=CHANGE_S, duration_s=CHANGE_S + 150)
    reports = _family_b(case, seed)["reports"]
    assert not [c for c in reports if c.active and c.t_s < CHANGE_S], "false alarm"
    high = _raised(reports)
    assert high, "the 60 % drop never raised HIGH"
    assert high[0].t_s - CHANGE_S <= 1.2 * N_STAR_60_LOWER_S, high[0].t_s - CHANGE_S


def test_family_b_loss_raises_high_within_25_s():
    delays = []
    for seed in (1, 3, 4):
        case = fb.Case("loss", "drop", 0.0, change_at_s=CHANGE_S, duration_s=CHANGE_S + 90)
        high = _raised(_family_b(case, seed)["reports"])
        delays.append(high[0].t_s - CHANGE_S if high else np.inf)
    assert np.median(delays) <= 25.0, delays


@pytest.mark.parametrize(("noise", "after_s"), [(0.5, 300.0), (0.7, 600.0)])
def test_displayed_estimate_within_10_points_of_a_persisting_drop(noise, after_s):
    """The estimate since the change point, re-reported while the alarm stands, is unbiased:
    over the seeds it reads a 40 % response as 40 +- 10 % once the drop has persisted 4 min,
    and each seed's 95 % interval covers the truth. (One case's estimate has its own sd, ~0.05
    at noise 0.5 and ~0.06 at 0.7 after 5-10 min: a single reading can be 10 points off.)
    Across the drop the HIGH alarm is raised once and never cleared (no flapping). n* for a
    60 % drop is ~2 min at noise 0.5 and ~4 min at 0.7, so the cases run 5 and 10 min."""
    estimates = []
    for seed in (1, 2):
        case = cases.Case("drop60", drop=0.6, noise_scale=noise, change_at_s=CHANGE_S,
                          duration_s=CHANGE_S + after_s, cautery_per_h=0, movement_per_h=0)
        reports = _run(cases.sweeps(case, seed), cases.FS_HZ)["reports"]
        amp = [c for c in reports if c.id.startswith("fast.amplitude")]
        assert amp and all(c.active for c in amp), [(c.t_s, c.active) for c in amp]
        assert len(_raised(reports)) == 1
        last = amp[-1]
        assert last.t_s - CHANGE_S >= 240.0
        est = last.evidence["amplitude_ratio"]
        lo, hi = last.evidence["amplitude_ratio_ci95"]
        assert lo <= 0.4 <= hi, (seed, est, lo, hi)
        assert f"now {est:.0%}" in last.message
        estimates.append(est)
    assert abs(np.mean(estimates) - 0.4) <= 0.1, estimates


@pytest.mark.parametrize("case", [fb.Case("stable", duration_s=900),
                                  fb.Case("stable", noise="higher", duration_s=900),
                                  fb.Case("fade30", fade_per_h=0.3, duration_s=900)],
                         ids=lambda c: f"{c.name}-{c.noise}")
def test_family_b_no_false_high(case):
    reports = _family_b(case, 2)["reports"]
    assert not [c.t_s for c in reports if c.priority is Priority.HIGH], case

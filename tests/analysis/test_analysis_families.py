"""Conventional SSEP criteria on both case families through the real Monitor (appliance/
detection/evaluate.py; family B is written independently of the project's simulated patient,
family A is that patient): an N20 latency rise of 12 % raises HIGH within 60 s on both, a
complete loss within 90 s on family B (the issue's goal is 60 s: measured 50-80 s over seeds,
docs/analysis.md), with no false HIGH on either site before the change or on the other site,
and no clearing while the change persists. Short cases (400 s, change at 300 s), one seed
each; the full tables come from `ionm bench detection` (docs/detection.md)."""

from __future__ import annotations

import pytest

from appliance.detection import family_b
from appliance.detection.evaluate import Spec, evaluate

KW = {"duration_s": 400.0, "change_at_s": 300.0}
CASES = {
    "latency": family_b.Case("latency+12%-lower", "latency", latency_pct=12.0, **KW),
    "loss": family_b.Case("loss-lower", "drop", 0.0, **KW),
    # family B's scalp channel with its far field cancelled (far_field=0, a CPc-CPi-like
    # derivation): the channel then carries the cortical 40 %, which the 50 % criterion can see
    # (with the far field the channel carries 0.46-0.51, at the criterion: docs/detection.md)
    "drop60-no-far-field": family_b.Case("drop60-lower", "drop", 0.4, far_field=0.0,
                                         duration_s=440.0, change_at_s=300.0),
}


@pytest.mark.parametrize(("family", "case", "seed", "within_s"), [
    ("B", "latency", 2, 60.0), ("A", "latency", 3, 60.0), ("B", "loss", 1, 90.0),
    ("B", "drop60-no-far-field", 2, 120.0)])
def test_analysis_conventional_criteria_in_time_on_both_families(family, case, seed, within_s):
    r = evaluate(Spec(family, CASES[case], {"fast_detection": False}), seed)
    assert r["conv_armed_s"] is not None and r["conv_armed_s"] < KW["change_at_s"], r
    assert r["conv_high_s"] is not None and 0 <= r["conv_high_s"] <= within_s, r
    assert r["conv_false_high"] == 0, r["conv_false_high_ids"]
    assert r["conv_high_clears"] == 0, r


def _table(families: list[str], seeds: list[int]) -> None:
    """Prints one row per (family, case): the first conventional HIGH after the change per seed
    (None: never), false HIGHs (before the change, or on the other site) over the site-hours,
    and clears while the change persisted. Changes at 420 s of 660-s cases; stable and fade
    cases run 1800 s."""
    from appliance.detection.evaluate import run_jobs

    kw = {"duration_s": 660.0, "change_at_s": 420.0}
    cases = []
    for nz in ("lower", "higher"):
        cases += [family_b.Case(f"drop60-{nz}", "drop", 0.4, noise=nz, **kw),
                  family_b.Case(f"drop60-no-far-field-{nz}", "drop", 0.4, noise=nz,
                                far_field=0.0, **kw),
                  family_b.Case(f"loss-{nz}", "drop", 0.0, noise=nz, **kw),
                  family_b.Case(f"latency+12%-{nz}", "latency", latency_pct=12.0, noise=nz,
                                **kw),
                  family_b.Case(f"stable-{nz}", noise=nz, duration_s=1800.0)]
    cases.append(family_b.Case("fade30%/h-lower", fade_per_h=0.3, duration_s=1800.0))
    for fam in families:
        for case in cases:
            spec = Spec(fam, case, {"fast_detection": False})
            runs = run_jobs([(spec, s) for s in seeds], processes=1)
            print(fam, case.name, "HIGH after change:", [r["conv_high_s"] for r in runs],
                  "false HIGH:", sum(r["conv_false_high"] for r in runs), "in",
                  round(sum(r["site_hours"] for r in runs), 2), "site-h; clears:",
                  sum(r["conv_high_clears"] for r in runs), flush=True)


if __name__ == "__main__":  # python tests/analysis/test_analysis_families.py B,A 1 2 3
    import sys

    _table(sys.argv[1].split(","), [int(s) for s in sys.argv[2:]])

"""A false "possible" under an anaesthetic fade clears, through the real Monitor on family B
(written independently of the project's patient). Frozen on "possible", the fast reference
stayed where the fade was when the alarm came; the fade went on below it, the alarm never
cleared, and the drop tests raised a false HIGH minutes later (docs/detection.md, Method 6)."""

import dataclasses

from appliance.detection import evaluate, family_b


def test_a_false_possible_under_a_30pct_per_h_fade_clears_and_never_escalates():
    case = {c.name: c for c in family_b.standard_cases()}["fade30%/h-lower"]
    r = evaluate.evaluate(evaluate.Spec("B", dataclasses.replace(case, duration_s=1800.0)), 4)
    fast = [d for d in r["conditions"] if d["id"].startswith("fast.")]
    raised = [d for d in fast if d["id"].startswith("fast.possible") and d["active"]]
    # seed 4 raises a false "possible" on R median at ~807 s: the case must still stress this
    assert raised, "no false 'possible' in this case: the test is moot"
    t_raise = raised[0]["t_s"]
    cleared = [d for d in fast if d["id"] == raised[0]["id"] and not d["active"]
               and d["t_s"] > t_raise]
    # frozen (before): still raised at 1,800 s; held: cleared at ~1,323 s
    assert cleared and cleared[0]["t_s"] - t_raise < 700.0, (t_raise, cleared[:1])
    assert r["fast_false_high"] == 0, r["fast_false_high_ids"]

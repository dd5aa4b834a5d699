"""Family A (the project's simulated patient driven through evaluate.family_a_scenario) at the
issue's noise levels: a 300-sweep average's residual is ~0.15 µV on its ~2 µV N20-P25 at
"lower", doubled at "higher", as family B's."""

from __future__ import annotations

import numpy as np

from appliance.detection import evaluate, family_b
from appliance.detection.family_b import Case

L, CORT = "L median", family_b.CORTICAL["L median"]


def _stats(noise: str) -> dict:
    case = Case(f"stable-{noise}", noise=noise, duration_s=130.0, artefacts=False)
    spec = evaluate.Spec("A", case)
    parts = list(evaluate.chunks(spec, 1, spec.config()))
    whole = family_b.Chunk(np.concatenate([p.data_uv for p in parts], axis=1),
                           np.concatenate([p.trigger for p in parts]),
                           np.concatenate([p.saturated for p in parts], axis=1), 0)
    sweeps, _ = family_b.conditioned_sweeps(whole, case, L, CORT)
    return family_b.average_stats(sweeps)


def test_family_a_residual_noise_of_300_sweep_average_at_the_issue_levels(monkeypatch):
    low, high = _stats("lower"), _stats("higher")
    monkeypatch.setitem(evaluate.FAMILY_A_NOISE, "lower", 1.0)  # the patient's own noise
    own = _stats("lower")
    assert low["n_blocks"] == high["n_blocks"] == 2
    # the issue's "lower": ~0.15 µV on ~2 µV; relative to the response as family B's
    assert 0.12 < low["residual_uv"] < 0.18, low
    assert 0.055 < low["residual_uv"] / low["n20_p25_uv"] < 0.085, low
    assert 1.7 < high["residual_uv"] / low["residual_uv"] < 2.3, (low, high)  # doubled
    # the patient's own noise is ~1.45x the issue's lower: the level is really scaled
    assert 1.25 < own["residual_uv"] / low["residual_uv"] < 1.65, (low, own)

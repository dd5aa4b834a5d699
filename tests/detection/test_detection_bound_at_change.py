"""The bound at the change: n* from the noise the detector faced after the change, beside the
one from the stable start (the patient's noise wanders, so the two can differ)."""

import numpy as np

from appliance.detection import bounds, evaluate, family_b


def _sweeps(rng, n: int, scale: float, noise_uv: float) -> np.ndarray:
    t = np.arange(140) / family_b.FS_HZ
    shape = np.sin(2 * np.pi * 40.0 * t) * np.exp(-t / 0.01)
    return scale * shape + noise_uv * rng.standard_normal((n, t.size))


def test_bound_at_the_change_follows_the_noise_after_it():
    rng = np.random.default_rng(3)
    case = next(c for c in family_b.standard_cases() if c.name == "drop60-lower")
    spec = evaluate.Spec("A", case)
    before = _sweeps(rng, 2000, 1.0, 2.0)
    same = evaluate.n_star_at_change(spec, before, _sweeps(rng, 2000, 0.4, 2.0), 4.7)
    noisier = evaluate.n_star_at_change(spec, before, _sweeps(rng, 2000, 0.4, 2.0 * 2**0.5),
                                        4.7)
    sigma_a = bounds.sigma_a_standard(before, before.mean(axis=0))
    start = bounds.n_star_sweeps(sigma_a, case.drop, bounds.arl0_sweeps(4.7)) / 4.7
    # the response's drop does not enter the bound, only the noise: same noise, same n*
    assert abs(same / start - 1.0) < 0.1, (same, start)
    assert abs(noisier / start - 2.0) < 0.2, (noisier, start)

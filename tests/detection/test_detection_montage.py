"""Several derivations of one response: the montage cases, the GLS across channels, and the fast
detector on them beating the single-derivation bound."""

import numpy as np
import pytest

from appliance.bench.detection import run_case
from appliance.detection import bounds, cases
from appliance.detection.detector import DetectorSettings
from appliance.detection.template import fit_template


def _sweeps(case: cases.Case, seed: int) -> np.ndarray:
    return np.concatenate([x for x, _ in cases.sweeps(case, seed)])


def _oos_sigma(train: np.ndarray, test: np.ndarray) -> float:
    """Per-sweep sd of the amplitude of held-out sweeps, as a fraction of their median."""
    model = fit_template(train, cases.FS_HZ, shift_ms=2.0)
    a = model.estimate(test)[0]
    return float(np.std(a) / np.median(a))


def test_montage_channel_0_carries_the_standard_response():
    quiet = cases.Case("quiet", change_at_s=None, duration_s=120, noise_scale=0.0,
                       cautery_per_h=0, movement_per_h=0, channels=3)
    x = _sweeps(quiet, 3)
    assert x.shape[1:] == (3, cases.true_template().size)
    tmpl = cases.true_template()
    mean0 = x[:, 0].mean(axis=0)
    assert np.max(np.abs(mean0 - tmpl)) < 0.05 * np.ptp(tmpl)
    # the other derivations see the same shape at the case's own gains
    gains = cases.derivation_gains(cases.topography(np.random.default_rng(0)))
    assert gains[0] == 1.0 and gains.shape == (3,)
    for ch in (1, 2):
        g = float(x[:, ch].mean(axis=0) @ tmpl / (tmpl @ tmpl))
        assert np.allclose(x[:, ch].mean(axis=0), g * tmpl, atol=0.05 * np.ptp(tmpl))


def test_gls_across_derivations_lowers_the_amplitude_noise():
    case = cases.Case("stable", change_at_s=None, duration_s=500, noise_scale=0.5,
                      cautery_per_h=0, movement_per_h=0, channels=3)
    x = _sweeps(case, 2)
    one = _oos_sigma(x[:600, 0], x[600:, 0])
    three = _oos_sigma(x[:600], x[600:])
    assert (one / three) ** 2 > 1.5, (one, three)


def test_channels_without_the_response_cost_little():
    """Pure-noise extra channels carry no information: the combined estimate must not invent a
    gain, nor lose much (a few noisy covariance terms)."""
    case = cases.Case("stable", change_at_s=None, duration_s=500, noise_scale=0.5,
                      cautery_per_h=0, movement_per_h=0)
    x = _sweeps(case, 4)
    rng = np.random.default_rng(4)
    noise = x[rng.permutation(len(x))] - x.mean(axis=0)  # the same noise, other sweeps
    stacked = np.stack([x, noise, np.roll(noise, 7, axis=0)], axis=1)
    one = _oos_sigma(x[:600], x[600:])
    three = _oos_sigma(stacked[:600], stacked[600:])
    assert 0.8 < (one / three) ** 2 < 1.15, (one, three)


@pytest.mark.parametrize("seed", [1, 2])
def test_montage_drop_detected_well_inside_the_single_derivation_bound(seed):
    case = cases.Case("drop60-3ch", drop=0.6, noise_scale=0.5, duration_s=1000, channels=3)
    r = run_case(case, seed, DetectorSettings())
    n_star_s = bounds.n_star_sweeps(r["sigma_a"], case.drop,
                                    bounds.arl0_sweeps(case.rate_hz)) / case.rate_hz
    early = [t for t in r["fast_high"] if t < case.change_at_s]
    delays = [t - case.change_at_s for t in r["fast_high"] if t >= case.change_at_s]
    assert not early and delays, r["fast_high"]
    assert delays[0] <= 0.8 * n_star_s, (delays[0], n_star_s)
    assert r["sigma_fast"] < r["sigma_a"]
    assert r["evidence_ok"]


def test_no_false_alarm_on_stable_montage_cases():
    for seed in (1, 2):
        case = cases.Case("stable-3ch", change_at_s=None, duration_s=1800, noise_scale=0.5,
                          channels=3)
        assert run_case(case, seed, DetectorSettings())["fast_high"] == []

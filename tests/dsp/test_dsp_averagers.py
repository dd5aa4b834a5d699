import numpy as np
import pytest

from appliance.dsp.averagers import (
    CumulativeAverager,
    ExponentialAverager,
    MovingAverager,
    WeightedAverager,
)
from appliance.dsp.quality import residual_noise_uv

C, T = 3, 50


def _batches(rng, x):
    i = 0
    while i < len(x):
        k = int(rng.integers(0, 9))  # includes empty batches
        yield x[i:i + k]
        i += k


def test_cumulative_matches_numpy(rng):
    x = rng.normal(size=(101, C, T))
    avg = CumulativeAverager(C, T)
    for b in _batches(rng, x):
        avg.add(b)
    assert avg.n_sweeps == 101
    np.testing.assert_allclose(avg.average, x.mean(axis=0), rtol=0, atol=1e-12)
    odd, even = avg.halves()
    np.testing.assert_allclose(odd, x[0::2].mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(even, x[1::2].mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(avg.plus_minus, (odd - even) / 2, atol=1e-12)
    np.testing.assert_allclose(avg.noise_var, x.var(axis=0, ddof=1) / 101, rtol=1e-9)
    np.testing.assert_allclose(avg.n_effective, 101.0)


def test_moving_window_is_the_last_n_sweeps(rng):
    n = 16
    x = rng.normal(size=(300, C, T)) + 5.0
    avg = MovingAverager(n, C, T)
    seen = 0
    for b in list(_batches(rng, x)) + [x[:40]]:  # the last batch is longer than the window
        avg.add(b)
        seen += len(b)
        stream = np.concatenate([x, x[:40]])[:seen]
        last = stream[-n:]
        assert avg.n_sweeps == len(last)
        if len(last):
            np.testing.assert_allclose(avg.average, last.mean(axis=0), atol=1e-10)
    idx = np.arange(seen)[-n:]
    odd, even = avg.halves()
    np.testing.assert_allclose(odd, stream[idx[idx % 2 == 0]].mean(axis=0), atol=1e-10)
    np.testing.assert_allclose(even, stream[idx[idx % 2 == 1]].mean(axis=0), atol=1e-10)
    np.testing.assert_allclose(avg.noise_var, last.var(axis=0, ddof=1) / n, rtol=1e-6)


def test_exponential_weights_and_the_recursion(rng):
    alpha = 0.1
    x = rng.normal(size=(200, C, T))
    avg = ExponentialAverager(alpha, C, T)
    for b in _batches(rng, x[:5]):
        avg.add(b)
    # early on: weights (1 - alpha)^age, normalised (no bias toward the first sweep)
    w = (1 - alpha) ** np.arange(4, -1, -1)
    np.testing.assert_allclose(avg.average, np.einsum("k,kct->ct", w, x[:5]) / w.sum(), atol=1e-12)
    for b in _batches(rng, x[5:]):
        avg.add(b)
    ref = x[0].copy()
    for s in x[1:]:
        ref = (1 - alpha) * ref + alpha * s
    # later it is the textbook recursion (they differ by O((1 - alpha)^n))
    np.testing.assert_allclose(avg.average, ref, atol=1e-8)
    assert avg.n_effective == pytest.approx((2 - alpha) / alpha, rel=1e-3)


def test_weighted_matches_inverse_block_variance_reference(rng):
    bs = 10
    x = rng.normal(size=(47, C, T)) * rng.uniform(0.5, 5, size=(47, 1, 1))
    avg = WeightedAverager(bs, C, T)
    for b in _batches(rng, x):
        avg.add(b)
    assert avg.n_sweeps == 40 and avg.pending == 7
    blocks = x[:40].reshape(4, bs, C, T)
    w = 1.0 / blocks.var(axis=1, ddof=1).mean(axis=-1)  # (4, C)
    ref = np.einsum("bc,bkct->ct", w, blocks) / (bs * w.sum(axis=0))[:, None]
    np.testing.assert_allclose(avg.average, ref, atol=1e-10)


def test_weighted_lowers_residual_noise_when_noise_is_not_stationary(rng):
    t = np.linspace(0, 1, T)
    truth = np.sin(2 * np.pi * 3 * t) * np.ones((C, 1))
    sd = np.repeat(rng.choice([1.0, 15.0], size=20, p=[0.7, 0.3]), 20)  # 400 sweeps, blocks
    x = truth + rng.normal(size=(400, C, T)) * sd[:, None, None]
    plain, weighted = CumulativeAverager(C, T), WeightedAverager(20, C, T)
    plain.add(x)
    weighted.add(x)
    err_plain = np.sqrt(np.mean((plain.average - truth) ** 2, axis=-1))
    err_weighted = np.sqrt(np.mean((weighted.average - truth) ** 2, axis=-1))
    assert np.all(err_weighted < 0.5 * err_plain)
    rn_plain = residual_noise_uv(plain.plus_minus)
    rn_weighted = residual_noise_uv(weighted.plus_minus)
    assert np.all(rn_weighted < 0.5 * rn_plain)
    # the ± estimate and the per-point noise variance both track the real error
    np.testing.assert_allclose(rn_weighted, err_weighted, rtol=0.35)
    np.testing.assert_allclose(np.sqrt(weighted.noise_var.mean(axis=-1)), err_weighted, rtol=0.35)


@pytest.mark.parametrize("make", [
    lambda: CumulativeAverager(C, T), lambda: MovingAverager(4, C, T),
    lambda: ExponentialAverager(0.2, C, T), lambda: WeightedAverager(4, C, T)])
def test_empty_is_nan_of_the_right_shape_and_reset_empties(rng, make):
    avg = make()
    assert avg.average.shape == (C, T) and avg.average.dtype == np.float64
    assert np.isnan(avg.average).all() and avg.n_sweeps == 0
    avg.add(rng.normal(size=(8, C, T)))
    assert avg.n_sweeps == 8 or isinstance(avg, MovingAverager)
    assert np.isfinite(avg.average).all()
    avg.reset()
    assert avg.n_sweeps == 0 and np.isnan(avg.average).all()
    with pytest.raises(ValueError, match="n_times=50"):
        avg.add(np.zeros((1, C, T + 1)))

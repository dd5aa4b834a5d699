import numpy as np
import pytest
from scipy import signal

from appliance.dsp import quality
from appliance.dsp.averagers import (
    CumulativeAverager,
    ExponentialAverager,
    MovingAverager,
    WeightedAverager,
)
from appliance.dsp.epochs import times_ms

FS = 4000.0
PRE, POST = 40, 200
T_MS = times_ms(PRE, POST, FS)
WINDOW = slice(PRE, PRE + POST)


def _ssep_sweeps(rng, wave, n, noise_sd=6.0, coloured=True):
    """Channel 0: N20/P25 under EEG-like noise; channel 1: the same noise, no response."""
    noise = rng.normal(0, 1, size=(n, 2, PRE + POST))
    if coloured:
        noise = signal.sosfilt(signal.butter(2, [30, 1000], "bandpass", fs=FS, output="sos"),
                               noise, axis=-1)
    noise *= noise_sd / noise.std()
    response = wave(T_MS, 19.37, -2.5, 1.2) + wave(T_MS, 25.0, 2.0, 2.0)
    noise[:, 0] += response
    return noise, response


def test_fsp_above_3_1_with_a_response_and_about_1_without(rng, wave):
    sweeps, _ = _ssep_sweeps(rng, wave, 500)
    avg = CumulativeAverager(2, PRE + POST)
    avg.add(sweeps)
    sp = quality.single_point_var(sweeps, PRE + 80)
    f = quality.fsp(avg.average, sp, avg.n_sweeps, WINDOW)
    assert f.dtype == np.float64 and f.shape == (2,)
    assert f[0] >= 3.1
    assert 0.4 < f[1] < 2.0
    # the averager's own single-point noise gives the same number
    q = quality.measure(avg, WINDOW, sp_index=PRE + 80)
    np.testing.assert_allclose(q.fsp, f, rtol=1e-9)


@pytest.mark.parametrize("sp", ["point", "window"])
def test_fsp_over_seeds_rarely_passes_without_a_response(wave, sp):
    passes = []
    for seed in range(20):
        sweeps, _ = _ssep_sweeps(np.random.default_rng(seed), wave, 300)
        avg = CumulativeAverager(2, PRE + POST)
        avg.add(sweeps)
        q = quality.measure(avg, WINDOW, sp_index=WINDOW if sp == "window" else None)
        passes.append(q.fsp >= 3.1)
        if sp == "window":
            f = quality.fsp(avg.average, quality.single_point_var(sweeps, WINDOW), 300, WINDOW)
            np.testing.assert_allclose(q.fsp, f, rtol=1e-9)
    passes = np.array(passes)
    assert passes[:, 0].mean() >= 0.9 and passes[:, 1].mean() <= 0.1


@pytest.mark.parametrize("coloured", [False, True])
def test_residual_noise_matches_sd_over_sqrt_n(rng, wave, coloured):
    n = 400
    sweeps, _ = _ssep_sweeps(rng, wave, n, noise_sd=10.0, coloured=coloured)
    expected = 10.0 / np.sqrt(n)
    rn = quality.residual_noise_uv(sweeps, WINDOW)
    assert rn.shape == (2,)
    np.testing.assert_allclose(rn, expected, rtol=0.2)
    avg = CumulativeAverager(2, PRE + POST)
    avg.add(sweeps)
    np.testing.assert_allclose(quality.residual_noise_uv(avg.plus_minus, WINDOW), rn, rtol=1e-9)


def test_snr_and_split_half_tell_response_from_noise(rng, wave):
    sweeps, _ = _ssep_sweeps(rng, wave, 500)
    q = quality.measure(_avg(sweeps), WINDOW)
    assert q.split_half_r[0] > 0.6 and abs(q.split_half_r[1]) < 0.5
    assert q.snr_db[0] > q.snr_db[1] + 3.0
    assert abs(q.snr_db[1]) < 3.0  # nothing but noise: about 0 dB


def _avg(sweeps):
    avg = CumulativeAverager(sweeps.shape[1], sweeps.shape[2])
    avg.add(sweeps)
    return avg


def test_measure_on_weighted_averager_and_empty_inputs(rng, wave):
    sweeps, _ = _ssep_sweeps(rng, wave, 500)
    w = WeightedAverager(25, 2, PRE + POST)
    w.add(sweeps)
    q = quality.measure(w, WINDOW)
    assert q.fsp[0] >= 3.1 and q.fsp[1] < 2.0
    empty = quality.measure(CumulativeAverager(2, PRE + POST), WINDOW)
    for v in (empty.fsp, empty.residual_noise_uv, empty.snr_db, empty.split_half_r):
        assert v.dtype == np.float64 and v.shape == (2,) and np.isnan(v).all()
    flat = quality.split_half_r(np.zeros((1, 10)), np.ones((1, 10)))
    assert np.isnan(flat).all()


@pytest.mark.parametrize("make", [
    lambda c, t: CumulativeAverager(c, t), lambda c, t: MovingAverager(200, c, t),
    lambda c, t: ExponentialAverager(0.01, c, t), lambda c, t: WeightedAverager(20, c, t)])
def test_every_averager_is_calibrated_on_pure_noise(make):
    # Fsp ~ 1, residual noise and per-point noise ~ sd / sqrt(n_effective), whatever the weights
    fsps, rns, nvs = [], [], []
    for seed in range(5):
        x = np.random.default_rng(seed).normal(0, 3.0, size=(600, 2, 200))
        avg = make(2, 200)
        avg.add(x)
        q = quality.measure(avg, sp_index=slice(None))
        expected = 3.0 / np.sqrt(avg.n_effective)
        fsps.append(q.fsp)
        rns.append(q.residual_noise_uv / expected)
        nvs.append(np.sqrt(avg.noise_var.mean(axis=-1)) / expected)
    assert 0.8 < np.mean(fsps) < 1.25 and np.max(fsps) < 1.6
    np.testing.assert_allclose(np.mean(rns), 1.0, atol=0.1)
    np.testing.assert_allclose(np.mean(nvs), 1.0, atol=0.03)

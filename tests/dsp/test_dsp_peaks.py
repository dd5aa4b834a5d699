import math

import numpy as np
import pytest

from appliance.dsp import peaks
from appliance.dsp.epochs import times_ms
from appliance.dsp.peaks import COMPONENTS, find_components, find_peak

FS = 4000.0  # 0.25 ms grid
T_MS = times_ms(40, 200, FS)


@pytest.mark.parametrize("latency_ms", [19.37, 19.5, 19.62, 20.0, 21.13])
def test_n20_latency_is_interpolated_between_samples(wave, latency_ms):
    trace = wave(T_MS, latency_ms, -2.0, 1.5)
    p = find_peak(trace, T_MS, (15, 25), peaks.NEGATIVE, noise_uv=0.1, name="N20")
    assert p.found and p.name == "N20"
    assert abs(p.latency_ms - latency_ms) < 0.05
    assert p.amplitude_uv == pytest.approx(-2.0, rel=0.02)
    assert p.confidence > 0.95


@pytest.mark.parametrize("fit_ms", [0.0, 0.75])
def test_n20_latency_without_noise_for_both_fits(wave, fit_ms):
    for latency_ms in np.linspace(19.0, 20.0, 13):
        p = find_peak(wave(T_MS, latency_ms, -2.0, 1.5), T_MS, (15, 25), peaks.NEGATIVE,
                      noise_uv=0.1, fit_ms=fit_ms)
        assert abs(p.latency_ms - latency_ms) < 0.01


def test_least_squares_fit_halves_latency_scatter_in_noise(rng, wave):
    err = {0.0: [], 0.75: []}
    for _ in range(200):
        trace = wave(T_MS, 19.37, -2.0, 1.5) + rng.normal(0, 0.05, size=T_MS.shape)
        for fit_ms in err:
            p = find_peak(trace, T_MS, (15, 25), peaks.NEGATIVE, noise_uv=0.05, fit_ms=fit_ms)
            assert p.found
            err[fit_ms].append(p.latency_ms - 19.37)
    sd3, sd_ls = np.std(err[0.0]), np.std(err[0.75])
    assert sd_ls < 0.5 * sd3 and sd_ls < 0.1


def test_pure_noise_is_not_a_peak(rng):
    misses = 0
    for _ in range(50):
        noise = rng.normal(0, 1.0, size=T_MS.shape)
        p = find_peak(noise, T_MS, (15, 25), peaks.NEGATIVE, noise_uv=1.0)
        assert isinstance(p.latency_ms, float) and isinstance(p.amplitude_uv, float)
        if not p.found:
            assert math.isnan(p.latency_ms) and math.isnan(p.amplitude_uv)
            assert p.confidence < 0.5
            misses += 1
    assert misses >= 45


def test_peak_on_window_edge_is_a_slope_not_a_peak(wave):
    trace = wave(T_MS, 30.0, -5.0, 3.0)  # still falling at the end of the N20 window
    p = find_peak(trace, T_MS, (15, 25), peaks.NEGATIVE, noise_uv=0.01)
    assert not p.found and math.isnan(p.latency_ms)
    assert p.to_json() == {"latency_ms": None, "amplitude_uv": None, "confidence": 0.0}


def test_named_components_of_ssep_and_baep(wave):
    ssep = wave(T_MS, 19.6, -2.0, 1.2) + wave(T_MS, 25.4, 1.5, 2.0)
    got = find_components(ssep, T_MS, ["N20", "P25"], noise_uv=0.05)
    assert abs(got["N20"].latency_ms - 19.6) < 0.05 and got["N20"].amplitude_uv < 0
    assert abs(got["P25"].latency_ms - 25.4) < 0.2 and got["P25"].amplitude_uv > 0
    t = times_ms(32, 192, 16_000.0)  # BAEP -2..+12 ms at 16 kHz
    baep = sum(wave(t, lat, 0.4, 0.25) for lat in (1.6, 3.7, 5.6))
    got = find_components(baep, t, ["I", "III", COMPONENTS["V"]], noise_uv=0.02)
    assert [round(got[k].latency_ms, 1) for k in ("I", "III", "V")] == [1.6, 3.7, 5.6]


def test_tcmep_onset_peak_to_peak_and_area(wave):
    t = times_ms(40, 400, FS)  # -10 .. 100 ms
    mep = wave(t, 28.0, 300.0, 1.5) - wave(t, 32.0, 200.0, 2.0)
    fine_t = np.linspace(10, 80, 100_001)
    fine = wave(fine_t, 28.0, 300.0, 1.5) - wave(fine_t, 32.0, 200.0, 2.0)
    assert peaks.peak_to_peak(mep, t, (10, 80)) == pytest.approx(np.ptp(fine), rel=0.01)
    onset = peaks.onset_latency_ms(mep, t, (10, 80), threshold_uv=20.0)
    expected = 28.0 - 1.5 * math.sqrt(2 * math.log(300 / 20))  # where the rise reaches 20 µV
    assert onset == pytest.approx(expected, abs=0.05)
    a = peaks.area(mep, t, (10, 80))
    assert a == pytest.approx(np.abs(fine).mean() * 70.0, rel=0.01)
    assert math.isnan(peaks.onset_latency_ms(mep * 0.01, t, (10, 80), 20.0))
    assert math.isnan(peaks.peak_to_peak(mep, t, (200, 300)))

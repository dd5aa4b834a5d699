"""The simulated patient: reproducible, continuous, realistic noise, correct evoked responses.
Signal checks use plain numpy (FFT band-pass, averaging), independent of appliance.dsp."""

from __future__ import annotations

import numpy as np
import pytest
from sim_helpers import CHANNELS, SITES

from appliance.errors import ConfigError
from appliance.frontend.simulated.patient import Patient
from appliance.frontend.simulated.responses import SSEP_UPPER, gaussian_wave, place_of
from appliance.frontend.simulated.scenario import from_dict
from appliance.settings.analysis import SiteSettings

FS = 4000


def band(x: np.ndarray, fs: float, lo: float, hi: float) -> np.ndarray:
    X = np.fft.rfft(x, axis=-1)
    f = np.fft.rfftfreq(x.shape[-1], 1.0 / fs)
    X[..., (f < lo) | (f > hi)] = 0
    return np.fft.irfft(X, n=x.shape[-1], axis=-1)


def psd(x: np.ndarray, fs: float, nseg: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch-style mean periodogram with a Hann window (numpy only)."""
    k = len(x) // nseg
    segs = x[: k * nseg].reshape(k, nseg)
    segs = segs - segs.mean(axis=1, keepdims=True)
    w = np.hanning(nseg)
    p = np.mean(np.abs(np.fft.rfft(segs * w, axis=1)) ** 2, axis=0) / (fs * np.sum(w * w))
    return np.fft.rfftfreq(nseg, 1.0 / fs), 2 * p


def test_same_seed_same_stream_other_seed_other_stream():
    a = Patient(CHANNELS, 1000, SITES, seed=7).generate(5000)
    b = Patient(CHANNELS, 1000, SITES, seed=7).generate(5000)
    c = Patient(CHANNELS, 1000, SITES, seed=8).generate(5000)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.allclose(a[0], c[0])


def test_stream_is_continuous_whatever_the_block_size():
    whole_uv, whole_tr = Patient(CHANNELS, 2000, SITES, seed=3).generate(20000)
    p = Patient(CHANNELS, 2000, SITES, seed=3)
    parts = [p.generate(n) for n in (1, 999, 32, 7000, 11968)]
    assert p.sample == 20000 and p.t_s == pytest.approx(10.0)
    assert np.allclose(np.hstack([u for u, _ in parts]), whole_uv, atol=1e-9)
    assert np.array_equal(np.concatenate([t for _, t in parts]), whole_tr)


def test_eeg_rms_and_one_over_f_slope_are_realistic():
    p = Patient(("C4'-Fz", "Erb-L"), FS, (), seed=2)
    uv, _ = p.generate(FS * 60)
    scalp = band(uv[0], FS, 1.0, 100.0)
    assert 10.0 <= scalp.std() <= 30.0  # anaesthetised scalp EEG, µV RMS
    f, pw = psd(uv[0], FS, 4 * FS)
    sel = (f >= 2) & (f <= 40)
    slope = np.polyfit(np.log10(f[sel]), np.log10(pw[sel]), 1)[0]
    assert -2.2 <= slope <= -0.8  # 1/f-like
    # Erb's point: little EEG but muscle noise in the SSEP band
    assert 1.0 <= band(uv[1], FS, 30.0, 1000.0).std() <= 6.0


@pytest.mark.parametrize("mains_hz", [50, 60])
def test_mains_peak_at_the_configured_frequency(mains_hz):
    sc = from_dict({"patient": {"mains_hz": mains_hz, "mains_uv": 5.0}})
    uv, _ = Patient(("C3'-Fz",), FS, (), scenario=sc, seed=4).generate(FS * 8)
    f, pw = psd(uv[0], FS, 2 * FS)
    near = (f > 20) & (f < 200)
    assert f[near][np.argmax(pw[near])] == pytest.approx(mains_hz, abs=0.5)
    k = np.argmin(np.abs(f - mains_hz))
    floor = np.median(pw[(f > mains_hz + 5) & (f < mains_hz + 40)])
    assert pw[k] > 20 * floor
    third = np.argmin(np.abs(f - 3 * mains_hz))
    assert pw[third] > 10 * np.median(pw[(f > 3 * mains_hz + 5) & (f < 3 * mains_hz + 40)])


def test_averaged_ssep_recovers_true_n20_latency_and_amplitude():
    ch = ("C4'-Fz", "Cv5-Fz", "Erb-L")
    p = Patient(ch, FS, (SiteSettings("L median", "ssep_upper", ch, 0, 9.7),), seed=1)
    uv, trig = p.generate(FS * 200)
    x = band(uv, FS, 30.0, 1000.0)
    pre, post = int(0.01 * FS), int(0.05 * FS)
    stim = np.flatnonzero(trig & 1)
    stim = stim[(stim > pre) & (stim + post < x.shape[1])]
    assert len(stim) > 1900
    assert [e.sample for e in p.events if e.trigger][: len(stim)] == list(stim)
    avg = np.mean([x[:, s - pre: s + post] for s in stim], axis=0)
    t_ms = np.arange(-pre, post) * 1000.0 / FS
    # the truth drawn at the same stimuli through the same filter: what a perfect average of
    # noise-free, jitter-free sweeps shows (every component of the site on each channel)
    ref = np.zeros_like(uv)
    for _, comp, chan in p.components("L median"):
        truth = p.truth("L median", comp, 100.0)
        o, w = gaussian_wave(FS, truth.latency_ms, truth.amplitude_uv, truth.polarity,
                             SSEP_UPPER[comp].width_ms)
        for s in stim:
            ref[ch.index(chan), s + o: s + o + len(w)] += w
    raw_avg = np.mean([ref[:, s - pre: s + post] for s in stim], axis=0)
    ref = band(ref, FS, 30.0, 1000.0)
    ref_avg = np.mean([ref[:, s - pre: s + post] for s in stim], axis=0)
    for ci, comp, window in ((0, "N20", (16, 23)), (2, "N9", (7, 12)), (1, "N13", (11, 16))):
        truth = p.truth("L median", comp, 100.0)
        sel = (t_ms > window[0]) & (t_ms < window[1])
        k = np.argmax(truth.polarity * avg[ci][sel])
        kr = np.argmax(truth.polarity * ref_avg[ci][sel])
        assert t_ms[sel][k] == pytest.approx(truth.latency_ms, abs=0.4), comp
        assert abs(avg[ci][sel][k]) == pytest.approx(abs(ref_avg[ci][sel][kr]), rel=0.15), comp
        # the truth is the unfiltered peak: neighbouring components barely touch it
        assert np.max(truth.polarity * raw_avg[ci][sel]) == pytest.approx(truth.amplitude_uv,
                                                                          rel=0.03), comp


def test_baep_waves_at_8ksps():
    ch = ("Cz-A1",)
    fs = 8000
    p = Patient(ch, fs, (SiteSettings("L ear", "baep", ch, 0, 43.1),), seed=5)
    uv, trig = p.generate(fs * 50)
    x = band(uv, fs, 100.0, 3000.0)[0]
    stim = np.flatnonzero(trig & 1)[:-2]
    avg = np.mean([x[s: s + int(0.012 * fs)] for s in stim], axis=0)
    t_ms = np.arange(len(avg)) * 1000.0 / fs
    for wave in ("I", "III", "V"):
        truth = p.truth("L ear", wave, 10.0)
        assert 0.3 <= truth.amplitude_uv <= 0.5
        sel = np.abs(t_ms - truth.latency_ms) < 0.6
        assert t_ms[sel][np.argmax(avg[sel])] == pytest.approx(truth.latency_ms, abs=0.26), wave


def test_tcmep_is_large_and_varies_from_trial_to_trial():
    ch = ("APB-L", "TA-L", "C3'-Fz")
    p = Patient(ch, FS, (SiteSettings("L APB", "tcmep", ("APB-L",), 0, 2.0),), seed=6)
    uv, trig = p.generate(FS * 60)
    stim = np.flatnonzero(trig & 1)[:-1]
    p2p = np.array([np.ptp(uv[0, s + int(0.015 * FS): s + int(0.06 * FS)]) for s in stim])
    truth = p.truth("L APB", "MEP", 10.0)
    assert 100.0 <= truth.amplitude_uv <= 2000.0 and 20.0 <= truth.latency_ms <= 35.0
    assert np.median(p2p) == pytest.approx(truth.amplitude_uv, rel=0.35)
    assert 0.2 <= p2p.std() / p2p.mean() <= 0.8  # strong trial-to-trial variability
    assert [c for _, c, chan in p.components() if chan == "TA-L"] == []  # restricted by channels


def test_channel_mapping_follows_names_and_sides():
    assert place_of("C4'-Fz").kind == "scalp" and place_of("C4'-Fz").side == "R"
    assert place_of("Erb-L").kind == "erb" and place_of("Erb-L").side == "L"
    assert place_of("Cv5-Fz").kind == "cervical"
    assert place_of("Cz-A1").ear == "L"
    p = Patient(CHANNELS, 1000, [SiteSettings(s.name, s.modality, (), s.trigger_bit, s.rate_hz)
                                 for s in SITES], seed=1)
    got = set(p.components("L median"))
    assert ("L median", "N20", "C4'-Fz") in got and ("L median", "N9", "Erb-L") in got
    assert not any(ch in ("C3'-Fz", "Erb-R") for _, _, ch in got)  # ipsilateral / other side
    tib = {(c, ch) for _, c, ch in p.components("L tibial")}
    assert ("P37", "Cz'-Fz") in tib and ("N8", "Pf-L") in tib and ("N8", "Pf-R") not in tib
    ears = Patient(("Cz-A1", "Cz-A2"), 8000, (SiteSettings("L ear", "baep", (), 0, 11.1),))
    assert {c for _, c, ch in ears.components() if ch == "Cz-A1"} == {"I", "III", "V", "Vn"}
    assert {c for _, c, ch in ears.components() if ch == "Cz-A2"} == {"III", "V", "Vn"}
    assert ears.truth("L ear", "V", 1.0, channel="Cz-A2").amplitude_uv == pytest.approx(0.4)
    # an unrecognised name a site lists gets the main response
    q = Patient(("ch1",), 1000, (SiteSettings("L median", "ssep_upper", ("ch1",), 0, 4.7),))
    assert {c for _, c, _ in q.components()} == {"N20", "P25"}


def test_stimuli_interleave_and_never_share_a_sample():
    sites = [SiteSettings(f"S{i}", "ssep_upper", (), i, r) for i, r in enumerate((4.7, 4.7, 5.1))]
    sc = from_dict({"patient": {"stim_jitter_ms": 20.0}})
    p = Patient(CHANNELS, 500, sites, scenario=sc, seed=9)
    _, trig = p.generate(500 * 120)
    samples = [e.sample for e in p.events]
    assert len(samples) == len(set(samples))
    assert all(bin(int(v)).count("1") <= 1 for v in trig)
    for i, s in enumerate(sites):
        n = np.count_nonzero(trig & (1 << i))
        assert n == pytest.approx(s.rate_hz * 120, abs=2)
    a = np.array([e.t_s for e in p.events if e.site == "S0"])
    assert np.all(np.abs(np.diff(a) - 1 / 4.7) <= 0.040 + 0.004)  # ±20 ms jitter each


def test_truth_of_unknown_component_names_it():
    p = Patient(CHANNELS, 1000, SITES)
    with pytest.raises(ConfigError, match="N21"):
        p.truth("L median", "N21", 1.0)
    with pytest.raises(ConfigError, match="L medain"):
        p.truth("L medain", "N20", 1.0)


def test_mains_frequency_wanders_a_little_like_a_real_grid():
    sc = from_dict({"patient": {"mains_uv": 50.0, "eeg_rms_uv": 1.0}})
    fs = 1000
    uv, _ = Patient(("C3'-Fz",), fs, (), scenario=sc, seed=2).generate(fs * 120)
    x = uv[0] - uv[0].mean()
    t = np.arange(len(x)) / fs
    z = (x * np.exp(-2j * np.pi * 50.0 * t)).reshape(120, fs).mean(axis=1)  # 1-s phasors
    dphi = np.diff(np.unwrap(np.angle(z)))
    f_dev_hz = dphi / (2 * np.pi)
    assert np.all(np.abs(f_dev_hz) < 0.1) and f_dev_hz.std() > 0.001


def test_zero_samples_is_an_empty_block():
    p = Patient(CHANNELS, 1000, SITES)
    uv, trig = p.generate(0)
    assert uv.shape == (8, 0) and trig.shape == (0,) and p.sample == 0


def test_faster_stimulation_costs_cortical_amplitude_only():
    def n20_n9(rate_hz: float) -> tuple[float, float]:
        site = SiteSettings("L median", "ssep_upper", (), 0, rate_hz)
        p = Patient(CHANNELS, 1000, (site,))
        t = p.truth
        return t("L median", "N20", 1.0).amplitude_uv, t("L median", "N9", 1.0).amplitude_uv

    n20_1, n9_1 = n20_n9(1.05)
    n20_2, _ = n20_n9(2.79)
    n20_5, n9_5 = n20_n9(5.69)
    assert n20_n9(4.7)[0] == pytest.approx(SSEP_UPPER["N20"].amplitude_uv)
    assert n20_2 / n20_1 == pytest.approx(1 - 0.279, abs=0.005)  # clinical.md
    assert n20_5 / n20_1 == pytest.approx(1 - 0.488, abs=0.005)
    assert n9_1 == n9_5  # the nerve does not tire at these rates

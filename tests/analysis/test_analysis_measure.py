"""Measurement: N20 latency and amplitude against known ground truth, Fsp against the patient
simulator (needs sweeps, never claims a response that is not there), tcMEP single sweeps."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_helpers import N9, N20, P25, SynthSite, run_monitor, synth_stream, upper_cfg

from appliance.analysis.monitor import Monitor
from appliance.frontend.block import SampleBlock
from appliance.frontend.simulated import scenario
from appliance.frontend.simulated.patient import Patient

FS = 4000
CH = ["C4'-Fz", "Cv5-Fz", "Erb-L"]
SITE = {"name": "L median", "modality": "ssep_upper", "channels": CH}


def _trends(out: list[dict], channel: str) -> list[dict]:
    return [d for d in out if d["type"] == "trend" and d["channel"] == channel]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_analysis_n20_latency_and_amplitude_within_02ms_and_10pct(seed):
    """Bias check: with little broadband noise (plus 5 µV mains, which the notch and the
    averaging remove) Fsp passes 3.1 at the first update, and from there on N20 is within
    0.2 ms and 10 %. With realistic noise the error at Fsp = 3.1 is larger (see below)."""
    cortical = [(N20["latency_ms"], N20["amplitude_uv"], N20["sd_ms"]),
                (P25["latency_ms"], P25["amplitude_uv"], P25["sd_ms"])]
    site = SynthSite(0, 4.7, {"C4'-Fz": cortical, "Erb-L": [(N9["latency_ms"],
                     N9["amplitude_uv"], N9["sd_ms"])], "Cv5-Fz": [(13.3, -2.0, 1.0)]})
    data, trig = synth_stream(CH, FS, 40.0, [site], noise_uv=1.0, mains_uv=5.0, seed=seed)
    out = run_monitor(Monitor(upper_cfg(CH, [SITE], FS)), data, trig, FS)
    trends = _trends(out, "C4'-Fz")
    present = [d for d in trends if d["fsp"] >= 3.1]
    assert present and present[0] is trends[0], [d["fsp"] for d in trends]
    for d in present:  # every update from the one where Fsp reached 3.1
        n20 = d["components"]["N20"]
        assert n20["latency_ms"] == pytest.approx(N20["latency_ms"], abs=0.2), d
        assert n20["amplitude_uv"] == pytest.approx(N20["amplitude_uv"], rel=0.10), d
        assert d["filter"]["phase"] == "zero"
    erb = _trends(out, "Erb-L")[-1]["components"]["N9"]
    assert erb["latency_ms"] == pytest.approx(N9["latency_ms"], abs=0.2)
    # N9 is narrow (SD 0.7 ms): the 1 kHz low-pass takes ~10 % of its height, by design
    assert erb["amplitude_uv"] == pytest.approx(N9["amplitude_uv"], rel=0.15)


def _patient_run(duration_s: float, patient_scenario: dict, seed: int = 2) -> list[dict]:
    cfg = upper_cfg(CH, [{**SITE, "averaging": "cumulative", "update_sweeps": 50}], FS)
    p = Patient(CH, FS, cfg.analysis.sites, scenario=scenario.from_dict(patient_scenario),
                seed=seed)
    mon = Monitor(cfg)
    out, n, step = [], 0, 800
    while n < duration_s * FS:
        uv, trig = p.generate(step)
        blk = SampleBlock(uv, trig, np.zeros(uv.shape, bool), np.zeros(len(CH), bool), n, FS, 0)
        out += [{"type": "condition", **o.to_json()} for o in mon.push(blk)]
        n += step
    return out, p


def test_analysis_fsp_on_simulated_patient_needs_sweeps_then_finds_n20():
    out, p = _patient_run(160.0, {})
    trends = _trends(out, "C4'-Fz")
    present = [d for d in trends if d["fsp"] >= 3.1]
    assert present, [(d["n_sweeps"], d["fsp"]) for d in trends]
    first = present[0]
    # clinical practice needs a few hundred sweeps for a cortical SSEP under anaesthesia
    assert 100 <= first["n_sweeps"] <= 750, first
    truth = p.truth("L median", "N20", first["t_s"], channel="C4'-Fz")
    n20 = first["components"]["N20"]
    assert n20["latency_ms"] is not None
    # at the threshold the average is still noisy: the error stays within a few noise RMS
    assert abs(n20["latency_ms"] - truth.latency_ms) < 1.0
    assert abs(-n20["amplitude_uv"] - truth.amplitude_uv) < 4 * first["residual_noise_uv"]


def test_analysis_no_response_never_reaches_fsp_nor_baseline():
    # the stimulator triggers but the patient is not stimulated: nothing but noise is averaged
    sc = {"event": [{"type": "stimulus_loss", "at_s": 0.0, "site": "L median",
                     "mode": "no_response"}]}
    out, _ = _patient_run(120.0, sc)
    trends = _trends(out, "C4'-Fz")
    assert len(trends) >= 10 and trends[-1]["n_sweeps"] >= 500
    assert max(d["fsp"] for d in trends) < 3.1
    assert not [d for d in out if d["type"] == "baseline" and d["channel"] == "C4'-Fz"]
    # ... and the monitor says so: this channel cannot be judged
    said = [d for d in out if d["type"] == "condition" and d["active"]
            and d["id"] == "ssep.no_baseline:L median:C4'-Fz"]
    assert said and said[0]["kind"] == "technical" and said[0]["priority"] == "low"


# -- tcMEP: single sweeps, never averaged ---------------------------------------------------

MEP_ONSET_MS = 22.0


def _mep_stream(scales: list[float], fs: float = 8000.0, seed: int = 4):
    """One muscle channel (APB-R), a stimulus every 2 s with a 600 µV p2p polyphasic MEP."""
    rng = np.random.default_rng(seed)
    n = int((len(scales) * 2.0 + 0.5) * fs)
    data = rng.normal(0.0, 3.0, (1, n))
    trig = np.zeros(n, np.uint16)
    t_ms = np.arange(int(0.03 * fs)) / fs * 1e3
    # a 15 ms, 3-phase burst: Hann-windowed 100 Hz sine
    burst = np.sin(2 * np.pi * 0.1 * t_ms[t_ms < 15]) * np.hanning((t_ms < 15).sum())
    burst *= 600.0 / (burst.max() - burst.min())
    for k, s in enumerate(scales):
        i0 = int((0.3 + 2.0 * k) * fs)
        trig[i0] = 1 << 2
        j = i0 + int(MEP_ONSET_MS * fs / 1e3)
        data[0, j:j + len(burst)] += s * burst
    return data, trig, burst


def _mep_cfg(case_type: str = "spine", fs: int = 8000):
    from appliance import config

    return config.from_dict({
        "frontend": {"channels": ["APB-R"], "sample_rate_hz": fs},
        "analysis": {"case_type": case_type, "sites": [
            {"name": "tcMEP R hand", "modality": "tcmep", "channels": ["APB-R"],
             "trigger_bit": 2, "rate_hz": 0.5}]},
    })


def test_analysis_tcmep_single_sweep_onset_amplitude_area():
    data, trig, burst = _mep_stream([1.0] * 4)
    out = run_monitor(Monitor(_mep_cfg()), data, trig, 8000.0, block=128)
    trends = [d for d in out if d["type"] == "trend"]
    assert len(trends) == 4 and all(d["n_sweeps"] == 1 for d in trends)
    # the burst rises as a Hann window: the 20 µV onset threshold is crossed a little later
    onset_ms = MEP_ONSET_MS + np.flatnonzero(np.abs(burst) >= 20.0)[0] / 8.0
    for d in trends:
        mep = d["components"]["MEP"]
        # (zero-phase filtering smears the rise a little earlier, never before the true onset)
        assert MEP_ONSET_MS < mep["latency_ms"] == pytest.approx(onset_ms, abs=0.5), mep
        assert mep["amplitude_uv"] == pytest.approx(600.0, rel=0.10)
        assert mep["area_uv_ms"] > 1000.0
        assert d["peak_to_peak_uv"] == mep["amplitude_uv"]
    assert len([d for d in out if d["type"] == "waveform"]) == 4


def test_analysis_tcmep_pauses_between_runs_are_not_a_lost_stimulus():
    # two runs of 3 MEPs, 60 s apart: tcMEP is triggered by the team, never periodic
    data, trig, _ = _mep_stream([1.0] * 3)
    gap = np.zeros((1, 60 * 8000))
    data = np.concatenate([data, gap, data], axis=1)
    trig = np.concatenate([trig, np.zeros(60 * 8000, np.uint16), trig])
    out = run_monitor(Monitor(_mep_cfg()), data, trig, 8000.0, block=800)
    assert len([d for d in out if d["type"] == "trend"]) == 6
    assert not [d for d in out if d["type"] == "condition"]


@pytest.mark.parametrize("case_type, scale, fires", [
    ("spine", 0.1, True), ("spine", 0.4, False), ("cranial", 0.4, True), ("spine", 0.0, True),
])
def test_analysis_tcmep_criteria_by_case_type(case_type, scale, fires):
    # 3 good sweeps (the 3rd becomes the baseline), 3 changed, 3 good again
    scales = [1.0] * 3 + [scale] * 3 + [1.0] * 3
    data, trig, _ = _mep_stream(scales)
    out = run_monitor(Monitor(_mep_cfg(case_type)), data, trig, 8000.0, block=128)
    conds = [d for d in out if d["type"] == "condition"]
    if not fires:
        assert conds == []
        return
    raised = [c for c in conds if c["active"]]
    assert raised and all(c["priority"] == "high" for c in raised)
    assert raised[0]["id"].split(":")[0] in ("tcmep.amplitude", "tcmep.lost")
    assert 6.3 < raised[0]["t_s"] < 12.3  # within the changed sweeps, after two of them
    assert conds[-1]["active"] is False  # cleared once the responses came back


def test_analysis_decimation_keeps_peaks_in_place_and_rejects_alias_bands():
    from appliance.analysis.decimate import Decimator

    fs, q = 16000.0, 4
    t = np.arange(16000) / fs * 1e3  # ms
    peak = -1.6 * np.exp(-0.5 * ((t - 519.5) / 1.2) ** 2)
    tone = lambda f: np.sin(2 * np.pi * f * t / 1e3)  # noqa: E731
    x = np.stack([peak, tone(300.0), tone(3500.0)])
    whole, first = Decimator(q, 3).process(x, 0)
    # streamed in odd-sized blocks it is the same signal, sample for sample
    dec, parts, i = Decimator(q, 3), [], 0
    for n in [7, 250, 1, 1000, 3333] * 3:
        y, f = dec.process(x[:, i:i + n], i)
        assert f == first + sum(p.shape[1] for p in parts)
        parts.append(y)
        i += n
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole[:, :sum(
        p.shape[1] for p in parts)], atol=1e-12)
    t_out = q * (first + np.arange(whole.shape[1])) / fs * 1e3
    np.testing.assert_allclose(whole[0], -1.6 * np.exp(-0.5 * ((t_out - 519.5) / 1.2) ** 2),
                               atol=0.01)  # zero phase: same times, same height
    assert np.std(whole[1]) == pytest.approx(np.std(tone(300.0)), rel=0.02)
    assert np.std(whole[2]) < 0.1 * np.std(tone(3500.0))  # > 20 dB down


def test_analysis_n20_at_16ksps_through_decimation():
    fs = 16000
    cortical = [(N20["latency_ms"], N20["amplitude_uv"], N20["sd_ms"]),
                (P25["latency_ms"], P25["amplitude_uv"], P25["sd_ms"])]
    site = SynthSite(0, 4.7, {"C4'-Fz": cortical})
    data, trig = synth_stream(["C4'-Fz"], fs, 25.0, [site], noise_uv=1.0, mains_uv=5.0, seed=9)
    cfg = upper_cfg(["C4'-Fz"], [{"name": "L median", "modality": "ssep_upper",
                                  "channels": ["C4'-Fz"]}], fs)
    out = run_monitor(Monitor(cfg), data, trig, fs, block=1600)
    last = _trends(out, "C4'-Fz")[-1]
    assert last["filter"]["sweep_rate_hz"] == 4000.0
    n20 = last["components"]["N20"]
    assert n20["latency_ms"] == pytest.approx(N20["latency_ms"], abs=0.2)
    assert n20["amplitude_uv"] == pytest.approx(N20["amplitude_uv"], rel=0.10)
    wave = next(d for d in out if d["type"] == "waveform")
    assert wave["sample_rate_hz"] == 4000.0 and wave["t0_ms"] == -10.0

"""`ionm replay` on BDF+ files written in the test with pyedflib (an independent writer):
one JSON object per line with the shared fields, from a Status channel or from annotations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyedflib
import pytest
from analysis_helpers import N9, N20, P25, SynthSite, synth_stream

FS = 4000
CH = ["C4'-Fz", "Erb-L"]
CONFIG = """
[frontend]
channels = ["C4'-Fz", "Erb-L"]
sample_rate_hz = 4000

[analysis]
notch_hz = 50

[[analysis.sites]]
name = "L median"
modality = "ssep_upper"
channels = ["C4'-Fz", "Erb-L"]
trigger_bit = 0
rate_hz = 4.7
n_sweeps = 100
update_sweeps = 25
"""


def _write_bdf(path: Path, with_status: bool, duration_s: float = 40.0,
               notes: tuple[tuple[float, str], ...] = ()) -> None:
    site = SynthSite(0, 4.7, {
        "C4'-Fz": [(N20["latency_ms"], N20["amplitude_uv"], N20["sd_ms"]),
                   (P25["latency_ms"], P25["amplitude_uv"], P25["sd_ms"])],
        "Erb-L": [(N9["latency_ms"], N9["amplitude_uv"], N9["sd_ms"])]},
        stim_off=lambda t: 25.0 <= t < 32.0)  # the stimulator stops for 7 s
    data, trig = synth_stream(CH, FS, duration_s, [site], noise_uv=1.5, mains_uv=5.0)
    n_sig = len(CH) + (1 if with_status else 0)
    w = pyedflib.EdfWriter(str(path), n_sig, file_type=pyedflib.FILETYPE_BDFPLUS)
    headers = [{"label": ch, "dimension": "uV", "sample_frequency": FS,
                "physical_min": -2000.0, "physical_max": 2000.0,
                "digital_min": -8388608, "digital_max": 8388607} for ch in CH]
    signals = [d for d in data]
    if with_status:
        headers.append({"label": "Status", "dimension": "", "sample_frequency": FS,
                        "physical_min": -8388608, "physical_max": 8388607,
                        "digital_min": -8388608, "digital_max": 8388607})
        signals.append(trig.astype(np.float64))
    w.setSignalHeaders(headers)
    if not with_status or notes:
        w.set_number_of_annotation_signals(8)  # EDFlib: one annotation per signal per record
    if not with_status:
        for i in np.flatnonzero(trig):
            w.writeAnnotation(i / FS, -1, "L median")
    for t_s, text in notes:
        w.writeAnnotation(t_s, -1, text)
    w.writeSamples(signals)
    w.close()


def _replay(tmp_path: Path, bdf: Path) -> list[dict]:
    cfg = tmp_path / "ssep.toml"
    cfg.write_text(CONFIG)
    r = subprocess.run([sys.executable, "-m", "appliance.cli", "replay", str(bdf), "--config",
                        str(cfg), "--speed", "max"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.mark.parametrize("with_status", [True, False], ids=["status-channel", "annotations"])
def test_analysis_replay_prints_json_lines_with_shared_fields(tmp_path, with_status):
    bdf = tmp_path / "case.bdf"
    _write_bdf(bdf, with_status)
    lines = _replay(tmp_path, bdf)
    types = {d["type"] for d in lines}
    assert {"trend", "waveform", "condition", "baseline"} <= types, types
    trends = [d for d in lines if d["type"] == "trend" and d["channel"] == "C4'-Fz"]
    assert len(trends) >= 4
    for d in trends:
        for key in ("t_s", "site", "modality", "n_sweeps", "residual_noise_uv", "fsp",
                    "components", "filter"):
            assert key in d, key
        assert d["site"] == "L median" and d["modality"] == "ssep_upper"
        assert set(d["components"]) == {"N20", "P25"}
        assert 0 < d["t_s"] <= 40.0
    last = trends[-1]
    assert last["components"]["N20"]["latency_ms"] == pytest.approx(19.5, abs=0.2)
    assert last["components"]["N20"]["amplitude_uv"] == pytest.approx(-1.6, rel=0.15)
    assert last["fsp"] >= 3.1
    ts = [d["t_s"] for d in lines]
    assert ts == sorted(ts)  # in stream order
    # the stimulator stopped from 25 s to 32 s: raised after 5 periods, cleared when back
    stim = [d for d in lines if d["type"] == "condition"
            and d["id"] == "ssep.no_stimulus:L median"]
    assert stim and stim[0]["active"] and 25.9 < stim[0]["t_s"] < 26.6
    assert stim[-1]["active"] is False and 32.0 <= stim[-1]["t_s"] < 32.5
    wave = next(d for d in lines if d["type"] == "waveform")
    assert wave["encoding"] == "int16-le-base64" and wave["sample_rate_hz"] == FS


def test_analysis_replay_repeats_an_annotated_baseline_and_warns_on_a_refused_one(tmp_path):
    """The appliance annotates a baseline on command in its raw recording; replay takes it at
    that sample. One the replayed Monitor refuses (no average yet, a site it does not have) is
    a warning naming it, counted in the summary, and the replay goes on."""
    bdf = tmp_path / "case.bdf"
    _write_bdf(bdf, True, notes=((2.0, "set_baseline: L median"),
                                 (30.0, "set_baseline: R tibial"),
                                 (35.0, "set_baseline: L median")))
    cfg = tmp_path / "ssep.toml"
    cfg.write_text(CONFIG)
    r = subprocess.run([sys.executable, "-m", "appliance.cli", "replay", str(bdf), "--config",
                        str(cfg), "--speed", "max"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    on_command = [d for d in lines if d["type"] == "baseline" and d["reason"] == "command"]
    assert {d["channel"] for d in on_command} == set(CH), on_command
    # taken from the last update before 35 s (one every 25 sweeps, 5.3 s): a full average
    assert all(35.0 - 25 / 4.7 < d["t_s"] <= 35.0 and d["n_sweeps"] == 100
               for d in on_command), on_command
    assert "'set_baseline: L median' at 2.000 s refused" in r.stderr, r.stderr
    assert "no average yet" in r.stderr
    assert "'set_baseline: R tibial' at 30.000 s refused" in r.stderr
    assert "unknown site 'R tibial'" in r.stderr
    assert "2 annotated commands refused" in r.stderr


def test_analysis_replay_names_the_bad_config_key(tmp_path):
    bdf = tmp_path / "case.bdf"
    _write_bdf(bdf, True, duration_s=3.0)
    cfg = tmp_path / "bad.toml"
    cfg.write_text(CONFIG.replace('modality = "ssep_upper"', 'modality = "ssep_uper"'))
    r = subprocess.run([sys.executable, "-m", "appliance.cli", "replay", str(bdf), "--config",
                        str(cfg)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "analysis.sites[0].modality" in r.stderr and "ssep_upper" in r.stderr


def test_analysis_replay_reports_a_missing_file(tmp_path):
    cfg = tmp_path / "ssep.toml"
    cfg.write_text(CONFIG)
    r = subprocess.run([sys.executable, "-m", "appliance.cli", "replay",
                        str(tmp_path / "nope.bdf"), "--config", str(cfg)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "nope.bdf" in r.stderr


def test_analysis_replay_names_a_channel_the_recording_lacks(tmp_path):
    bdf = tmp_path / "case.bdf"
    _write_bdf(bdf, True, duration_s=3.0)
    cfg = tmp_path / "other.toml"
    cfg.write_text(CONFIG.replace('"Erb-L"]', '"Erb-R"]'))
    r = subprocess.run([sys.executable, "-m", "appliance.cli", "replay", str(bdf), "--config",
                        str(cfg)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Erb-R" in r.stderr and "Erb-L" in r.stderr, r.stderr


@pytest.mark.parametrize("name", ["ssep-example.toml", "baep-example.toml"])
def test_analysis_example_configs_load_and_run(name):
    from appliance import config
    from appliance.analysis.monitor import Monitor

    path = Path(__file__).resolve().parents[2] / "deploy" / "config" / name
    mon = Monitor(config.load(path))
    assert mon.plans and all(p.filter.phase == "zero" for p in mon.plans)


def test_analysis_replay_lists_annotations_no_site_matches_and_sums_up(tmp_path):
    bdf = tmp_path / "annotated.bdf"
    _write_bdf(bdf, False, duration_s=5.0)  # stimuli annotated "L median", no trigger channel
    cfg = tmp_path / "renamed.toml"
    cfg.write_text(CONFIG.replace('name = "L median"', 'name = "Left median"'))
    r = subprocess.run([sys.executable, "-m", "appliance.cli", "replay", str(bdf), "--config",
                        str(cfg)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    err = r.stderr.splitlines()
    n_stim = len(np.arange(0.05, 5.0 - 0.13, 1 / 4.7))  # as synth_stream places them
    assert err[0] == (
        "ionm replay: warning: site 'Left median' (trigger bit 0) matches no annotation of the "
        "recording and there is no trigger channel, so it will see no stimulus; its "
        f"{n_stim} unmatched annotations: 'L median' x{n_stim}. Name the site after its "
        "stimulus annotation (or annotate \"stim bit N\").")
    assert err[-1].startswith(f"ionm replay: 5.0 s of {bdf}: 1 site, 0 sweeps averaged "
                              "(0 rejected), 0 trends, 1 condition raised"), err
    # named right: no warning, and the summary counts what was averaged
    cfg.write_text(CONFIG)
    r = subprocess.run([sys.executable, "-m", "appliance.cli", "replay", str(bdf), "--config",
                        str(cfg)], capture_output=True, text=True, timeout=120)
    trends = sum('"type":"trend"' in line for line in r.stdout.splitlines())
    assert r.stderr.splitlines() == [
        # the last stimulus's sweep runs past the end of the file
        f"ionm replay: 5.0 s of {bdf}: 1 site, {n_stim - 1} sweeps averaged (0 rejected), "
        f"{trends} trends, 0 conditions raised"], r.stderr


def test_analysis_replay_names_a_site_on_a_trigger_bit_that_never_fires(tmp_path):
    """A Status channel with stimuli on bit 0 and a site set to bit 2: not just "no stimulus
    ... check stimulator and trigger cable", but which bits did fire and the key to fix."""
    bdf = tmp_path / "status.bdf"
    _write_bdf(bdf, True, duration_s=3.0)
    cfg = tmp_path / "bit2.toml"
    cfg.write_text(CONFIG.replace("trigger_bit = 0", "trigger_bit = 2"))
    r = subprocess.run([sys.executable, "-m", "appliance.cli", "replay", str(bdf), "--config",
                        str(cfg)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert ("ionm replay: warning: site 'L median' listens on trigger bit 2, which never fired "
            "in the recording; its stimuli are on bit 0: check analysis.sites[0].trigger_bit."
            ) in r.stderr.splitlines(), r.stderr
    cfg.write_text(CONFIG)  # the right bit: no warning
    r = subprocess.run([sys.executable, "-m", "appliance.cli", "replay", str(bdf), "--config",
                        str(cfg)], capture_output=True, text=True, timeout=120)
    assert "warning" not in r.stderr, r.stderr

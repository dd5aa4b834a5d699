"""`ionm record`: any front end to BDF+, read back by MNE-Python."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mne
import numpy as np
import pyedflib

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
CONFIG = """
[frontend]
kind = "simulated"
sample_rate_hz = 2000
channels = ["C3'-Fz", "C4'-Fz", "Cz'-Fz", "Erb-L"]
[[analysis.sites]]
name = "R median"
modality = "ssep_upper"
channels = ["C3'-Fz"]
trigger_bit = 0
rate_hz = 4.7
[[analysis.sites]]
name = "L tibial"
modality = "ssep_lower"
channels = ["Cz'-Fz"]
trigger_bit = 2
rate_hz = 3.1
"""


def _ionm(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance.cli", *args], capture_output=True,
                          text=True, env=ENV, timeout=timeout)


def test_bdf_record_simulated_without_config(tmp_path: Path) -> None:
    out = tmp_path / "out.bdf"
    res = _ionm("record", "--frontend", "simulated", "--seconds", "2", str(out))
    assert res.returncode == 0, res.stderr
    assert "2.00 s, 8 channels at 4000 Hz from simulated" in res.stdout
    raw = mne.io.read_raw_bdf(out, preload=True, verbose="error")
    assert raw.n_times == 2 * 4000 and raw.info["sfreq"] == 4000
    assert len(raw.ch_names) == 9 and raw.ch_names[-1] == "Status"
    eeg = raw.get_data(picks=list(range(8))) * 1e6
    assert np.all(np.std(eeg, axis=1) > 0.5)  # real signal, µV scale
    assert np.all(np.abs(eeg) < 187500.0)  # within the gain-24 ADC full scale


def test_bdf_record_stimulus_annotations_match_status(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    out = tmp_path / "stim.bdf"
    res = _ionm("record", "--config", str(cfg), "--fast", "--seconds", "3", str(out))
    assert res.returncode == 0, res.stderr
    with pyedflib.EdfReader(str(out)) as f:
        status = f.readSignal(4, digital=True).astype(np.int64)
        onsets, _, texts = f.readAnnotations()
    for bit in (0, 2):
        on = (status >> bit) & 1
        edges = np.flatnonzero(np.diff(np.concatenate([[0], on])) == 1) / 2000.0
        assert len(edges) >= 8  # 4.7 Hz and 3.1 Hz over 3 s
        np.testing.assert_allclose(onsets[texts == f"stim bit {bit}"], edges, atol=1e-6)
    n_events = int(res.stdout.split(" stimulus events")[0].rsplit(" ", 1)[1])
    assert n_events == np.count_nonzero(np.char.startswith(texts.astype(str), "stim bit"))


def test_bdf_record_cyton_emulator_on_a_pty(tmp_path: Path) -> None:
    emu = subprocess.Popen([sys.executable, "-m", "appliance.cli", "emulate", "cyton",
                            "--source", "test"], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert emu.stdout is not None
        line = emu.stdout.readline()
        assert line.startswith("Cyton emulator on "), line
        port = line.split(" on ", 1)[1].strip()
        out = tmp_path / "cyton.bdf"
        res = _ionm("record", "--frontend", "cyton", "--port", port, "--seconds", "1", str(out))
        assert res.returncode == 0, res.stderr
    finally:
        emu.send_signal(signal.SIGTERM)
        emu.wait(timeout=10)
        if emu.stdout:
            emu.stdout.close()
    raw = mne.io.read_raw_bdf(out, verbose="error")
    assert raw.info["sfreq"] == 250 and raw.n_times == 250 and len(raw.ch_names) == 9


def test_bdf_record_errors_are_named(tmp_path: Path) -> None:
    res = _ionm("record", "--frontend", "cyton", "--port", str(tmp_path / "none"),
                "--seconds", "1", str(tmp_path / "x.bdf"))
    # a front end that is not there is a runtime failure (exit 1), named in one line
    assert res.returncode == 1 and "ionm record:" in res.stderr and "none" in res.stderr
    assert "cannot open it (No such file or directory)" in res.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[frontend]\nkind = "cyto"\n')
    res = _ionm("record", "--config", str(bad), "--seconds", "1", str(tmp_path / "x.bdf"))
    assert res.returncode == 2 and "frontend.kind" in res.stderr and "cyton" in res.stderr


def test_bdf_record_ads1299_emulator(tmp_path: Path) -> None:
    """The register-level ADS1299 emulator behind the SPI seam, recorded without a config."""
    out = tmp_path / "ads.bdf"
    res = _ionm("record", "--frontend", "ads1299-emulated", "--fast", "--seconds", "1", str(out))
    assert res.returncode == 0, res.stderr
    with pyedflib.EdfReader(str(out)) as f:
        assert f.getNSamples()[0] == 4000 and f.getSignalLabels()[-1] == "Status"
        lsb_uv = 4.5e6 / 24 / 2**23  # the chip's step at gain 24 is kept in the file
        x = f.readSignal(0)
        assert np.std(x) > 0.5
        steps = np.diff(np.unique(x))
        assert steps.min() >= lsb_uv * 0.99


def test_bdf_record_ctrl_c_closes_a_readable_file(tmp_path: Path) -> None:
    out = tmp_path / "stopped.bdf"
    proc = subprocess.Popen([sys.executable, "-m", "appliance.cli", "record", "--frontend",
                             "simulated", "--seconds", "60", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.monotonic() + 30
        while not (out.exists() and out.stat().st_size > 256 * 10 and _count(out) >= 1):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "(interrupted)" in stdout
    seconds = float(stdout.split(": ", 1)[1].split(" s,")[0])
    assert 1.0 <= seconds < 60.0
    with pyedflib.EdfReader(str(out)) as f:  # strict reader: header and size agree
        assert f.getNSamples()[0] == 4000 * np.ceil(seconds - 1e-9)


def _count(path: Path) -> int:
    with open(path, "rb") as f:
        f.seek(236)
        return int(f.read(8))

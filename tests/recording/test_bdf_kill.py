"""SIGKILL a process in the middle of writing BDF+: the file stays readable, by MNE-Python and
pyedflib, up to the last whole second it committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mne
import numpy as np
import pyedflib

FS = 500
WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from appliance.frontend.bdf import BdfWriter
    fs = 500
    w = BdfWriter(sys.argv[1], ["A", "B"], fs)
    i = 0
    while True:  # 10x real time, 20 ms blocks, until killed
        idx = np.arange(i, i + 10)
        uv = np.stack([100 * np.sin(idx / 7.0), 0.5 * idx % 1000])
        trig = (idx % 250 == 0).astype(np.uint16)
        w.write_samples(uv, trig, i)
        i += 10
        time.sleep(0.002)
    """
)


def _count(path: Path) -> int:
    with open(path, "rb") as f:
        f.seek(236)
        return int(f.read(8))


def test_bdf_sigkill_leaves_file_readable_to_last_second(tmp_path: Path) -> None:
    path = tmp_path / "killed.bdf"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if path.exists() and path.stat().st_size > 300 and _count(path) >= 3:
                break
            time.sleep(0.05)
        time.sleep(0.037)  # land somewhere inside the next second
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    n_records = _count(path)
    assert n_records >= 3

    idx = np.arange(n_records * FS)
    expect = np.stack([100 * np.sin(idx / 7.0), 0.5 * idx % 1000])
    lsb = 2 * 262144.0 / (2**24 - 1)
    raw = mne.io.read_raw_bdf(path, preload=True, verbose="error")
    assert raw.n_times >= n_records * FS  # MNE may also take a record written after the count
    np.testing.assert_allclose(raw.get_data(picks=["A", "B"])[:, : idx.size] * 1e6, expect,
                               atol=lsb)
    with pyedflib.EdfReader(str(path)) as f:
        assert f.getNSamples()[0] == n_records * FS
        np.testing.assert_allclose(f.readSignal(0), expect[0], atol=lsb)
        onsets, _, texts = f.readAnnotations()
    np.testing.assert_allclose(onsets[texts == "stim bit 0"], np.arange(0, n_records, 0.5))

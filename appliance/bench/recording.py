"""`ionm bench recording`: BDF+ writing and reading, and the cost of CaseRecorder.write_block.

Each figure has a peer measured in the same run:
  write    our BdfWriter vs pyedflib's EdfWriter (BDF+), 8 ch at 4 kHz, x real time each
  read     our read_recording vs MNE-Python's read_raw_bdf(preload=True) of the same file
  enqueue  CaseRecorder.write_block vs a bare queue.SimpleQueue.put (what the monitor pays)
"""

from __future__ import annotations

import queue
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

FS = 4000
N_CH = 8
BLOCK = 64  # 16 ms at 4 kHz


def _data(seconds: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    uv = rng.normal(0.0, 20.0, (N_CH, seconds * FS))
    trig = np.zeros(seconds * FS, np.uint16)
    trig[:: FS // 5] = 1
    return uv, trig


def _write_ours(path: Path, uv: np.ndarray, trig: np.ndarray) -> float:
    from appliance.frontend.bdf import BdfWriter

    t = time.perf_counter()
    w = BdfWriter(path, [f"ch{i}" for i in range(N_CH)], FS, fsync=False)
    for i in range(0, uv.shape[1], BLOCK):
        w.write_samples(uv[:, i : i + BLOCK], trig[i : i + BLOCK], i)
    w.close()
    return time.perf_counter() - t


def _write_pyedflib(path: Path, uv: np.ndarray) -> float:
    import pyedflib

    t = time.perf_counter()
    with pyedflib.EdfWriter(str(path), N_CH, file_type=pyedflib.FILETYPE_BDFPLUS) as w:
        w.setSignalHeaders([{"label": f"ch{i}", "dimension": "uV", "sample_frequency": FS,
                             "physical_max": 262144, "physical_min": -262144,
                             "digital_max": 8388607, "digital_min": -8388608}
                            for i in range(N_CH)])
        for s in range(uv.shape[1] // FS):  # pyedflib takes whole records
            w.writeSamples([np.ascontiguousarray(row[s * FS : (s + 1) * FS]) for row in uv])
    return time.perf_counter() - t


def _read_ours(path: Path) -> float:
    from appliance.frontend.bdf import read_recording

    t = time.perf_counter()
    read_recording(path)
    return time.perf_counter() - t


def _read_mne(path: Path) -> float:
    import mne

    t = time.perf_counter()
    mne.io.read_raw_bdf(path, preload=True, verbose="error")
    return time.perf_counter() - t


def _enqueue(tmp: Path, n_blocks: int) -> tuple[float, float]:
    from appliance.config import from_dict
    from appliance.frontend.block import SampleBlock
    from appliance.outputs.recorder import CaseRecorder

    cfg = from_dict({"frontend": {"channels": [f"ch{i}" for i in range(N_CH)]},
                     "recording": {"fsync": False, "min_free_mb": 0.0, "stop_free_mb": 0.0}})
    blocks = [SampleBlock(np.zeros((N_CH, BLOCK)), np.zeros(BLOCK, np.uint16),
                          np.zeros((N_CH, BLOCK), bool), np.zeros(N_CH, bool), i * BLOCK, FS, 0.0)
              for i in range(n_blocks)]
    rec = CaseRecorder(tmp / "cases", cfg)
    rec.start_case("bench", "bench")
    ours = []
    for b in blocks:
        t = time.perf_counter()
        rec.write_block(b)
        ours.append(time.perf_counter() - t)
        time.sleep(0.0005)  # let the writer thread run, as the monitor's pace would
    rec.stop_case()
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    peer = []
    for b in blocks:
        t = time.perf_counter()
        q.put(("block", b))
        peer.append(time.perf_counter() - t)
    return statistics.median(ours), statistics.median(peer)


def run(quick: bool = False) -> dict[str, Any]:
    seconds = 10 if quick else 60
    uv, trig = _data(seconds)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t_ours = min(_write_ours(tmp / "ours.bdf", uv, trig) for _ in range(2))
        t_peer = min(_write_pyedflib(tmp / "peer.bdf", uv) for _ in range(2))
        r_ours = min(_read_ours(tmp / "ours.bdf") for _ in range(2))
        r_mne = min(_read_mne(tmp / "ours.bdf") for _ in range(2))
        e_ours, e_peer = _enqueue(tmp, 200 if quick else 1000)
    return {
        "bdf_write_x_realtime (8ch 4kHz)": round(seconds / t_ours, 1),
        "bdf_write_pyedflib_x_realtime": round(seconds / t_peer, 1),
        "bdf_write_ratio_vs_pyedflib": round(t_peer / t_ours, 2),
        "bdf_read_x_realtime": round(seconds / r_ours, 1),
        "bdf_read_ratio_vs_mne": round(r_mne / r_ours, 2),
        "recorder_write_block_us (median)": round(e_ours * 1e6, 2),
        "recorder_write_block_vs_queue_put": round(e_ours / e_peer, 2),
    }

"""SIGKILL a process in the middle of a case, then resume(): same case, baselines and latched
alarms intact, the old segment readable (MNE-Python, pyedflib) up to the last second, a new
segment beside it."""

from __future__ import annotations

import json
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
from recording_helpers import blocks, expected_uv, recording_config

from appliance.outputs import casestore
from appliance.outputs.recorder import CaseRecorder

HERE = Path(__file__).resolve().parent
CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[2])
    from recording_helpers import blocks, recording_config
    from appliance.outputs.recorder import CaseRecorder
    rec = CaseRecorder(sys.argv[1], recording_config(fsync=True))
    cid = rec.start_case("anon 7", "tethered cord")
    rec.save_state("baselines", {"L median": {"N20": {"latency_ms": 19.6, "amplitude_uv": 2.4}}})
    rec.save_state("alarms", {"latched": [{"alarm_id": "tech.lead_off:Cz", "priority": "medium"}]})
    print(cid, flush=True)
    for i, b in enumerate(blocks(100000)):  # ~8x real time until killed
        rec.write_block(b)
        if i % 50 == 0:
            rec.record("trend", {"type": "trend", "t_s": b.first_sample / 1000.0})
        time.sleep(0.002)
    """
)


def _count(path: Path) -> int:
    with open(path, "rb") as f:
        f.seek(236)
        return int(f.read(8))


def test_recorder_resume_after_sigkill(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(HERE)],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        cid = proc.stdout.readline().strip()
        raw1 = tmp_path / cid / "raw-001.bdf"
        deadline = time.monotonic() + 30
        while not (raw1.exists() and raw1.stat().st_size > 2048 and _count(raw1) >= 3):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
    n1 = _count(raw1)
    size1 = raw1.stat().st_size

    rec = CaseRecorder(tmp_path, recording_config())
    assert rec.resume() == cid
    assert rec.state("baselines") == {
        "L median": {"N20": {"latency_ms": 19.6, "amplitude_uv": 2.4}}}
    assert rec.state("alarms") == {
        "latched": [{"alarm_id": "tech.lead_off:Cz", "priority": "medium"}]}
    for b in blocks(130):  # the restarted stream begins at sample 0 again
        rec.write_block(b)
    rec.stop_case()

    # the old segment is untouched and readable up to its last whole second
    assert raw1.stat().st_size == size1
    lsb = 2 * 4.5e6 / 24 / (2**24 - 1)
    with pyedflib.EdfReader(str(raw1)) as f:
        assert f.getNSamples()[0] == n1 * 1000
        np.testing.assert_allclose(f.readSignal(0), expected_uv(0, n1 * 1000)[0], atol=lsb)
    raw = mne.io.read_raw_bdf(raw1, preload=True, verbose="error")
    np.testing.assert_allclose(raw.get_data(picks=[0, 1, 2])[:, : n1 * 1000] * 1e6,
                               expected_uv(0, n1 * 1000), atol=lsb)

    raw2 = tmp_path / cid / "raw-002.bdf"
    with pyedflib.EdfReader(str(raw2)) as f:
        assert f.getNSamples()[0] == 3000  # 2.08 s -> 3 records, the last one padded
        np.testing.assert_allclose(f.readSignal(2)[:2080], expected_uv(0, 2080)[2], atol=lsb)

    case = tmp_path / cid
    segs = casestore.read_segments(case)
    assert [(s["file"], s["reason"]) for s in segs] == [("raw-001.bdf", "start"),
                                                        ("raw-002.bdf", "resume")]
    events = [(e["kind"], json.dumps(e["data"])) for e in casestore.read_events(case, "case")]
    assert [json.loads(d)["event"] for _, d in events] == ["started", "resumed", "stopped"]
    assert casestore.case_info(case)["stopped_utc"]  # type: ignore[index]
    assert len(casestore.read_events(case, "trend")) >= 1  # stored before the kill

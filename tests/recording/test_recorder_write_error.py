"""A write that fails mid-stream (RLIMIT_FSIZE: the kernel's own "file too large", a short write
then EFBIG, as on a full disk): the raw file stays consistent up to its last whole record, raw
recording stops with tech.storage, events are still stored, monitoring (the caller) goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyedflib
from recording_helpers import expected_uv

from appliance.outputs import casestore

HERE = Path(__file__).resolve().parent
CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys, time
    sys.path.insert(0, sys.argv[2])
    from recording_helpers import blocks, recording_config
    from appliance.outputs.recorder import CaseRecorder
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000))
    rec = CaseRecorder(sys.argv[1], recording_config(queue_s=60))  # no drops for a full queue
    cid = rec.start_case("anon", "x")
    accepted = sum(rec.write_block(b) for b in blocks(2500))  # 40 s, far beyond 400 kB
    for _ in range(100):
        time.sleep(0.05)
        if rec.health()["raw_failed"]:
            break
    accepted += sum(rec.write_block(b) for b in blocks(10, first=40000))
    rec.record("trend", {"type": "trend", "t_s": 41.0, "site": "L median"})
    conds = [c.to_json() for c in rec.conditions(41.0)]
    rec.stop_case()
    print(json.dumps({"cid": cid, "accepted": accepted, "conds": conds,
                      "health": rec.health()}))
    """
)


def test_recorder_write_error_keeps_file_consistent(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1])}
    res = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), str(HERE)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    h = out["health"]
    assert h["raw_failed"] and h["raw_errors"] == 1 and not h["store_failed"]
    assert h["blocks_written"] + h["blocks_dropped"] == 2510  # every block accounted for
    assert out["accepted"] >= h["blocks_written"] and h["blocks_written"] < 2500
    cond = out["conds"][0]
    assert cond["id"] == "tech.storage" and cond["active"] and cond["kind"] == "technical"
    assert "raw recording failed (write error)" in cond["message"]

    case = tmp_path / out["cid"]
    raw = case / "raw-001.bdf"
    with pyedflib.EdfReader(str(raw)) as f:  # strict: header count and file size agree
        n = f.getNSamples()[0]
        assert 1000 <= n < 40000 and n % 1000 == 0
        np.testing.assert_allclose(f.readSignal(0), expected_uv(0, n)[0], atol=0.03)
    assert raw.stat().st_size <= 400_000
    assert [e["data"]["t_s"] for e in casestore.read_events(case, "trend")] == [41.0]
    assert casestore.case_info(case)["stopped_utc"]  # type: ignore[index]

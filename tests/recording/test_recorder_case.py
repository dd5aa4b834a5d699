"""Case recorder: a whole case in a folder (raw BDF+ + SQLite), disk nearly full, a slow disk."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pyedflib
import pytest
from recording_helpers import CHANNELS, blocks, expected_uv, recording_config

from appliance.conditions import Kind, Priority
from appliance.config import from_dict
from appliance.errors import RecordingError
from appliance.frontend.bdf import read_recording
from appliance.outputs import casestore
from appliance.outputs.recorder import CaseRecorder


def _wait(pred, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_recorder_whole_case(tmp_path: Path) -> None:
    rec = CaseRecorder(tmp_path, recording_config())
    cid = rec.start_case("anon 0042", "ACDF C5-6")
    with pytest.raises(RecordingError, match="is open"):
        rec.start_case("other", "x")
    for b in blocks(250):  # 4 s at 1 kHz, a stimulus every 250 ms
        assert rec.write_block(b)
    trend = {"type": "trend", "t_s": 1.5, "site": "L median", "modality": "ssep_upper",
             "components": {"N20": {"latency_ms": 19.8, "amplitude_uv": 2.1}}}
    rec.record("trend", trend)
    raised = {"type": "alarm_event", "event": "raised", "alarm_id": "ssep.amplitude:L median:N20",
              "priority": "high", "kind": "physiological", "site": "L median",
              "message": "N20 amplitude 45 % of baseline", "t_s": 2.5}
    rec.record("alarm_event", raised)
    rec.record("alarm_event", {**raised, "event": "acknowledged", "t_s": 3.0, "cause": "button"})
    rec.record("command", {"name": "set_baseline", "args": {}, "client": "mqtt:nurse"}, t_s=1.0)
    rec.save_state("alarms", {"latched": ["ssep.amplitude:L median:N20"]})
    rec.annotate(3.5, "surgeon: rod placement")
    rec.stop_case()
    assert rec.case_id is None

    case = tmp_path / cid
    info = casestore.case_info(case)
    assert info and info["label"] == "anon 0042" and info["stopped_utc"]
    assert info["config"]["frontend"]["channels"] == CHANNELS
    kinds = [e["kind"] for e in casestore.read_events(case)]
    assert kinds == ["case", "segment", "trend", "alarm_event", "alarm_event", "command",
                     "annotation", "case"]
    assert casestore.read_events(case, "trend")[0]["data"] == trend
    assert casestore.read_state(case, "alarms") == {"latched": ["ssep.amplitude:L median:N20"]}
    assert CaseRecorder(tmp_path, recording_config()).resume() is None  # stopped: not resumed

    with pyedflib.EdfReader(str(case / "raw-001.bdf")) as f:
        assert f.getSignalLabels()[:3] == CHANNELS
        assert f.getPatientCode() == "anon 0042"  # EDF+ stores "anon_0042"
        lsb = 2 * 4.5e6 / 24 / (2**24 - 1)  # ADC full scale kept
        np.testing.assert_allclose(f.readSignal(1)[:4000], expected_uv(0, 4000)[1], atol=lsb)
        onsets, _, texts = f.readAnnotations()
    texts = list(texts)
    assert texts.count("stim bit 0") == 16
    i = texts.index("alarm raised: ssep.amplitude:L median:N20 (high) N20 amplitude 45 % of "
                    "baseline")
    assert onsets[i] == pytest.approx(2.5)
    assert onsets[texts.index("surgeon: rod placement")] == pytest.approx(3.5)
    assert any(t.startswith("alarm acknowledged") for t in texts)


def test_recorder_disk_nearly_full_degrades_and_recovers(tmp_path: Path) -> None:
    cfg = recording_config(min_free_mb=1e12)  # far above the real free space
    rec = CaseRecorder(tmp_path, cfg)
    cid = rec.start_case("anon", "scoliosis")
    conds = rec.conditions(0.0)
    assert len(conds) == 1
    c = conds[0]
    assert (c.id, c.kind, c.priority, c.active) == ("tech.storage", Kind.TECHNICAL,
                                                    Priority.MEDIUM, True)
    assert "raw recording paused, events still stored" in c.message
    assert c.evidence["raw_paused"] and not c.evidence["store_paused"]
    assert not any(rec.write_block(b) for b in blocks(100))  # raw dropped, counted
    assert rec.stats.blocks_dropped == 100 and rec.stats.samples_dropped == 1600
    h = rec.health()
    assert h["case_id"] == cid and h["raw_paused"] and not h["store_paused"]
    assert h["blocks_dropped"] == 100 and h["free_mb"] < 1e12
    rec.record("trend", {"type": "trend", "t_s": 1.0, "site": "L median"})
    _wait(lambda: len(casestore.read_events(tmp_path / cid, "trend")) == 1)  # events go on
    assert not list((tmp_path / cid).glob("*.bdf"))

    # space comes back: raw recording resumes in a segment, the condition ends once
    rec.settings = dataclasses.replace(rec.settings, min_free_mb=0.0)
    _wait(lambda: not rec.conditions(5.0)[0].active)
    assert rec.conditions(5.1) == []  # reported inactive once, then nothing
    for b in blocks(70, first=1600):
        assert rec.write_block(b)
    rec.stop_case()
    r = read_recording(tmp_path / cid / "raw-001.bdf")
    np.testing.assert_allclose(r.data_uv[:, :1120], expected_uv(1600, 1120), atol=0.06)


def test_recorder_store_pauses_below_stop_threshold(tmp_path: Path) -> None:
    rec = CaseRecorder(tmp_path, recording_config(min_free_mb=1e12, stop_free_mb=1e12))
    cid = rec.start_case("anon", "x")
    assert "nothing is being recorded" in rec.conditions(0.0)[0].message
    rec.record("trend", {"type": "trend", "t_s": 1.0})
    rec.stop_case()
    assert casestore.read_events(tmp_path / cid, "trend") == []
    assert rec.stats.events_dropped >= 1
    assert casestore.case_info(tmp_path / cid)["stopped_utc"]  # type: ignore[index]
    assert CaseRecorder(tmp_path, recording_config()).resume() is None  # the stop marker holds


def test_recorder_slow_disk_drops_with_accounting(tmp_path: Path) -> None:
    """A producer far faster than the disk: the queue (0.1 s of samples) overflows; blocks are
    dropped and counted, write_block never waits, the file holds gaps filled and annotated."""
    rec = CaseRecorder(tmp_path, recording_config(queue_s=0.1, fsync=True))
    cid = rec.start_case("anon", "x")
    n = 3000
    ok = np.array([rec.write_block(b) for b in blocks(n)])
    rec.stop_case()
    s = rec.stats
    assert s.blocks_dropped > 0 and ok.sum() == n - s.blocks_dropped
    assert s.blocks_written == ok.sum() and s.samples_dropped == 16 * s.blocks_dropped
    r = read_recording(tmp_path / cid / "raw-001.bdf")
    gaps = [a for a in r.annotations if a.text.startswith("BAD_ACQ_SKIP gap:")]
    last = int(np.flatnonzero(ok)[-1])
    assert sum(int(a.text.split()[2]) for a in gaps) == 16 * np.count_nonzero(~ok[:last])
    assert r.n_samples >= 16 * (last + 1)  # the time axis is kept: gaps are filled
    kept = np.repeat(ok[: last + 1], 16)
    np.testing.assert_allclose(r.data_uv[:, : kept.size][:, kept],
                               expected_uv(0, kept.size)[:, kept], atol=0.06)


def test_recorder_slow_disk_raises_condition(tmp_path: Path) -> None:
    rec = CaseRecorder(tmp_path, recording_config(queue_s=0.1, fsync=True))
    rec.start_case("anon", "x")
    for b in blocks(3000):
        rec.write_block(b)
    conds = rec.conditions(1.0)
    rec.stop_case()
    assert conds and conds[0].active and "cannot keep up" in conds[0].message
    assert conds[0].evidence["blocks_dropped"] == rec.stats.blocks_dropped > 0


def test_recorder_unusable_directory_never_stops_monitoring(tmp_path: Path) -> None:
    """recording.directory under a regular file (ENOTDIR, even for root): start_case returns,
    nothing is recorded, every call stays harmless, tech.storage says why."""
    (tmp_path / "not-a-dir").write_text("x")
    rec = CaseRecorder(tmp_path / "not-a-dir" / "cases", recording_config())
    assert rec.resume() is None
    cid = rec.start_case("anon", "x")
    assert cid and rec.case_id == cid
    assert not any(rec.write_block(b) for b in blocks(5))
    assert not rec.record("trend", {"type": "trend", "t_s": 1.0})
    rec.save_state("alarms", {"latched": []})
    rec.annotate(1.0, "note")
    c = rec.conditions(1.0)[0]
    assert c.active and c.id == "tech.storage"
    assert "nothing is being recorded: cannot create case folder" in c.message
    assert rec.stats.blocks_dropped == 5 and rec.stats.events_dropped >= 2
    rec.stop_case()
    assert rec.case_id is None


def test_recorder_clipping_raises_tech_storage_naming_physical_max(tmp_path: Path) -> None:
    """A source beyond recording.physical_max_uv (possible only when re-recording a file,
    kind = "recording": live front ends are refused a range below their full scale at load)
    is stored at the limit, counted, and reported as a technical condition."""
    cfg = from_dict({"frontend": {"kind": "recording", "channels": CHANNELS,
                                  "sample_rate_hz": 1000},
                     "recording": {"fsync": False, "min_free_mb": 0.0, "stop_free_mb": 0.0,
                                   "physical_max_uv": 1000.0}})
    rec = CaseRecorder(tmp_path, cfg)
    rec.start_case("anon", "clip")
    for b in blocks(70):  # within range: nothing to report
        assert rec.write_block(b)
    _wait(lambda: rec.stats.blocks_written == 70)
    assert rec.conditions(1.0) == [] and rec.stats.clipped_samples == 0
    for b in blocks(70, first=70 * 16):
        assert rec.write_block(dataclasses.replace(b, data_uv=b.data_uv * 100.0))  # ±5 mV
    _wait(lambda: rec.stats.clipped_samples > 0)
    [c] = rec.conditions(2.0)
    assert (c.id, c.kind, c.active) == ("tech.storage", Kind.TECHNICAL, True)
    assert "clips" in c.message and "recording.physical_max_uv" in c.message, c.message
    assert c.evidence["clipped_samples"] == rec.stats.clipped_samples
    rec.stop_case()

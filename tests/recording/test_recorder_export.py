"""`ionm export CASE_DIR --format csv|json|edf`."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pyedflib
import pytest
from read_only_media import read_only_case
from recording_helpers import blocks, expected_uv, recording_config

from appliance.cli import main as ionm
from appliance.outputs.recorder import CaseRecorder

TREND = {"type": "trend", "t_s": 1.2, "site": "L median", "modality": "ssep_upper",
         "channel": "C4'-Fz", "n_sweeps": 300,
         "components": {"N20": {"latency_ms": 19.7, "amplitude_uv": 2.2, "confidence": 0.9},
                        "P25": {"latency_ms": 25.1, "amplitude_uv": -1.9, "confidence": 0.8}},
         "peak_to_peak_uv": 4.1, "residual_noise_uv": 0.2, "fsp": 6.2, "snr_db": 11.0,
         "split_half_r": 0.91}
ALARM = {"type": "alarm_event", "event": "raised", "alarm_id": "ssep.amplitude:L median:N20",
         "priority": "high", "kind": "physiological", "site": "L median", "message": "N20 -55 %",
         "evidence": {}, "latched": True, "t_s": 1.4, "t_utc": "x", "cause": "analysis"}


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~3 s of raw in two segments (the second after a resume); events within them."""
    root = tmp_path_factory.mktemp("cases")
    rec = CaseRecorder(root, recording_config())
    cid = rec.start_case("anon 3", "thoracic")
    for b in blocks(130):
        rec.write_block(b)
    rec.record("trend", TREND)
    rec.record("alarm_event", ALARM)
    rec.record("alarm_event", {**ALARM, "event": "acknowledged", "t_s": 1.5, "cause": "button"})
    rec.save_state("baselines", {"L median": {"N20": 2.2}})
    rec.close()  # left open, as after a crash: resume() and export both work
    rec2 = CaseRecorder(root, recording_config())
    assert rec2.resume() == cid
    for b in blocks(70):
        rec2.write_block(b)
    rec2.stop_case()
    return root / cid


def test_recorder_export_csv(case_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                             ) -> None:
    assert ionm(["export", str(case_dir), "--format", "csv", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == ["alarms.csv", "case.csv", "events.csv",
                                                     "trends.csv"]
    trends = list(csv.DictReader(open(tmp_path / "trends.csv", encoding="utf-8")))
    assert [(r["component"], float(r["latency_ms"])) for r in trends] == [("N20", 19.7),
                                                                         ("P25", 25.1)]
    assert trends[0]["site"] == "L median" and float(trends[0]["fsp"]) == 6.2
    alarms = list(csv.DictReader(open(tmp_path / "alarms.csv", encoding="utf-8")))
    assert [(a["event"], a["cause"]) for a in alarms] == [("raised", "analysis"),
                                                         ("acknowledged", "button")]
    events = list(csv.DictReader(open(tmp_path / "events.csv", encoding="utf-8")))
    kinds = [e["kind"] for e in events]
    assert kinds.count("segment") == 2 and kinds.count("case") == 3
    assert json.loads(events[kinds.index("trend")]["json"]) == TREND
    case = {r["key"]: r["value"] for r in csv.DictReader(open(tmp_path / "case.csv"))}
    assert case["label"] == "anon 3" and case["procedure"] == "thoracic"


def test_recorder_export_json(case_dir: Path, tmp_path: Path) -> None:
    assert ionm(["export", str(case_dir), "--format", "json", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "case.json").read_text())
    assert doc["case"]["label"] == "anon 3" and doc["case"]["stopped_utc"]
    assert doc["state"] == {"baselines": {"L median": {"N20": 2.2}}}
    assert [s["reason"] for s in doc["segments"]] == ["start", "resume"]
    trend = doc["events"]["trend"][0]
    assert {k: trend[k] for k in TREND} == TREND
    assert [a["event"] for a in doc["events"]["alarm_event"]] == ["raised", "acknowledged"]


def test_recorder_export_edf_repairs_crash_cut_segment(case_dir: Path, tmp_path: Path) -> None:
    # make segment 1 look like a crash left it: count -1 and half a record of tail
    seg = case_dir / "raw-001.bdf"
    data = bytearray(seg.read_bytes())
    data[236:244] = b"-1      "
    seg.write_bytes(bytes(data) + b"\x00" * 500)
    with pytest.raises(OSError):  # a strict reader refuses it as it is
        pyedflib.EdfReader(str(seg))
    assert ionm(["export", str(case_dir), "--format", "edf", "--out", str(tmp_path)]) == 0
    out = sorted(tmp_path.glob("*.bdf"))
    assert [p.name.split("-raw-")[1] for p in out] == ["001.bdf", "002.bdf"]
    lsb = 2 * 4.5e6 / 24 / (2**24 - 1)
    with pyedflib.EdfReader(str(out[0])) as f:
        assert f.getNSamples()[0] == 3000
        np.testing.assert_allclose(f.readSignal(0)[:2080], expected_uv(0, 2080)[0], atol=lsb)
        texts = list(f.readAnnotations()[2])
    assert any(t.startswith("alarm raised: ssep.amplitude") for t in texts)
    with pyedflib.EdfReader(str(out[1])) as f:
        assert f.getNSamples()[0] == 2000


def test_recorder_export_refuses_a_non_case(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert ionm(["export", str(tmp_path), "--format", "json"]) == 2
    assert "not a case folder" in capsys.readouterr().err


def _copy_case(case_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "case"
    shutil.copytree(case_dir, dst, ignore=shutil.ignore_patterns("export"))
    return dst


def test_recorder_export_warns_on_missing_and_short_raw(
        case_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = _copy_case(case_dir, tmp_path)
    (case / "raw-002.bdf").unlink()
    assert ionm(["export", str(case), "--format", "edf", "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert "'raw-002.bdf' (from 0.0 s) is listed in the case but missing" in err
    assert [p.name.split("-raw-")[1] for p in (tmp_path / "a").glob("*.bdf")] == ["001.bdf"]
    # the case goes on long after the raw data ends (a truncated segment)
    rec_late = {**ALARM, "event": "cleared", "t_s": 277.0}
    with sqlite3.connect(case / "case.sqlite") as db:
        db.execute("INSERT INTO events (t_utc, t_s, kind, site, json) VALUES "
                   "('x', 277.0, 'alarm_event', '', ?)", (json.dumps(rec_late),))
    db.close()
    assert ionm(["export", str(case), "--format", "edf", "--out", str(tmp_path / "b")]) == 1
    assert "raw data ends at 3.0 s of the case's 277.0 s" in capsys.readouterr().err


def test_recorder_export_names_and_skips_a_bad_json_row(
        case_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = _copy_case(case_dir, tmp_path)
    with sqlite3.connect(case / "case.sqlite") as db:
        seq = db.execute("SELECT seq FROM events WHERE kind = 'trend'").fetchone()[0]
        db.execute("UPDATE events SET json = '{\"t_s\": 1.2,' WHERE seq = ?", (seq,))
    db.close()
    for fmt in ("csv", "json"):
        out = tmp_path / fmt
        assert ionm(["export", str(case), "--format", fmt, "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert f"events row seq {seq} (kind 'trend'): not valid JSON" in err, err
        assert err.endswith("ionm export: 1 problem; the export is incomplete\n"), err
        assert "Traceback" not in err
    alarms = list(csv.DictReader(open(tmp_path / "csv" / "alarms.csv", encoding="utf-8")))
    assert [a["event"] for a in alarms] == ["raised", "acknowledged"]  # the rest is exported
    doc = json.loads((tmp_path / "json" / "case.json").read_text())
    assert "trend" not in doc["events"] and len(doc["events"]["alarm_event"]) == 2


@pytest.mark.parametrize("fmt", ["csv", "json", "edf"])
def test_recorder_export_refuses_existing_output_without_force(
        case_dir: Path, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert ionm(["export", str(case_dir), "--format", fmt, "--out", str(out)]) == 0
    first = sorted(out.iterdir())
    victim = first[0]
    victim.write_bytes(b"the user's own file")
    capsys.readouterr()
    assert ionm(["export", str(case_dir), "--format", fmt, "--out", str(out)]) == 2
    assert "already exists; pass --force to replace it" in capsys.readouterr().err
    assert victim.read_bytes() == b"the user's own file"  # nothing was written
    assert ionm(["export", str(case_dir), "--format", fmt, "--out", str(out), "--force"]) == 0
    assert victim.read_bytes() != b"the user's own file" and sorted(out.iterdir()) == first


def test_recorder_export_reads_an_archived_case_on_read_only_media(
        case_dir: Path, tmp_path: Path) -> None:
    """A finished case on read-only media exports (its store is read as immutable) into a
    folder elsewhere."""
    with read_only_case(case_dir, tmp_path / "media") as case:
        assert ionm(["export", str(case), "--format", "csv", "--out", str(tmp_path / "csv")]) == 0
    alarms = list(csv.DictReader(open(tmp_path / "csv" / "alarms.csv", encoding="utf-8")))
    assert [a["event"] for a in alarms] == ["raised", "acknowledged"]

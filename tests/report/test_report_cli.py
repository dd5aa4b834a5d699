"""`ionm report`: a case still being recorded (the report never blocks the recorder), bad input
(one line, exit 2), an unreadable row (named, exit 1, the rest reported). An existing output
(refused without --force) is tested with the HTML variant in test_report_render.py."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from read_only_media import read_only_case
from report_helpers import start, stop, wait_for
from system_tools import need_tool

from appliance.cli import main as ionm


def _text(pdf: Path) -> str:
    pdftotext = need_tool("pdftotext", "poppler-utils")
    return subprocess.run([pdftotext, "-layout", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout


def test_report_on_a_case_still_recording_does_not_block_the_recorder(tmp_path: Path) -> None:
    # real time: the recorder is far from its limits, so anything dropped would be the report's
    app, runner = start(tmp_path, realtime=True)
    try:
        assert wait_for(lambda: app.stream_t_s > 4.0, 60), "no stream"
        case_dir = app.cases.recorder.case_dir
        st = app.cases.recorder.stats
        written_before, t_before = st.events_written, app.stream_t_s
        r = subprocess.run([sys.executable, "-m", "appliance.cli", "report", str(case_dir),
                            "--out", str(tmp_path / "live.pdf")], capture_output=True,
                           text=True, timeout=120)
        # the appliance went on analysing and recording while the report read the store
        assert app.stream_t_s > t_before and st.events_written > written_before
        assert st.events_dropped == 0 and st.blocks_dropped == 0 and st.db_errors == 0
        assert all(a["alarm_id"] != "tech.storage" for a in app.manager.active_set())
    finally:
        stop(app, runner)
    assert r.returncode == 0, r.stderr[-2000:]
    text = _text(tmp_path / "live.pdf")
    assert "not stopped: still recording (or left open by a shutdown or crash); reported" in text
    assert "Trends — L median" in text and "Trends — R median" in text


def test_report_bad_input_is_one_line_exit_2(tmp_path: Path, case_dir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    def run(arg: Path, phrase: str) -> None:
        assert ionm(["report", str(arg), "--out", str(tmp_path / "r.pdf")]) == 2
        err = capsys.readouterr().err
        assert phrase in err and err.count("\n") == 1 and "Traceback" not in err, err
        assert not (tmp_path / "r.pdf").exists()

    run(tmp_path / "nope", "not a case folder (no such directory)")
    (tmp_path / "empty").mkdir()
    run(tmp_path / "empty", "not a case folder (no case.sqlite in it)")
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "case.sqlite").write_bytes(b"PK\x03\x04 not a database at all" * 100)
    run(garbage, "case.sqlite: not a readable case store (file is not a database)")
    cut = tmp_path / "cut"
    shutil.copytree(case_dir, cut)
    db = cut / "case.sqlite"
    assert not (cut / "case.sqlite-wal").exists()  # the recorder checkpointed it at the stop
    db.write_bytes(db.read_bytes()[:db.stat().st_size * 6 // 10])
    run(cut, "case.sqlite: not a readable case store (database disk image is malformed)")
    assert list(tmp_path.glob(".r.pdf.*")) == []  # no temporary file left behind


def test_report_names_an_unreadable_row_and_reports_the_rest(
        tmp_path: Path, continuous_case_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = tmp_path / "case"
    shutil.copytree(continuous_case_dir, case)
    with sqlite3.connect(case / "case.sqlite") as db:
        seq = db.execute("SELECT seq FROM events WHERE kind = 'alarm_event'").fetchone()[0]
        db.execute("UPDATE events SET json = '{\"t_s\": 1.2,' WHERE seq = ?", (seq,))
    db.close()
    out = tmp_path / "r.pdf"
    assert ionm(["report", str(case), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"events row seq {seq} (kind 'alarm_event'): not valid JSON" in err
    assert "Traceback" not in err
    text = _text(out)
    assert f"unreadable     case.sqlite events row seq {seq}" in text  # said in the report too
    assert "EEG and EMG trends" in text  # the rest is reported


def test_report_reads_an_archived_case_on_read_only_media(
        tmp_path: Path, continuous_case_dir: Path) -> None:
    """A WAL store opened read-only needs a -shm file it cannot make on read-only media; with
    no -wal file (a checkpointed, finished case) it is read as immutable."""
    with read_only_case(continuous_case_dir, tmp_path / "media") as case:
        assert ionm(["report", str(case), "--out", str(tmp_path / "r.pdf")]) == 0
    assert "EEG and EMG trends" in _text(tmp_path / "r.pdf")

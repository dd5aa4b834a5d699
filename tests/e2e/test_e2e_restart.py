"""`ionm run` as a subprocess, killed with SIGKILL mid-case after a latched SSEP alarm, then
restarted: the case is resumed with its baselines and latched alarm, the BDF+ of the killed run is
readable by pyedflib up to the last second before the kill, and SIGTERM ends the second run
cleanly (exit 0, STOPPING=1, lights dark)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pyedflib
from e2e_helpers import DEVICE, config_dict, to_toml, wait_for

from appliance.outputs.gpio import read_transitions

ALARM = "ssep.amplitude:L median:C4'-Fz"
IONM = [sys.executable, "-m", "appliance.cli"]


def _start(cfg_path: Path, state: Path, log_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*IONM, "run", "--config", str(cfg_path), "--state-dir", str(state)],
                            stdout=subprocess.DEVNULL, stderr=open(log_path, "wb"))  # noqa: SIM115


def _raised(subscriber, cause: str) -> list[tuple[float, dict]]:
    return [(t, b) for t, _, b in subscriber.of_type("alarm_event")
            if b["alarm_id"] == ALARM and b["event"] == "raised" and b["cause"] == cause]


def test_e2e_sigkill_mid_case_then_restart_resumes_case_baselines_and_alarms(
        tmp_path: Path, broker, notify, subscriber) -> None:
    d = config_dict(tmp_path, broker, realtime=True)
    d["lights"]["backend"] = "file"  # the lights run in their own process: record to a file
    cfg_path = tmp_path / "ionm.toml"
    cfg_path.write_text(to_toml(d))
    state = tmp_path / "state"
    lights_file = Path(d["lights"]["file_path"])

    # ---- run 1: until the alarm is latched, then SIGKILL
    p1 = _start(cfg_path, state, tmp_path / "run1.log")
    try:
        assert wait_for(lambda: notify.first("READY=1") is not None, 20.0), (
            (tmp_path / "run1.log").read_text())
        t_ready = notify.first("READY=1")
        assert wait_for(lambda: _raised(subscriber, "analysis"), 60.0), (
            (tmp_path / "run1.log").read_text()[-3000:])
        time.sleep(1.5)  # some seconds of recording after the alarm
        t_kill = time.monotonic()
        p1.send_signal(signal.SIGKILL)
        assert p1.wait(5) == -signal.SIGKILL
    finally:
        if p1.poll() is None:
            p1.kill()
    stream_at_kill_s = t_kill - t_ready  # real time: the stream clock runs with the wall clock
    assert "STOPPING=1" not in [m for _, m in notify.messages]

    cases = list((tmp_path / "cases").iterdir())
    assert len(cases) == 1
    case_dir = cases[0]
    db = sqlite3.connect(case_dir / "case.sqlite")
    saved = {k: json.loads(v) for k, v in db.execute("SELECT key, json FROM state")}
    db.close()
    saved_base = {(b["site"], b["channel"]): b["amplitude_uv"]
                  for b in saved["baselines"]["current"]}
    assert ("L median", "C4'-Fz") in saved_base
    assert ALARM in [a["alarm_id"] for a in saved["alarms"]["alarms"]]

    # the raw recording of the killed run: readable by pyedflib up to the last second
    raw1 = case_dir / "raw-001.bdf"
    with pyedflib.EdfReader(str(raw1)) as f:
        labels = f.getSignalLabels()
        duration_s = f.getFileDuration()
        c4 = f.readSignal(labels.index("C4'-Fz"))
        status = f.readSignal(labels.index("Status"), digital=True)
        onsets, _, texts = f.readAnnotations()
    assert labels[:5] == d["frontend"]["channels"]
    gap_s = stream_at_kill_s - duration_s
    print(f"\nBDF+ after SIGKILL: {duration_s:.0f} s recorded, stream at kill "
          f"{stream_at_kill_s:.2f} s, lost {gap_s:.2f} s")
    assert gap_s <= 2.0, (duration_s, stream_at_kill_s)
    assert c4.size == duration_s * 2000 and 1.0 < np.std(c4) < 1e4
    # the alarm is annotated in the raw recording where the stream was when it was raised
    (_, raised_ev), = _raised(subscriber, "analysis")
    # lights in their own process (LightsProcess, file backend): red within 1 s of the raise
    t_raise = datetime.fromisoformat(raised_ev["t_utc"].replace("Z", "+00:00")).timestamp()
    rises = [json.loads(line)["t_unix"] for line in lights_file.read_text().splitlines()
             if '"red"' in line and json.loads(line)["state"]]
    red_delay_s = min(t for t in rises if t >= t_raise - 0.01) - t_raise
    print(f"\nraise -> red lamp in the lights process: {red_delay_s * 1e3:.1f} ms")
    assert red_delay_s <= 1.0
    at = [o for o, t in zip(onsets, texts, strict=True) if t.startswith("alarm raised: " + ALARM)]
    assert at and abs(at[0] - raised_ev["t_s"]) < 1.0, (at, raised_ev["t_s"])
    n_stim = np.count_nonzero(np.diff(status.astype(np.int64) & 1) > 0)
    assert abs(n_stim - 9.7 * duration_s) <= 9.7 * 1.5  # bit 0: L median stimuli at 9.7 Hz

    # ---- run 2: resumes the same case
    n_msgs = len(notify.messages)
    t_restart = time.monotonic()
    p2 = _start(cfg_path, state, tmp_path / "run2.log")
    try:
        assert wait_for(lambda: any(m == "READY=1" for _, m in notify.messages[n_msgs:]), 20.0)
        status_lines = [m for _, m in notify.messages[n_msgs:] if m.startswith("STATUS=")]
        assert wait_for(lambda: _raised(subscriber, "restore"), 5.0)
        assert wait_for(lambda: [1 for t, n in _red_rises(lights_file) if t > t_restart], 3.0)
        p2.send_signal(signal.SIGTERM)
        assert p2.wait(20) == 0
    finally:
        if p2.poll() is None:
            p2.kill()
    log2 = (tmp_path / "run2.log").read_text()
    assert "Traceback" not in log2, log2
    assert f"case {case_dir.name} resumed: {len(saved_base)} baselines, 1 latched alarms" in log2
    assert "NOT a certified medical device" in log2
    status_lines = [m for _, m in notify.messages[n_msgs:] if m.startswith("STATUS=")]
    assert any(f"case {case_dir.name}" in s and f"baselines {len(saved_base)}" in s
               for s in status_lines), status_lines
    assert notify.messages[-1][1] == "STOPPING=1"
    assert [p for p in (tmp_path / "cases").iterdir()] == [case_dir]  # no new case
    assert (case_dir / "raw-002.bdf").is_file()  # the resumed run's own segment

    # the restored baselines are the ones saved before the kill, value for value
    db = sqlite3.connect(case_dir / "case.sqlite")
    restored = [json.loads(j) for (j,) in db.execute(
        "SELECT json FROM events WHERE kind = 'baseline' ORDER BY seq")]
    db.close()
    restored = {(b["site"], b["channel"]): b["amplitude_uv"] for b in restored
                if b.get("reason") == "restored"}
    assert restored == saved_base

    # the latched alarm came back and was published; the restored event names its cause
    (_, ev), = _raised(subscriber, "restore")
    assert ev["priority"] == "high" and ev["latched"]
    actives = [b for _, topic, b in subscriber.of_type("active_alarms")
               if topic == f"ionm/v1/{DEVICE}/alarm/active"]
    assert ALARM in [a["alarm_id"] for a in actives[-1]["alarms"]]
    # both ends were announced: the broker's Will after SIGKILL, the death certificate at SIGTERM
    assert wait_for(lambda: len([1 for _, t, b in subscriber.of_type("status")
                                 if t == f"ionm/v1/{DEVICE}/status" and not b["online"]]) >= 2,
                    5.0)
    # clean stop: every lamp dark at the end
    for name in ("red", "green", "cyan", "yellow"):
        tr = read_transitions(lights_file, name)
        assert tr and not tr[-1].state, name


def _red_rises(path: Path) -> list[tuple[float, int]]:
    if not path.exists():
        return []
    return [(t.t_s, t.pin) for t in read_transitions(path, "red") if t.state]


def test_e2e_bad_config_fails_check_config_and_run_naming_the_key(tmp_path: Path) -> None:
    d = config_dict(tmp_path, None, realtime=True)
    cases = {
        "frontend.kind": lambda c: c["frontend"].update(kind="cyto"),
        "mqtt.hots": lambda c: c["mqtt"].update(hots="x"),
        "analysis.sites[1].channels": lambda c: c["analysis"]["sites"][1].update(
            channels=["C3'-Fz", "Fpz"]),
    }
    env = {**os.environ}
    env.pop("NOTIFY_SOCKET", None)
    for key, spoil in cases.items():
        bad = json.loads(json.dumps(d))
        spoil(bad)
        path = tmp_path / f"bad-{key}.toml"
        path.write_text(to_toml(bad))
        for cmd in (["check-config", str(path)], ["run", "--config", str(path),
                                                  "--state-dir", str(tmp_path / "s")]):
            r = subprocess.run([*IONM, *cmd], capture_output=True, text=True, timeout=60, env=env)
            assert r.returncode == 2, (cmd, r.stdout, r.stderr)
            assert key in r.stderr, (cmd, r.stderr)
            assert "Traceback" not in r.stderr
    assert not (tmp_path / "s").exists()  # nothing started

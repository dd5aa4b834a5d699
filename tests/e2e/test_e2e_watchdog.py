"""WATCHDOG=1 only while data flow end to end: a front-end stall (scenario event in the simulated
front end, inside the acquisition process) stops the watchdog and darkens the green lamp, raises
tech.stall; when samples come back, both resume and the condition ends."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
from e2e_helpers import config_dict, start_appliance, wait_for

from appliance import config
from appliance.outputs.gpio import RecordingBackend
from appliance.service import Appliance
from appliance.systemd import setup_logging

STALL = """
name = "e2e-stall"
[[event]]
type = "stall"
at_s = 4.0
duration_s = 3.0
"""


def test_e2e_stall_stops_watchdog_and_green_then_both_resume(tmp_path: Path, notify) -> None:
    d = config_dict(tmp_path, None, realtime=True)
    Path(d["frontend"]["scenario"]).write_text(STALL)
    app, backend, runner = start_appliance(d, tmp_path)
    try:
        assert wait_for(lambda: "tech.stall" in app.timeline.raised_s, 30.0), (
            app.timeline, app.status_line())
        stalled = app.timeline.raised_s["tech.stall"]
        assert wait_for(lambda: [1 for t, m in notify.messages
                                 if m == "WATCHDOG=1" and t > stalled + 3.0], 10.0)
        time.sleep(1.0)
    finally:
        app.request_stop()
        runner.join(20.0)
    assert not runner.is_alive()
    ready = notify.first("READY=1")
    wd = np.array([t for t, m in notify.messages if m == "WATCHDOG=1"])
    assert wd.size >= 6 and wd.min() >= ready
    # fed every 0.5 s before the stall, none from the stall until samples return (3 s stall,
    # noticed after stall_s = 0.5 s), then fed again
    before, after = wd[wd <= stalled], wd[wd > stalled]
    assert before.size >= 3 and after.size >= 2
    assert after[0] - stalled > 2.0, after[0] - stalled
    assert np.max(np.diff(before)) < 1.0
    # green dark during the stall, lit again after it
    t_g, s_g = backend.edges("green", since_s=ready)
    offs = t_g[~s_g]
    assert np.any((offs > stalled - 1.0) & (offs < stalled + 1.0)), (t_g, s_g, stalled)
    assert np.any(s_g[t_g > stalled + 2.0])
    # the stall was a technical alarm while it lasted; it ended (not latching)
    assert "tech.stall" not in {a["alarm_id"] for a in app.manager.active_set()}


def test_e2e_unusable_recording_directory_is_an_alarm_not_a_stop(tmp_path: Path, notify,
                                                                 monkeypatch) -> None:
    """The case folder cannot be made (a file is in the way): monitoring starts anyway, with
    tech.storage (medium) signalled, READY and WATCHDOG as usual; logged to journald with the
    alarm id as a structured field."""
    d = config_dict(tmp_path, None, realtime=True)
    (tmp_path / "blocker").write_text("not a directory")
    d["recording"]["directory"] = str(tmp_path / "blocker" / "cases")
    backend = RecordingBackend()
    cfg = config.from_dict(d)
    # as under systemd: journald records with the alarm id as a field (the library's own seam
    # replaces journal.send)
    journal: list[tuple[str, dict]] = []
    monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef")
    root = logging.getLogger()
    level = root.level
    handler = setup_logging("INFO", sender_function=lambda *a, **kw: journal.append((a[0], kw)))
    app = Appliance(cfg, tmp_path / "state", lights_backend=backend)
    runner = threading.Thread(target=app.run, daemon=True)
    runner.start()
    try:
        assert wait_for(lambda: notify.first("READY=1") is not None
                        and "tech.storage" in app.timeline.raised_s
                        and [1 for _, m in notify.messages if m == "WATCHDOG=1"], 30.0)
        active = {a["alarm_id"]: a for a in app.manager.active_set()}
        assert active["tech.storage"]["priority"] == "medium"
        assert "blocker" in active["tech.storage"]["message"]
        assert wait_for(lambda: backend.levels[cfg.lights.cyan_pin], 2.0)  # technical
        assert backend.levels[cfg.lights.green_pin] and app.blocks > 0  # still monitoring
    finally:
        app.request_stop()
        runner.join(20.0)
        root.removeHandler(handler)
        root.setLevel(level)
    assert not runner.is_alive()
    raised = [kw for msg, kw in journal if msg.startswith("ionm.service: alarm raised")]
    assert any(kw.get("ALARM_ID") == "tech.storage" and kw.get("SYSLOG_IDENTIFIER") == "ionm"
               and kw.get("PRIORITY") == "4" for kw in raised), raised
    assert any("NOT a certified medical device" in msg for msg, _ in journal)

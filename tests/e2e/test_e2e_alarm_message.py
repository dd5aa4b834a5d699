"""A latched high alarm whose condition returns with new values is re-raised with the NEW message
and evidence in every output: the event, the log line, the MQTT payload and the export's
alarms.csv (issue 13: the re-raise used to carry the previous message)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import config_dict, start_appliance, wait_for

from appliance.cli import main as ionm
from appliance.conditions import Condition, Kind, Priority

ALARM = "ssep.amplitude:Test site:N20"
FIRST, SECOND = "amplitude 45 % of baseline (alarm below 50 %)", \
    "amplitude 48 % of baseline (alarm below 50 %)"


def _cond(active: bool, message: str, now_uv: float) -> Condition:
    return Condition(ALARM, Kind.PHYSIOLOGICAL, Priority.HIGH, active, 1.0, "Test site", message,
                     {"baseline_uv": 2.0, "now_uv": now_uv})


def test_e2e_reraised_alarm_carries_the_new_message_everywhere(
        tmp_path: Path, broker: Any, subscriber: Any, caplog: pytest.LogCaptureFixture) -> None:
    d = config_dict(tmp_path, broker, realtime=True)
    Path(d["frontend"]["scenario"]).write_text('name = "stable"\n')
    caplog.set_level(logging.INFO, logger="ionm")
    app, _backend, runner = start_appliance(d, tmp_path)
    try:
        assert wait_for(lambda: app.case_id is not None and app.mqtt is not None, 20.0)
        events = app.manager.update(_cond(True, FIRST, 0.9), cause="analysis")
        events += app.manager.update(_cond(False, "amplitude 60 % of baseline", 1.2),
                                     cause="analysis")  # latched: stays until acknowledged
        events += app.manager.update(_cond(True, SECOND, 0.96), cause="analysis")
        assert [e.event for e in events] == ["raised", "cleared", "raised"]
        assert (events[0].message, events[2].message) == (FIRST, SECOND)
        assert events[-1].evidence["now_uv"] == 0.96

        def mqtt_raised() -> list[str]:
            return [b["message"] for _, _, b in subscriber.of_type("alarm_event")
                    if b["alarm_id"] == ALARM and b["event"] == "raised"]

        assert wait_for(lambda: len(mqtt_raised()) == 2, 10.0), subscriber.messages[-5:]
        assert mqtt_raised() == [FIRST, SECOND]
    finally:
        app.request_stop()
        runner.join(20.0)
    assert not runner.is_alive()
    logged = [r.getMessage() for r in caplog.records if ALARM in r.getMessage()
              and "alarm raised" in r.getMessage()]
    assert len(logged) == 2 and FIRST in logged[0] and SECOND in logged[1], logged
    [case_dir] = [p for p in (tmp_path / "cases").iterdir() if p.is_dir()]
    out = tmp_path / "export"
    assert ionm(["export", str(case_dir), "--format", "csv", "--out", str(out)]) == 0
    rows = [r for r in csv.DictReader(open(out / "alarms.csv", encoding="utf-8"))
            if r["alarm_id"] == ALARM and r["event"] == "raised"]
    assert [r["message"] for r in rows] == [FIRST, SECOND]

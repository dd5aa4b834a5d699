"""One command registry behind every door: the same request to the real appliance over MQTT and
over its local control socket is refused with the same code and message, is accepted by both,
and is recorded in the case with the cause of its door. A viewer is refused by the registry."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import DEVICE, config_dict, contract_errors, start_appliance, wait_for

from appliance.commands import CommandRejected, Role


def _via_socket(path: Path, name: str, args: dict[str, Any]) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5.0)
        s.connect(str(path))
        s.sendall(json.dumps({"cmd": name, "args": args}).encode() + b"\n")
        return json.loads(s.makefile().readline())


def test_one_registry_serves_mqtt_and_the_local_socket(tmp_path: Path, broker,
                                                        subscriber) -> None:
    app, _, runner = start_appliance(config_dict(tmp_path, broker, realtime=True), tmp_path)
    sock = tmp_path / "alarm.sock"

    def via_mqtt(name: str, args: dict[str, Any]) -> dict[str, Any]:
        n = len(subscriber.of_type("command_reply"))
        subscriber.publish(f"ionm/v1/{DEVICE}/cmd/tester/{name}", json.dumps(args))
        assert wait_for(lambda: len(subscriber.of_type("command_reply")) > n, 5.0), name
        return subscriber.of_type("command_reply")[n][2]

    try:
        assert wait_for(lambda: app.timeline.ready_s is not None and sock.exists(), 30.0)
        refused = [
            ("annotate", {"text": ""}),  # argument bounds (registry)
            ("annotate", {"text": "x", "pen": 1}),  # unknown argument (registry)
            ("start_case", {}),  # missing argument (registry)
            ("emg_audio", {"volume": 0.5}),  # refused by the loop's handler: audio is off
        ]
        for name, args in refused:
            m, s = via_mqtt(name, args), _via_socket(sock, name, args)
            assert not m["ok"] and not s["ok"], (name, m, s)
            assert (m["error"]["code"], m["error"]["message"]) == (s["code"], s["error"]), (m, s)
        codes = [_via_socket(sock, n, a)["code"] for n, a in refused]
        assert codes == ["invalid_args", "invalid_args", "invalid_args", "refused"]
        # accepted through both doors, each on the main loop
        assert via_mqtt("annotate", {"text": "screw L4 left"})["ok"]
        r = _via_socket(sock, "annotate", {"text": "rod placed"})
        assert r["ok"] and r["result"]["t_s"] > 0
        # every console sees both marks, with who made them (docs/asyncapi.yaml: annotation)
        assert wait_for(lambda: len(subscriber.of_type("annotation")) >= 2, 5.0)
        marks = [m[2] for m in subscriber.of_type("annotation")]
        assert [(m["text"], m["cause"]) for m in marks] == [("screw L4 left", "mqtt:tester"),
                                                            ("rod placed", "cli")]
        assert marks[1]["t_s"] == r["result"]["t_s"] and marks[0]["case_id"]
        assert not contract_errors(subscriber.of_type("annotation"))
        # the registry decides who may act: a viewer may not acknowledge
        with pytest.raises(CommandRejected) as e:
            app.command("acknowledge", {}, "viewer1", role=Role.VIEWER)
        assert e.value.code == "unauthorised" and "technologist" in str(e.value)
        time.sleep(0.3)  # the recorder thread stores the rows
    finally:
        app.request_stop()
        runner.join(20.0)
    assert not runner.is_alive()
    (case_dir,) = (tmp_path / "cases").iterdir()
    db = sqlite3.connect(case_dir / "case.sqlite")
    rows = [json.loads(j) for k, j in db.execute(
        "SELECT kind, json FROM events WHERE kind IN ('command', 'annotation') ORDER BY seq")
        if k == "command"]
    notes = [json.loads(j)["text"] for (j,) in db.execute(
        "SELECT json FROM events WHERE kind = 'annotation' ORDER BY seq")]
    db.close()
    assert [(r["command"], r["cause"]) for r in rows] == [("annotate", "mqtt:tester"),
                                                          ("annotate", "cli")]
    assert notes == ["screw L4 left", "rod placed"]

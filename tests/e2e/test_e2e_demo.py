"""`ionm demo --seconds 5` (what `make run` runs, bounded): starts its own mosquitto, prints the
mosquitto_sub line, records the case, exits 0 and leaves no broker behind."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as mqtt
from system_tools import need_tool


def test_e2e_demo_runs_five_seconds_and_exits_0(tmp_path: Path) -> None:
    need_tool("mosquitto", "mosquitto")  # the demo runs without it, but this test watches MQTT
    state = tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "appliance.cli", "demo", "--seconds", "5",
                             "--state-dir", str(state)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # the printed line works: subscribe with it while the demo runs and see the birth message
    line = proc.stdout.readline() + proc.stdout.readline()
    # then what will happen when: the scenario's events and the quiet first minutes (read
    # here: communicate() below bypasses what readline() has buffered)
    story = "".join(proc.stdout.readline() for _ in range(4))
    m = re.search(r"mosquitto_sub -h 127\.0\.0\.1 -p (\d+) -t 'ionm/v1/#' -v", line)
    assert m, line
    port = int(m.group(1))
    got: list[str] = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_connect = lambda cl, *a: cl.subscribe("ionm/v1/#")
    c.on_message = lambda cl, u, msg: got.append(msg.topic)
    c.connect("127.0.0.1", port)
    c.loop_start()
    out, err = proc.communicate(timeout=60)
    c.loop_stop()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert "ionm demo:   at 180 s: amplitude (to_percent 40.0, site L median" in story, story
    assert "--fast runs it faster" in story
    assert "NOT a certified medical device" in err
    assert "first block analysed: READY" in err
    assert "ionm/v1/ionm-demo/status" in got and "ionm/v1/ionm-demo/case" in got
    cases = list((state / "cases").iterdir())
    assert len(cases) == 1 and (cases[0] / "case.sqlite").is_file()
    assert (cases[0] / "raw-001.bdf").stat().st_size > 0
    with socket.socket() as s:  # the demo's broker is gone
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_e2e_demo_relative_state_dir_is_used_as_given(tmp_path: Path) -> None:
    """`ionm demo --state-dir st` writes to st (it wrote to st/st)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    r = subprocess.run([sys.executable, "-m", "appliance.cli", "demo", "--seconds", "2",
                        "--no-mqtt", "--fast", "--state-dir", "st"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert [p.name for p in (tmp_path / "st").iterdir() if p.is_dir()] == ["cases"]
    assert len(list((tmp_path / "st" / "cases").glob("*/case.sqlite"))) == 1

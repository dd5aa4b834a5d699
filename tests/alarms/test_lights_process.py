"""The lights in their own process (file backend, real child process), fed from a manager."""

from __future__ import annotations

import time

import numpy as np
import pytest

from appliance import config
from appliance.errors import ConfigError
from appliance.outputs.gpio import edges, flash_timing, read_transitions
from appliance.outputs.lights_process import LightsProcess


def test_lights_process_follows_manager_and_green_watchdog(tmp_path, cond):
    from appliance.alarms import AlarmManager

    manager = AlarmManager()  # real clock: the child runs on real time
    path = tmp_path / "lights.jsonl"
    path.touch()
    s = config.from_dict({"lights": {"backend": "file", "file_path": str(path)}}).lights
    with LightsProcess(s, source=manager.display) as lights:
        assert lights.alive()
        lights.set_monitoring(True)
        manager.update(cond())
        deadline = time.monotonic() + 20
        while len(read_transitions(path, "red")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the child is starting (spawn imports numpy)
        t0 = time.monotonic()
        time.sleep(1.6)
        manager.update(cond(active=False))
        t_ack = time.monotonic()
        manager.acknowledge("button")
        time.sleep(0.3)
    red = read_transitions(path, "red")
    period, duty = flash_timing([t for t in red if t.t_s >= t0 - 0.6])
    assert period.size >= 2
    assert np.all((period >= 1 / 2.8) & (period <= 1 / 1.4))
    assert np.all((duty >= 0.2) & (duty <= 0.6))
    # acknowledged and ended: red stops (no rise after the forwarder's next poll)
    assert not [t for t in red if t.state and t.t_s > t_ack + 0.15]
    # closing leaves every output off
    final = {}
    for t in read_transitions(path):
        final[t.name] = t.state
    assert final and not any(final.values())
    # renewed once, never again: green went dark about 1 s later, on its own
    t, st = edges(read_transitions(path, "green"))
    on = t[st]
    off_after = t[~st][t[~st] > on[0]]
    assert on.size == 1 and 0.9 <= off_after[0] - on[0] <= 1.2


def test_recording_backend_cannot_cross_a_process():
    s = config.from_dict({"lights": {"backend": "recording"}}).lights
    with pytest.raises(ConfigError, match="use 'file'"):
        LightsProcess(s)


PARENT = """
import os, signal, sys, time
from appliance import config
from appliance.alarms import Display
from appliance.conditions import Priority
from appliance.outputs.lights_process import LightsProcess

if __name__ == "__main__":  # spawn re-imports this module in the child
    s = config.from_dict({"lights": {"backend": "file", "file_path": sys.argv[1]}}).lights
    lights = LightsProcess(s)
    lights.priority()
    lights.show(Display(highest=Priority.HIGH, highest_technical=Priority.HIGH))
    for _ in range(8):
        lights.set_monitoring(True)
        time.sleep(0.1)
    print(time.monotonic(), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # the monitor process dies without a word
"""


def test_child_goes_dark_when_its_parent_is_killed(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "lights.jsonl"
    path.touch()
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    r = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == -9, r.stderr
    t_kill = float(r.stdout.split()[-1])
    time.sleep(1.0)  # the orphan notices within 0.25 s and turns everything off
    final: dict[str, tuple[bool, float]] = {}
    for t in read_transitions(path):
        final[t.name] = (t.state, t.t_s)
    assert set(final) >= {"red", "cyan", "green"}
    for name, (state, t_s) in final.items():
        assert state is False, name
        assert t_s - t_kill < 0.6, name  # dark promptly, not frozen in its last state
    # red was flashing and cyan on until the parent died
    assert any(t.state for t in read_transitions(path, "cyan"))


def test_child_that_cannot_open_its_backend_is_a_clear_error():
    from appliance.outputs.gpio import GpioError

    s = config.from_dict({"lights": {"backend": "rpi"}}).lights  # off a Pi: no RPi.GPIO
    with pytest.raises(GpioError, match="lights process failed to start: .*rpi-lgpio"):
        LightsProcess(s)

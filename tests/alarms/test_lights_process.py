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

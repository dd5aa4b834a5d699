"""Fixtures for the alarm and lights tests: a settable clock, the recording GPIO backend, and the
dsp core kept busy on another thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from appliance.alarms import AlarmManager
from appliance.conditions import Condition, Kind, Priority
from appliance.outputs.gpio import RecordingBackend
from appliance.settings.alarms import AlarmSettings

PINS = {"red": 17, "yellow": 27, "cyan": 22, "green": 23, "paused": 18, "buzzer": 24}


class FakeClock:
    def __init__(self, t_s: float = 1000.0) -> None:
        self.t_s = t_s

    def __call__(self) -> float:
        return self.t_s

    def advance(self, dt_s: float) -> None:
        self.t_s += dt_s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def manager(clock: FakeClock) -> AlarmManager:
    return AlarmManager(AlarmSettings(), clock=clock, wall_clock=lambda: 1.8e9 + clock())


@pytest.fixture
def light_recorder() -> Iterator[RecordingBackend]:
    backend = RecordingBackend()
    yield backend
    backend.close()


def _cond(
    cid: str = "ssep.amplitude:L median:N20",
    kind: Kind = Kind.PHYSIOLOGICAL,
    priority: Priority = Priority.HIGH,
    active: bool = True,
    site: str = "L median",
    t_s: float = 0.0,
) -> Condition:
    return Condition(cid, kind, priority, active, t_s, site, f"{cid} message",
                     {"baseline_uv": 2.0, "now_uv": 0.8})


@pytest.fixture
def cond():  # noqa: ANN201 -- the factory itself
    """Factory for Conditions: cond(id, kind, priority, active, site)."""
    return _cond


@pytest.fixture
def busy_numpy() -> Iterator[list[int]]:
    """The dsp core (streaming band-pass, epoching, averaging of 8 channels at 16 kHz) flat out
    on another thread for the duration of the test; yields its block count."""
    from appliance.bench.lights import dsp_load

    stop = threading.Event()
    counter = [0]
    th = threading.Thread(target=dsp_load, args=(stop, counter), daemon=True)
    th.start()
    yield counter
    stop.set()
    th.join(timeout=5)

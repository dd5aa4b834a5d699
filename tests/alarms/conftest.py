"""Fixtures for the alarm and lights tests: a settable clock, the recording GPIO backend, and a
numpy workload that keeps the interpreter busy on another thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
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


def numpy_workload(stop: threading.Event, counter: list[int]) -> None:
    """What the averaging core does flat out: filter-like convolutions, sweep averages and a
    matrix product, in a loop of small-to-medium numpy calls (some hold the GIL, some release)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4096))
    h = rng.standard_normal(129)
    sweeps = rng.standard_normal((64, 8, 512))
    a = rng.standard_normal((200, 200))
    while not stop.is_set():
        for ch in range(x.shape[0]):
            np.convolve(x[ch], h, mode="same")
        sweeps.mean(axis=0)
        a @ a
        counter[0] += 1


@pytest.fixture
def busy_numpy() -> Iterator[list[int]]:
    """Runs numpy_workload on another thread for the duration of the test; yields its loop count."""
    stop = threading.Event()
    counter = [0]
    th = threading.Thread(target=numpy_workload, args=(stop, counter), daemon=True)
    th.start()
    yield counter
    stop.set()
    th.join(timeout=5)

"""The acknowledge button through the recording backend's input side: a pin driven low
(pressed, pull-up to ground) with contact bounce."""

from __future__ import annotations

import time

import pytest

from appliance.outputs.button import Button
from appliance.outputs.gpio import RecordingBackend
from appliance.settings.lights import LightsSettings

PIN = 25


def bounce(level: bool, n: int = 5, step_s: float = 0.002) -> list[tuple[float, bool]]:
    """Contact bounce ending at `level`: n quick flips, 2 ms apart."""
    return [(step_s, (i % 2 == 0) == level) for i in range(n)] + [(step_s, level)]


def press(hold_s: float) -> list[tuple[float, bool]]:
    return bounce(False) + [(hold_s, False)] + bounce(True) + [(0.1, True)]


@pytest.fixture
def button():
    backend = RecordingBackend()
    calls: list[tuple[str, float]] = []
    b = Button(backend, PIN, lambda: calls.append(("short", time.monotonic())),
               lambda: calls.append(("long", time.monotonic())),
               debounce_s=0.03, long_press_s=0.6)
    yield backend, b, calls
    b.close()


def test_short_press_with_bounce_acknowledges_once(button):
    backend, b, calls = button
    backend.play(PIN, press(0.15)).join()
    time.sleep(0.05)
    assert [c for c, _ in calls] == ["short"]
    assert (b.n_short, b.n_long) == (1, 0)


def test_long_press_fires_while_held_and_release_does_nothing(button):
    backend, b, calls = button
    t0 = time.monotonic()
    backend.play(PIN, press(0.9)).join()
    time.sleep(0.05)
    assert [c for c, _ in calls] == ["long"]
    # fired after long_press_s of holding, before the release (~0.92 s after t0)
    assert 0.6 <= calls[0][1] - t0 <= 0.85


def test_bounces_alone_do_not_press(button):
    backend, b, calls = button
    # glitches shorter than the debounce time, returning high each time
    backend.play(PIN, [(0.01, False), (0.01, True)] * 10).join()
    time.sleep(0.08)
    assert calls == []


def test_two_presses_and_a_long_one(button):
    backend, b, calls = button
    backend.play(PIN, press(0.1) + press(0.1) + press(0.8)).join()
    time.sleep(0.05)
    assert [c for c, _ in calls] == ["short", "short", "long"]


def test_from_settings_wires_manager(manager, cond):
    backend = RecordingBackend()
    s = LightsSettings(button_long_press_s=0.5)
    manager.update(cond())
    manager.update(cond(active=False))
    with Button.from_settings(s, backend, lambda: manager.acknowledge("button"),
                              lambda: manager.audio_pause("button")):
        backend.play(s.button_pin, press(0.7)).join()
        time.sleep(0.05)
        assert manager.display().audio_paused
        assert manager.active_set() != []  # long press paused, did not acknowledge
        backend.play(s.button_pin, press(0.1)).join()
        time.sleep(0.05)
        assert manager.active_set() == []


def test_handler_error_does_not_stop_the_button():
    backend = RecordingBackend()
    calls = []

    def broken():
        raise RuntimeError("boom")

    with Button(backend, PIN, broken, lambda: None, long_press_s=2.0) as b:
        backend.play(PIN, press(0.1)).join()
        time.sleep(0.05)
        b._on_short = lambda: calls.append("short")
        backend.play(PIN, press(0.1)).join()
        time.sleep(0.05)
        assert b.n_errors == 1 and calls == ["short"]


def test_button_to_lights_end_to_end(cond):
    """Condition -> manager -> lights, and the button's presses back into the manager, all on one
    recording backend: long press pauses (paused LED on, buzzer stops, red keeps flashing); after
    the condition ends a short press acknowledges and the red stops."""
    from appliance.alarms import AlarmManager
    from appliance.outputs.lights import Lights

    real = AlarmManager()  # real clock: the lights run on real time
    backend = RecordingBackend()
    pins = {"red": 17, "paused": 18, "buzzer": 24}
    with Lights(backend, pins, source=real.display), Button(
        backend, PIN, lambda: real.acknowledge("button"), lambda: real.audio_pause("button"),
        long_press_s=0.5,
    ):
        t_raise = time.monotonic()
        real.update(cond())
        time.sleep(0.3)
        assert [t for t in backend.history("buzzer", t_raise) if t.state]  # the burst began
        backend.play(PIN, press(0.6)).join()
        time.sleep(0.1)
        t0 = time.monotonic()
        time.sleep(0.6)
        assert backend.history("paused")[-1].state is True
        assert not [t for t in backend.history("buzzer", t0) if t.state]
        assert len(backend.edges("red", t0)[0]) >= 2
        real.update(cond(active=False))  # latched: still flashing
        time.sleep(0.6)
        assert len(backend.edges("red", time.monotonic() - 0.55)[0]) >= 2
        backend.play(PIN, press(0.1)).join()
        time.sleep(0.15)
        t1 = time.monotonic()
        time.sleep(0.6)
        assert backend.edges("red", t1)[0].size == 0 and backend.history("red")[-1].state is False
    assert real.active_set() == []

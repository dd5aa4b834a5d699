"""GPIO backends: file JSON lines, terminal (real pseudo-terminal and a pipe), RPi.GPIO API
loading, and the recording backend's own bookkeeping."""

from __future__ import annotations

import io
import json
import os
import select
import time

import numpy as np
import pytest

from appliance.alarms import Display
from appliance.conditions import Priority
from appliance.errors import ConfigError
from appliance.outputs.gpio import (
    FileBackend,
    GpioError,
    RecordingBackend,
    RpiBackend,
    TerminalBackend,
    Transition,
    flash_timing,
    open_backend,
    read_transitions,
)
from appliance.outputs.lights import Lights

HIGH_TECH = Display(highest=Priority.HIGH, highest_technical=Priority.HIGH)


def test_file_backend_appends_json_lines(tmp_path):
    path = tmp_path / "lights.jsonl"
    path.write_text('{"earlier": "run"}\n')
    backend = open_backend("file", path=path)
    with Lights(backend, {"red": 17, "cyan": 22}) as lights:
        lights.show(HIGH_TECH)
        time.sleep(0.65)
    backend.close()
    backend.close()  # idempotent
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0] == {"earlier": "run"}  # appended, not overwritten
    rows = lines[1:]
    assert all(set(r) == {"pin", "name", "state", "t", "t_unix"} for r in rows)
    red = [r for r in rows if r["name"] == "red"]
    assert all(r["pin"] == 17 for r in red)
    # setup low, then on/off/on...: 2 Hz flashing for 0.65 s, and off at close
    states = [r["state"] for r in red]
    assert states[:4] == [False, True, False, True] and states[-1] is False
    t = np.array([r["t"] for r in red])
    assert np.all(np.diff(t) >= 0) and abs((t[3] - t[1]) - 0.5) < 0.05
    cyan = [r["state"] for r in rows if r["name"] == "cyan"]
    assert cyan == [False, True, False]


def test_file_backend_unwritable_path_is_a_clear_error(tmp_path):
    with pytest.raises(GpioError, match="lights.file_path"):
        FileBackend(tmp_path / "missing-dir" / "x.jsonl")


def test_terminal_backend_on_a_pty_redraws_one_line():
    master, slave = os.openpty()
    stream = os.fdopen(slave, "w", encoding="utf-8")
    try:
        backend = TerminalBackend(stream)
        assert backend.tty
        with Lights(backend, {"red": 17, "cyan": 22, "green": 23}) as lights:
            lights.set_monitoring(True)
            lights.show(HIGH_TECH)
            time.sleep(0.6)
        out = b""
        while select.select([master], [], [], 0.1)[0]:
            out += os.read(master, 65536)
        text = out.decode()
        assert "\r\x1b[2K" in text and "\n" not in text.rstrip("\r\n")  # redrawn in place
        assert "\x1b[1;31m\u25cf RED" in text and "\u25cb RED" in text  # red on and off
        assert "\x1b[1;36m\u25cf CYAN" in text and "\x1b[1;32m\u25cf GREEN" in text
    finally:
        stream.close()
        os.close(master)


def test_terminal_backend_without_tty_prints_pattern_changes_only():
    stream = io.StringIO()
    backend = TerminalBackend(stream)
    assert not backend.tty
    with Lights(backend, {"red": 17, "cyan": 22}) as lights:
        lights.show(HIGH_TECH)
        time.sleep(1.1)  # four red flashes...
        lights.show(Display())
        time.sleep(0.05)
    lines = stream.getvalue().splitlines()
    # ...but only one line per change of what the lights do
    assert lines == ["lights: red=off cyan=off", "lights: red=flash 2 Hz cyan=on",
                     "lights: red=off cyan=off"]


def test_rpi_backend_off_a_pi_says_what_to_install():
    try:
        import RPi.GPIO  # noqa: F401
    except (ImportError, RuntimeError):
        pass
    else:  # pragma: no cover - only on a Pi
        pytest.fail("RPi.GPIO importable: this test is meant for the development machine")
    with pytest.raises(GpioError, match="rpi-lgpio"):
        open_backend("rpi")


class GpioChip:
    """Stand-in for the RPi.GPIO module API (what rpi-lgpio provides): pins with levels and
    pull-ups, BCM mode required before setup, like the real library."""

    BCM, OUT, IN, HIGH, LOW, PUD_UP, PUD_DOWN = 11, 0, 1, 1, 0, 22, 21

    def __init__(self):
        self.mode = None
        self.levels: dict[int, int] = {}
        self.cleaned: list[int] = []

    def setwarnings(self, flag):
        pass

    def setmode(self, mode):
        self.mode = mode

    def setup(self, pin, direction, initial=None, pull_up_down=None):
        if self.mode != self.BCM:
            raise RuntimeError("Please set pin numbering mode using GPIO.setmode")
        if direction == self.OUT:
            self.levels[pin] = initial if initial is not None else self.LOW
        else:
            self.levels[pin] = self.HIGH if pull_up_down == self.PUD_UP else self.LOW

    def output(self, pin, level):
        self.levels[pin] = level

    def input(self, pin):
        return self.levels[pin]

    def cleanup(self, pins):
        self.cleaned.extend(pins)


def test_rpi_backend_drives_the_gpio_api():
    chip = GpioChip()
    backend = RpiBackend(gpio=chip)
    backend.setup_output(17, "red")
    backend.setup_input(25, "button", pull_up=True)
    assert chip.mode == chip.BCM and chip.levels == {17: 0, 25: 1}
    backend.output(17, True)
    assert chip.levels[17] == 1 and backend.input(25) is True
    chip.levels[25] = 0  # button pressed
    assert backend.input(25) is False
    backend.close()
    backend.close()
    assert chip.cleaned == [17, 25]
    with pytest.raises(GpioError, match="after close"):
        backend.output(17, False)


def test_backend_misuse_is_named():
    b = RecordingBackend()
    with pytest.raises(GpioError, match="pin 4: not set up as an output"):
        b.output(4, True)
    with pytest.raises(GpioError, match="pin 4: not set up as an input"):
        b.input(4)
    with pytest.raises(ConfigError, match="allowed: 'rpi'"):
        open_backend("gpiozero")
    for name in ("terminal", "recording", "none"):
        open_backend(name).close()


def test_flash_timing_from_known_edges():
    # a square wave 0.1 s on, 0.3 s off, with a repeated write (not an edge) and a ragged end
    t = [0.0, 0.1, 0.4, 0.4, 0.5, 0.8, 0.9, 1.2]
    state = [True, False, True, True, False, True, False, True]
    hist = [Transition(17, "red", st, 100.0 + ti) for ti, st in zip(t, state, strict=True)]
    period, duty = flash_timing(hist)
    assert np.allclose(period, [0.4, 0.4, 0.4]) and np.allclose(duty, [0.25, 0.25, 0.25])
    assert flash_timing(hist[:1])[0].size == 0


def test_read_transitions_round_trip(tmp_path):
    b = FileBackend(tmp_path / "l.jsonl")
    b.setup_output(17, "red")
    b.output(17, True)
    b.setup_output(22, "cyan")
    b.close()
    got = read_transitions(tmp_path / "l.jsonl", "red")
    assert [(x.pin, x.name, x.state) for x in got] == [(17, "red", False), (17, "red", True)]
    assert got[1].t_s >= got[0].t_s


def test_bring_up_demo_drives_every_output(tmp_path, capsys):
    from appliance.outputs.lights_demo import SITUATIONS, main

    path = tmp_path / "demo.jsonl"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[lights]\nbackend = "file"\nfile_path = "{path}"\nlamp_test_s = 0.3\n'
                   "monitoring_timeout_s = 0.2\n")
    assert main(["--config", str(cfg), "--step-s", "0.15"]) == 0
    err = capsys.readouterr().err
    assert all(name in err for name, _ in SITUATIONS)
    rows = read_transitions(path)
    for name in ("red", "yellow", "cyan", "green", "paused", "buzzer"):
        assert any(t.name == name and t.state for t in rows), name
    from appliance.cli import main as ionm

    assert ionm(["lights-check", "--backend", "gpiozero"]) == 2
    assert "ionm lights-check: config error: lights.backend: got 'gpiozero'" in (
        capsys.readouterr().err)

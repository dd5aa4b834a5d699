"""GPIO backends: one small seam for the lights, buzzer and button (hw/lights.md).

- RpiBackend       the RPi.GPIO API (rpi-lgpio on any Pi, incl. Pi 5); imported lazily, and a
                   clear GpioError off a Pi -- never a silent fall-back to a stand-in.
- RecordingBackend stand-in for tests and benches: every output transition with a monotonic
                   timestamp; its input side lets a test drive a pin, bounces included. Inputs
                   read as pulled up (high) until driven, like the real pull-up.
- FileBackend      appends each transition as a JSON line {"pin","name","state","t","t_unix"}.
- TerminalBackend  the lights live in the console for `make run` (one ANSI status line; when
                   stdout is not a terminal it prints a line only when a light's pattern changes).
- NullBackend      nothing fitted.

Pins are BCM numbers; `state` is the logical level (True = high). Every backend is a context
manager and `close()` is idempotent.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from appliance.errors import ConfigError, IonmError

log = logging.getLogger(__name__)


class GpioError(IonmError, OSError):
    """The GPIO backend cannot be opened or used."""


@dataclass(frozen=True)
class Transition:
    pin: int
    name: str
    state: bool
    t_s: float  # time.monotonic() when the output was written


def edges(history: list[Transition]) -> tuple[np.ndarray, np.ndarray]:
    """(t_s (n,), state (n,) bool) of one pin's transitions, repeated writes dropped."""
    t = np.array([h.t_s for h in history], dtype=np.float64)
    s = np.array([h.state for h in history], dtype=bool)
    if s.size:
        keep = np.concatenate(([True], s[1:] != s[:-1]))
        t, s = t[keep], s[keep]
    return t, s


def flash_timing(history: list[Transition]) -> tuple[np.ndarray, np.ndarray]:
    """Whole flash cycles of one pin: (period_s (k,), duty (k,)), rising edge to rising edge."""
    t, s = edges(history)
    rises, falls = t[s], t[~s]
    if rises.size < 2:
        return np.zeros(0), np.zeros(0)
    period = np.diff(rises)
    idx = np.searchsorted(falls, rises[:-1])  # first fall after each rise
    ok = idx < falls.size
    on = np.where(ok, falls[np.minimum(idx, falls.size - 1)] - rises[:-1], np.nan)
    return period, on / period


def read_transitions(path: str | Path, name: str | None = None) -> list[Transition]:
    """Transitions a FileBackend wrote (t_s from its "t": CLOCK_MONOTONIC, system-wide)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").split("\n")[:-1]:  # whole lines only
        d = json.loads(line)
        if "pin" in d and (name is None or d["name"] == name):
            out.append(Transition(int(d["pin"]), str(d["name"]), bool(d["state"]), float(d["t"])))
    return out


class GpioBackend:
    """Base: remembers pin names and levels. Subclasses override `_write` / `_read`."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.levels: dict[int, bool] = {}
        self._inputs: set[int] = set()
        self._closed = False

    def setup_output(self, pin: int, name: str, initial: bool = False) -> None:
        self.names[pin] = name
        self.levels[pin] = initial

    def setup_input(self, pin: int, name: str, pull_up: bool = True) -> None:
        self.names[pin] = name
        self._inputs.add(pin)

    def output(self, pin: int, state: bool) -> None:
        if self._closed:
            raise GpioError(f"GPIO backend {type(self).__name__}: output on pin {pin} after close.")
        if pin not in self.names or pin in self._inputs:
            raise GpioError(f"GPIO pin {pin}: not set up as an output.")
        state = bool(state)
        self.levels[pin] = state
        self._write(pin, state)

    def input(self, pin: int) -> bool:
        if pin not in self._inputs:
            raise GpioError(f"GPIO pin {pin}: not set up as an input.")
        return self._read(pin)

    def describe(self, patterns: dict[str, str]) -> None:
        """Optional: what each light is doing, e.g. {'red': 'flash 2.0 Hz'} (for humans)."""

    def _write(self, pin: int, state: bool) -> None:
        pass

    def _read(self, pin: int) -> bool:
        return True  # pulled up, nothing pressed

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> GpioBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NullBackend(GpioBackend):
    """No lights fitted: accepts everything, shows nothing."""


class RpiBackend(GpioBackend):
    """The RPi.GPIO API. On a Pi install rpi-lgpio (works on every model, Pi 5 included)."""

    def __init__(self, gpio: Any = None) -> None:
        super().__init__()
        if gpio is None:
            try:
                import RPi.GPIO as gpio  # noqa: N813 -- lazy: only present on a Pi
            except (ImportError, RuntimeError) as e:
                raise GpioError(
                    f"lights.backend 'rpi': cannot load RPi.GPIO ({e}). On a Raspberry Pi run "
                    "`pip install rpi-lgpio` and add the service user to group 'gpio'; off a Pi "
                    "use backend 'terminal', 'file' or 'none'."
                ) from e
        self._gpio = gpio
        gpio.setwarnings(False)
        gpio.setmode(gpio.BCM)

    def setup_output(self, pin: int, name: str, initial: bool = False) -> None:
        super().setup_output(pin, name, initial)
        level = self._gpio.HIGH if initial else self._gpio.LOW
        self._gpio.setup(pin, self._gpio.OUT, initial=level)

    def setup_input(self, pin: int, name: str, pull_up: bool = True) -> None:
        super().setup_input(pin, name, pull_up)
        pud = self._gpio.PUD_UP if pull_up else self._gpio.PUD_DOWN
        self._gpio.setup(pin, self._gpio.IN, pull_up_down=pud)

    def _write(self, pin: int, state: bool) -> None:
        self._gpio.output(pin, self._gpio.HIGH if state else self._gpio.LOW)

    def _read(self, pin: int) -> bool:
        return bool(self._gpio.input(pin))

    def close(self) -> None:
        if self._closed:
            return
        super().close()
        pins = list(self.names)
        if pins:
            self._gpio.cleanup(pins)


class RecordingBackend(GpioBackend):
    """Stand-in that records every output transition (like gpiozero's MockPin) and whose input
    pins a test can drive. Not emulated: electrical timing, pull strength, edge interrupts."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.transitions: list[Transition] = []
        self._driven: dict[int, bool] = {}

    def setup_output(self, pin: int, name: str, initial: bool = False) -> None:
        super().setup_output(pin, name, initial)
        self._append(pin, initial)

    def _write(self, pin: int, state: bool) -> None:
        self._append(pin, state)

    def _append(self, pin: int, state: bool) -> None:
        t = time.monotonic()
        with self._lock:
            self.transitions.append(Transition(pin, self.names[pin], state, t))

    def history(self, name: str, since_s: float = -np.inf) -> list[Transition]:
        with self._lock:
            return [t for t in self.transitions if t.name == name and t.t_s >= since_s]

    def edges(self, name: str, since_s: float = -np.inf) -> tuple[np.ndarray, np.ndarray]:
        """(t_s (n,), state (n,) bool) of the changes of `name`, repeated writes dropped."""
        return edges(self.history(name, since_s))

    def flash_timing(self, name: str, since_s: float = -np.inf) -> tuple[np.ndarray, np.ndarray]:
        """Whole flash cycles of `name`: (period_s (k,), duty (k,)), rising edge to rising edge."""
        return flash_timing(self.history(name, since_s))

    def drive(self, pin: int, level: bool) -> None:
        """Set an input pin's level (as a switch to ground would)."""
        with self._lock:
            self._driven[pin] = bool(level)

    def release(self, pin: int) -> None:
        with self._lock:
            self._driven.pop(pin, None)

    def play(self, pin: int, steps: Iterable[tuple[float, bool]]) -> threading.Thread:
        """Drive `pin` through (delay_s, level) steps on a thread (bounces, presses). Join it."""
        steps = list(steps)

        def run() -> None:
            deadline = time.monotonic()
            for delay_s, level in steps:
                deadline += delay_s
                time.sleep(max(0.0, deadline - time.monotonic()))
                self.drive(pin, level)

        th = threading.Thread(target=run, name=f"drive-gpio{pin}", daemon=True)
        th.start()
        return th

    def _read(self, pin: int) -> bool:
        with self._lock:
            return self._driven.get(pin, True)


class FileBackend(GpioBackend):
    """Append each transition to `path` as one JSON line. A disk error is logged once and counted
    (`n_errors`); the lights thread carries on."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.n_errors = 0
        try:
            self._fh: TextIO | None = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        except OSError as e:
            raise GpioError(f"lights.file_path {str(self.path)!r}: cannot open ({e}).") from e

    def setup_output(self, pin: int, name: str, initial: bool = False) -> None:
        super().setup_output(pin, name, initial)
        self._write(pin, initial)

    def _write(self, pin: int, state: bool) -> None:
        if self._fh is None:
            return
        line = {"pin": pin, "name": self.names[pin], "state": state,
                "t": round(time.monotonic(), 6), "t_unix": round(time.time(), 6)}
        try:
            self._fh.write(json.dumps(line) + "\n")
        except OSError as e:
            self.n_errors += 1
            if self.n_errors == 1:
                log.error("lights file %s: write failed (%s); further errors counted", self.path, e)

    def close(self) -> None:
        if self._closed:
            return
        super().close()
        if self._fh is not None:
            self._fh.close()
            self._fh = None


_ANSI = {"red": "31", "yellow": "33", "cyan": "36", "green": "32", "paused": "37", "buzzer": "35"}
_LABEL = {"paused": "AUDIO PAUSED", "buzzer": "BUZZ"}


class TerminalBackend(GpioBackend):
    """Lights in the console. On a terminal: one status line redrawn in place on every change.
    Otherwise (a log, a pipe): one line whenever a light's pattern changes, not every blink."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_patterns: dict[str, str] = {}
        self._lock = threading.Lock()

    def _write(self, pin: int, state: bool) -> None:
        if self.tty:
            self._draw()

    def _draw(self) -> None:
        parts = []
        for pin, name in self.names.items():
            if pin in self._inputs:
                continue
            label = _LABEL.get(name, name.upper())
            on = self.levels.get(pin, False)
            parts.append(f"\x1b[1;{_ANSI.get(name, '0')}m\u25cf {label}\x1b[0m" if on
                         else f"\x1b[2m\u25cb {label}\x1b[0m")
        self._put("\r\x1b[2K" + "  ".join(parts))

    def describe(self, patterns: dict[str, str]) -> None:
        if self.tty or patterns == self._last_patterns:
            return
        self._last_patterns = dict(patterns)
        self._put("lights: " + " ".join(f"{k}={v}" for k, v in patterns.items()) + "\n")

    def _put(self, text: str) -> None:
        with self._lock:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed console must not stop the lights thread

    def close(self) -> None:
        if not self._closed and self.tty:
            self._put("\n")
        super().close()


BACKENDS = ("rpi", "terminal", "file", "recording", "none")


def open_backend(name: str, **kw: Any) -> GpioBackend:
    """Open a backend by its config name: rpi, terminal (stream=), file (path=), recording, none."""
    if name == "rpi":
        return RpiBackend(**kw)
    if name == "terminal":
        return TerminalBackend(**kw)
    if name == "file":
        return FileBackend(**kw)
    if name == "recording":
        return RecordingBackend()
    if name == "none":
        return NullBackend()
    raise ConfigError(f"lights.backend: got {name!r}, allowed: {', '.join(map(repr, BACKENDS))}.")


def backend_from_settings(s: Any) -> GpioBackend:
    """The backend a `LightsSettings` asks for (file backend at s.file_path)."""
    return open_backend(s.backend, path=s.file_path) if s.backend == "file" else open_backend(
        s.backend)

"""The acknowledge / audio-pause push button (pull-up, switch to ground: pressed reads low).

Debounced by sampling: a level counts only after it has been stable for `debounce_s`. A short
press (released before `long_press_s`) calls `on_short` on release; holding calls `on_long` as soon
as `long_press_s` is reached, so the operator feels the pause take effect, and the release after a
long press does nothing. Sampling (every `poll_s`) rather than edge interrupts behaves the same
on every backend; the cost on a Pi is ~200 GPIO reads a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from appliance.outputs.gpio import GpioBackend
from appliance.settings.lights import LightsSettings

log = logging.getLogger(__name__)


class Button:
    def __init__(
        self,
        backend: GpioBackend,
        pin: int,
        on_short: Callable[[], object],
        on_long: Callable[[], object],
        *,
        debounce_s: float = 0.03,
        long_press_s: float = 1.5,
        poll_s: float = 0.005,
        name: str = "button",
    ) -> None:
        self.backend = backend
        self.pin = pin
        self._on_short = on_short
        self._on_long = on_long
        self.debounce_s = debounce_s
        self.long_press_s = long_press_s
        self._poll_s = poll_s
        self.n_short = 0
        self.n_long = 0
        self.n_errors = 0
        backend.setup_input(pin, name, pull_up=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(
        cls, s: LightsSettings, backend: GpioBackend,
        on_short: Callable[[], object], on_long: Callable[[], object],
    ) -> Button:
        return cls(backend, s.button_pin, on_short, on_long,
                   debounce_s=s.button_debounce_ms / 1000.0, long_press_s=s.button_long_press_s)

    def close(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(timeout=2.0)

    def __enter__(self) -> Button:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        stable = candidate = False  # pressed?
        since = pressed_at = time.monotonic()
        long_fired = False
        next_t = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                raw = not self.backend.input(self.pin)
            except Exception as e:
                self.n_errors += 1
                if self.n_errors == 1:
                    log.error("button: reading pin %d failed: %s (further errors counted)",
                              self.pin, e)
                raw = False
            if raw != candidate:
                candidate, since = raw, now
            elif candidate != stable and now - since >= self.debounce_s:
                stable = candidate
                if stable:
                    pressed_at, long_fired = since, False
                elif not long_fired:
                    self.n_short += 1
                    self._call(self._on_short)
            if stable and not long_fired and now - pressed_at >= self.long_press_s:
                long_fired = True
                self.n_long += 1
                self._call(self._on_long)
            next_t += self._poll_s
            delay = next_t - time.monotonic()
            if delay < 0:  # fell behind (busy machine): don't try to catch up
                next_t, delay = time.monotonic(), 0.0
            self._stop.wait(delay)

    def _call(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except Exception:  # a failing handler must not kill the button
            self.n_errors += 1
            log.exception("button: handler %r failed", fn)

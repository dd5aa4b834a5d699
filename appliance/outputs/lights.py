"""Alert lights (IEC 60601-1-8 priority encoding) and the buzzer, on their own thread.

What the lamps show (docs/alarms.md):
- red     flashing `high_flash_hz` (2 Hz, 50 %)   the most urgent alarm is high priority
- yellow  flashing `medium_flash_hz` (0.5 Hz)     ... is medium priority
- yellow  steady                                  ... is low priority and physiological
- cyan    steady                                  at least one technical alarm is present, so a
                                                  technical alarm never passes for the patient:
                                                  red without cyan is always the patient
- green   steady while monitoring is renewed (`set_monitoring(True)` at least every
          `monitoring_timeout_s`); dark otherwise -- silence must never look like safety
- paused  steady while audio is paused (the LED in the acknowledge button)
- buzzer  the priority's burst (appliance.outputs.buzzer) unless paused or acknowledged

The thread sleeps to absolute deadlines computed from each pattern's start, so the rhythm does not
drift and survives a busy analysis thread. It never waits on anything but its own clock.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from appliance.alarms.events import QUIET, Display
from appliance.conditions import Priority
from appliance.outputs.buzzer import burst
from appliance.outputs.gpio import GpioBackend
from appliance.outputs.pattern import OFF, ON, Pattern, flash
from appliance.settings.lights import LightsSettings

log = logging.getLogger(__name__)

LAMPS = ("red", "yellow", "cyan", "green", "paused")
OUTPUTS = (*LAMPS, "buzzer")
WAKE_EARLY_S = 0.0005  # treat an edge this close as due, instead of spinning on it


class Lights:
    """Drive the lamps and buzzer on `backend`. `pins` maps names in OUTPUTS to BCM pins (absent
    or negative = not fitted). With `source` (e.g. `manager.display`) the thread polls it every
    `poll_s` so acknowledgements and pause time-outs show without anyone calling `show()`.

    `close()` turns everything off and stops the thread; the caller closes the backend (a button
    may share it).
    """

    def __init__(
        self,
        backend: GpioBackend,
        pins: dict[str, int],
        *,
        high_flash_hz: float = 2.0,
        medium_flash_hz: float = 0.5,
        flash_duty: float = 0.5,
        monitoring_timeout_s: float = 1.0,
        buzzer_repeat_s: float = 3.0,
        active_high: bool = True,
        source: Callable[[], Display] | None = None,
        poll_s: float = 0.05,
    ) -> None:
        unknown = set(pins) - set(OUTPUTS)
        if unknown:
            raise ValueError(f"Lights pins: unknown names {sorted(unknown)}; allowed: {OUTPUTS}.")
        self.backend = backend
        self.pins = {n: p for n, p in pins.items() if p is not None and p >= 0}
        self._high = flash(high_flash_hz, flash_duty)
        self._medium = flash(medium_flash_hz, flash_duty)
        self._monitoring_timeout_s = monitoring_timeout_s
        self._buzzer_repeat_s = buzzer_repeat_s
        self._active_high = active_high
        self._source = source
        self._poll_s = poll_s
        self.n_errors = 0

        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        now = time.monotonic()
        self._patterns: dict[str, Pattern] = {n: OFF for n in self.pins}
        self._start_s: dict[str, float] = {n: now for n in self.pins}
        self._monitoring_until = 0.0
        self._override: tuple[float, list[tuple[float, float, frozenset[str]]]] | None = None
        self.display = QUIET
        for name, pin in self.pins.items():
            backend.setup_output(pin, name, initial=not active_high)
        self._levels = {n: False for n in self.pins}
        self._labels: dict[str, str] = {}
        self._thread = threading.Thread(target=self._run, name="lights", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(
        cls, s: LightsSettings, backend: GpioBackend, source: Callable[[], Display] | None = None
    ) -> Lights:
        pins = {n: getattr(s, f"{n}_pin") for n in OUTPUTS}
        return cls(
            backend, pins, high_flash_hz=s.high_flash_hz, medium_flash_hz=s.medium_flash_hz,
            flash_duty=s.flash_duty, monitoring_timeout_s=s.monitoring_timeout_s,
            buzzer_repeat_s=s.buzzer_repeat_s, active_high=s.active_high, source=source,
        )

    # ----------------------------------------------------------------- inputs
    def show(self, display: Display) -> None:
        """Show `display`. A lamp whose pattern does not change keeps its rhythm."""
        patterns = self.patterns_for(display)
        now = time.monotonic()
        with self._lock:
            self.display = display
            for name, pat in patterns.items():
                if name in self._patterns and self._patterns[name] != pat:
                    self._patterns[name] = pat
                    self._start_s[name] = now
        self._wake.set()

    def set_monitoring(self, ok: bool) -> None:
        """Renew (True) or drop (False) the green light. Unrenewed, it goes dark on its own."""
        with self._lock:
            self._monitoring_until = time.monotonic() + self._monitoring_timeout_s if ok else 0.0
        self._wake.set()

    def lamp_test(self, duration_s: float = 1.5, wait: bool = True) -> None:
        """Every lamp on together, then each in turn (so a swapped wire shows); buzzer chirps."""
        lamps = [n for n in LAMPS if n in self.pins]
        step_s = duration_s / 2 / max(1, len(lamps))
        steps = [(0.0, duration_s / 2, frozenset(lamps))]
        if "buzzer" in self.pins:
            steps.append((0.0, min(0.1, duration_s / 2), frozenset(["buzzer"])))
        for i, name in enumerate(lamps):
            a = duration_s / 2 + i * step_s
            steps.append((a, a + step_s, frozenset([name])))
        t0 = time.monotonic()
        with self._lock:
            self._override = (t0, steps)
        self._wake.set()
        if wait:
            time.sleep(max(0.0, t0 + duration_s - time.monotonic()) + 0.01)

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=2.0)
        for name in self.pins:
            self._write(name, False)

    def __enter__(self) -> Lights:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- mapping
    def patterns_for(self, d: Display) -> dict[str, Pattern]:
        """The IEC encoding: one pattern per output for `d` (green is handled separately)."""
        yellow = OFF
        if d.highest == Priority.MEDIUM:
            yellow = self._medium
        elif d.highest == Priority.LOW and d.highest_physiological == Priority.LOW:
            yellow = ON
        return {
            "red": self._high if d.highest == Priority.HIGH else OFF,
            "yellow": yellow,
            "cyan": ON if d.highest_technical is not None else OFF,
            "paused": ON if d.audio_paused else OFF,
            "buzzer": burst(d.audio, self._buzzer_repeat_s) or OFF,
        }

    # ----------------------------------------------------------------- thread
    def _run(self) -> None:
        next_poll = time.monotonic()
        while not self._stop.is_set():
            self._wake.clear()  # before the step: a show() during it wakes the next wait at once
            try:
                now = time.monotonic()
                if self._source is not None and now >= next_poll:
                    self.show(self._source())
                    next_poll = now + self._poll_s
                deadline = self._step(now + WAKE_EARLY_S)
                if self._source is not None:
                    deadline = min(deadline, next_poll)
                timeout = deadline - time.monotonic()
            except Exception:  # the lights must keep going whatever one step did
                self.n_errors += 1
                log.exception("lights: step failed")
                timeout = 0.05
            # never spin: under SCHED_FIFO (lights process) a busy loop would starve the machine
            self._wake.wait(min(max(timeout, 0.0002), 1.0))

    def _step(self, now: float) -> float:
        """Write every output's level at `now`; return the next deadline."""
        with self._lock:
            patterns = dict(self._patterns)
            starts = dict(self._start_s)
            monitoring_until = self._monitoring_until
            override = self._override
            if override is not None and now >= override[0] + max(b for _, b, _ in override[1]):
                self._override = override = None
        if "green" in patterns:
            patterns["green"] = ON if now < monitoring_until else OFF
        deadline = math.inf
        if override is not None:
            t0, steps = override
            phase = now - t0
            on = set().union(*(names for a, b, names in steps if a <= phase < b))
            levels = {n: n in on for n in self.pins}
            edges = [t0 + x for a, b, _ in steps for x in (a, b) if t0 + x > now]
            deadline = min(edges, default=now + 0.05)
        else:
            levels = {}
            for name, pat in patterns.items():
                phase = now - starts[name]
                levels[name] = pat.level(phase)
                deadline = min(deadline, starts[name] + pat.next_edge(phase))
            if now < monitoring_until:
                deadline = min(deadline, monitoring_until)
        for name, level in levels.items():
            if level != self._levels.get(name):
                self._write(name, level)
        labels = {n: p.label for n, p in patterns.items()}
        if labels != self._labels:
            self._labels = labels
            self.backend.describe(labels)
        return deadline

    def _write(self, name: str, level: bool) -> None:
        try:
            self.backend.output(self.pins[name], level == self._active_high)
            self._levels[name] = level
        except Exception as e:
            self.n_errors += 1
            if self.n_errors == 1:
                log.error("lights: writing %s failed: %s (further errors counted)", name, e)

    def describe(self) -> dict[str, str]:
        """What each output is doing now, e.g. {'red': 'flash 2 Hz', 'green': 'on'}."""
        return dict(self._labels)

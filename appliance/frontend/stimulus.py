"""Stimulus timing: when each site is stimulated, and a GPIO scheduler that triggers an external
isolated stimulator.

`Interleaver` is the plan shared by the simulated patient and the real scheduler: each site at its
own rate, sites of equal rate evenly interleaved, optional uniform jitter, and never two stimuli
closer than `min_gap_s` (a colliding stimulus waits; the nominal grid does not drift).

`StimulusScheduler` drives one Pi GPIO output per site (BCM numbering) through an isolator to the
stimulator's trigger input. Each line is looped back into a front-end input (ADS1299 GPIO1..4 or a
Cyton digital pin) so the ADC latches the stimulus with the sample it happened on: analysis never
trusts this thread's timing, only the latched bit. Wiring: hw/stimulus.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from appliance.errors import ConfigError


class Interleaver:
    """Stimulus times (s from start) for sites at `rates_hz`, in time order.

    Site i's nominal times are start_s + i / (n_sites * fastest_rate) + k / rate_i; jitter adds
    uniform ±jitter_s (capped at 40 % of the site's period so pulses keep their order).
    """

    def __init__(self, rates_hz: Sequence[float], min_gap_s: float, jitter_s: float = 0.0,
                 start_s: float = 0.1, rng: np.random.Generator | None = None) -> None:
        self.rates_hz = np.asarray(rates_hz, dtype=float)
        if np.any(self.rates_hz <= 0):
            raise ValueError(f"rates_hz: got {list(rates_hz)}, allowed: every rate > 0")
        n = len(self.rates_hz)
        self.min_gap_s = float(min_gap_s)
        self.rng = rng or np.random.default_rng(0)
        fastest = float(self.rates_hz.max()) if n else 1.0
        self._phase = start_s + np.arange(n) / (n * fastest) if n else np.zeros(0)
        self._jitter = np.minimum(jitter_s, 0.4 / self.rates_hz) if n else np.zeros(0)
        self._k = np.zeros(n, dtype=np.int64)
        self._cand = self._phase + self._draw(np.arange(n))
        self._last = -np.inf

    def _draw(self, idx: np.ndarray) -> np.ndarray:
        j = self._jitter[idx]
        return self.rng.uniform(-1.0, 1.0, len(idx)) * j if np.any(j > 0) else np.zeros(len(idx))

    def next(self) -> tuple[float, int]:
        """(time_s, site index) of the next stimulus."""
        if not len(self.rates_hz):
            return np.inf, -1
        i = int(np.argmin(self._cand))
        t = max(float(self._cand[i]), self._last + self.min_gap_s)
        self._last = t
        self._k[i] += 1
        nominal = self._phase[i] + self._k[i] / self.rates_hz[i]
        self._cand[i] = nominal + self._draw(np.array([i]))[0]
        return t, i


class StimulusScheduler:
    """Trigger pulses on GPIO outputs, one pin per site, on its own thread.

    write_pin(pin, level) sets a BCM output (RPi.GPIO.output, or a recording stand-in);
    pins: site name -> BCM pin. Pulses are `pulse_ms` long and never overlap: the next pulse
    starts at least pulse_ms + guard_ms after the previous one started. `pulses` counts pulses per
    site, `late` those that started more than `late_ms` after their planned time.
    """

    def __init__(self, sites: Sequence[Any], write_pin: Callable[[int, bool], None],
                 pins: Mapping[str, int], pulse_ms: float = 1.0, jitter_ms: float = 0.0,
                 clock: Callable[[], float] = time.monotonic, guard_ms: float = 0.5,
                 late_ms: float = 2.0, seed: int | None = None) -> None:
        self.sites = list(sites)
        for s in self.sites:
            if s.name not in pins:
                raise ConfigError(f"frontend.stim_pins: no pin for site {s.name!r}; "
                                  f"give one BCM pin per site (have {dict(pins)}).")
        used = [pins[s.name] for s in self.sites]
        if len(set(used)) != len(used):
            raise ConfigError(f"frontend.stim_pins: got {dict(pins)}, allowed: one pin per site.")
        if pulse_ms <= 0:
            raise ConfigError(f"frontend.stim_pulse_ms: got {pulse_ms}, allowed: > 0.")
        self.write_pin = write_pin
        self.pins = [int(pins[s.name]) for s in self.sites]
        self.pulse_s = pulse_ms / 1000.0
        self.clock = clock
        self.late_s = late_ms / 1000.0
        self._plan = Interleaver([s.rate_hz for s in self.sites],
                                 min_gap_s=self.pulse_s + guard_ms / 1000.0,
                                 jitter_s=jitter_ms / 1000.0, start_s=0.05,
                                 rng=np.random.default_rng(seed))
        self.pulses = {s.name: 0 for s in self.sites}
        self.late = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_config(cls, cfg: Any, write_pin: Callable[[int, bool], None]) -> StimulusScheduler:
        """Sites from cfg.analysis.sites, pins/pulse/jitter from cfg.frontend.stim_*."""
        f = cfg.frontend
        return cls(cfg.analysis.sites, write_pin, f.stim_pins, pulse_ms=f.stim_pulse_ms,
                   jitter_ms=f.stim_jitter_ms)

    def start(self) -> None:
        if self._thread is not None:
            return
        for pin in self.pins:
            self.write_pin(pin, False)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="stimulus", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        t0 = self.clock()
        while not self._stop.is_set():
            t_s, i = self._plan.next()
            if i < 0:
                return
            due = t0 + t_s
            delay = due - self.clock()
            if delay > 0 and self._stop.wait(delay):
                return
            if self.clock() - due > self.late_s:
                self.late += 1
            pin = self.pins[i]
            self.write_pin(pin, True)
            try:
                end = self.clock() + self.pulse_s
                while (left := end - self.clock()) > 0:  # short pulse: sleep, never Event.wait
                    time.sleep(left)
            finally:
                self.write_pin(pin, False)
            self.pulses[self.sites[i].name] += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        for pin in self.pins:
            self.write_pin(pin, False)

    close = stop

    def __enter__(self) -> StimulusScheduler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

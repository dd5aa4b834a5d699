"""`SimulatedFrontEnd`: the simulated patient behind the `FrontEnd` protocol, seen through an
ADS1299-like ADC (24-bit steps at the configured gain, clipping at ±4.5 V / gain flagged as
saturation, lead-off from the scenario).

Scenario events that concern the equipment rather than the patient act here:
  stall    no block is delivered for `duration_s` of wall time (0: never again); the converter
           keeps running, so the samples of that time are lost (a gap in first_sample)
  dropout  `samples` samples are lost at `at_s` (a gap in first_sample, counted in health)
  duration_s > 0 ends the source: read_block returns None from then on (`finished` is True).
What it does not emulate: SPI, DRDY, frame corruption (the ADS1299 emulator does those).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from appliance.errors import FrontEndError
from appliance.frontend.block import FrontEndHealth, SampleBlock
from appliance.frontend.simulated.patient import Patient
from appliance.frontend.simulated.scenario import Scenario, load_scenario


class SimulatedFrontEnd:
    def __init__(self, patient: Patient, block_samples: int, gain: int = 24,
                 realtime: bool = True, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if block_samples < 1:
            raise FrontEndError(f"block_samples: got {block_samples}, allowed: >= 1.")
        self.patient = patient
        self.channel_names = patient.channel_names
        self.sample_rate_hz = patient.fs
        self.block_samples = int(block_samples)
        self.gain = int(gain)
        self.lsb_uv = 4.5e6 / gain / 2**23
        self.full_scale_uv = 4.5e6 / gain
        self.realtime = realtime
        self.clock = clock
        self.sleep = sleep
        self.health = FrontEndHealth()
        self.finished = False
        sc = patient.scenario
        self._end_sample = int(round(sc.duration_s * self.sample_rate_hz)) if sc.duration_s else 0
        self._stalls = [e for _, e in sc.of_type("stall")]
        self._dropouts = [e for _, e in sc.of_type("dropout")]
        self._next_sample = 0  # stream index of the next sample delivered
        self._t0: float | None = None
        self._stall_until: float | None = None  # wall clock end of the current stall
        self._stall_forever = False

    @classmethod
    def from_config(cls, cfg: Any, scenario: Scenario | None = None,
                    realtime: bool | None = None) -> SimulatedFrontEnd:
        f = cfg.frontend
        if scenario is None and f.scenario:
            scenario = load_scenario(f.scenario)
        patient = Patient(f.channels, f.sample_rate_hz, cfg.analysis.sites, scenario, f.seed)
        n = max(1, int(round(f.block_ms * f.sample_rate_hz / 1000.0)))
        return cls(patient, n, gain=f.gain, realtime=f.realtime if realtime is None else realtime)

    def start(self) -> None:
        self._t0 = self.clock() - self._next_sample / self.sample_rate_hz
        self.health.connected = True

    def _skip(self, n: int) -> None:
        """Lose n samples: the patient lives on, the reader never sees them."""
        while n > 0:
            k = min(n, 1 << 16)
            self.patient.generate(k)
            n -= k
            self._next_sample += k

    def _due_equipment_events(self, end: int) -> None:
        fs = self.sample_rate_hz
        while self._dropouts and self._dropouts[0].at_s * fs < end:
            e = self._dropouts.pop(0)
            self._skip(e.samples)
            self.health.missed_samples += e.samples
        if self._stalls and self._stalls[0].at_s * fs < end and self._stall_until is None:
            e = self._stalls.pop(0)
            self._stall_forever = e.duration_s == 0
            self._stall_until = self.clock() + e.duration_s

    def read_block(self, timeout_s: float | None = None) -> SampleBlock | None:
        if self._t0 is None:
            raise FrontEndError("simulated front end: read_block() before start().")
        if self.finished:
            return None
        fs = self.sample_rate_hz
        self._due_equipment_events(self._next_sample + self.block_samples)
        n = self.block_samples
        if self._end_sample:
            n = min(n, self._end_sample - self._next_sample)
            if n <= 0:
                self.finished = True
                return None
        if self._stall_until is not None:
            wait = np.inf if self._stall_forever else self._stall_until - self.clock()
            if wait > 0:
                self.sleep(min(wait, 1.0 if timeout_s is None else timeout_s))
                if self._stall_forever or self.clock() < self._stall_until:
                    return None
            self._stall_until = None
            lost = int((self.clock() - self._t0) * fs) - self._next_sample - n
            if self.realtime and lost > 0:  # the converter kept running meanwhile
                self._skip(lost)
                self.health.missed_samples += lost
            self.health.stalls += 1
        first = self._next_sample
        if self.realtime:
            due = self._t0 + (first + n) / fs
            wait = due - self.clock()
            if timeout_s is not None and wait > timeout_s:
                self.sleep(max(timeout_s, 0.0))
                return None
            if wait > 0:
                self.sleep(wait)
        uv, trigger = self.patient.generate(n)
        lead_off = self.patient.lead_off_span(first / fs, (first + n) / fs)
        codes = np.clip(np.round(uv / self.lsb_uv), -(2**23), 2**23 - 1)
        saturated = (codes == 2**23 - 1) | (codes == -(2**23))
        self._next_sample = first + n
        self.health.samples += n
        return SampleBlock(codes * self.lsb_uv, trigger, saturated, lead_off, first, fs,
                           self.clock())

    def stop(self) -> None:
        self.health.connected = False

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> SimulatedFrontEnd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Stimulus timing: the interleaving plan, and the GPIO scheduler driving a recording pin
stand-in (every transition with its monotonic timestamp, as a logic analyser would see it)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from appliance.errors import ConfigError
from appliance.frontend.stimulus import Interleaver, StimulusScheduler
from appliance.settings.analysis import SiteSettings


class PinRecorder:
    """Stands in for RPi.GPIO.output: records (t_monotonic, pin, level); refuses to raise a
    second pin while one is high, as the isolator's single trigger line would merge them."""

    def __init__(self) -> None:
        self.log: list[tuple[float, int, bool]] = []
        self.high: set[int] = set()
        self.overlaps = 0
        self.lock = threading.Lock()

    def __call__(self, pin: int, level: bool) -> None:
        with self.lock:
            if level and self.high - {pin}:
                self.overlaps += 1
            (self.high.add if level else self.high.discard)(pin)
            self.log.append((time.monotonic(), pin, level))

    def rises(self, pin: int) -> np.ndarray:
        return np.array([t for t, p, lv in self.log if p == pin and lv])

    def pulses_ms(self, pin: int) -> np.ndarray:
        ev = [(t, lv) for t, p, lv in self.log if p == pin]
        return np.array([(b[0] - a[0]) * 1000 for a, b in zip(ev, ev[1:], strict=False)
                         if a[1] and not b[1]])


def test_interleaver_rates_gap_and_even_interleave():
    plan = Interleaver([4.7, 4.7, 2.3], min_gap_s=0.002)
    ev = [plan.next() for _ in range(2000)]
    t = np.array([e[0] for e in ev])
    site = np.array([e[1] for e in ev])
    assert np.all(np.diff(t) >= 0.002 - 1e-12)
    for i, rate in enumerate((4.7, 4.7, 2.3)):
        ti = t[site == i]
        assert len(ti) / (t[-1] - t[0]) == pytest.approx(rate, rel=0.02)
    a, b = t[site == 0][:50], t[site == 1][:50]
    assert np.allclose((b - a) * 4.7 % 1.0, 1 / 3, atol=0.01)  # evenly spread, not bunched


def test_interleaver_jitter_stays_in_bounds_and_keeps_the_rate():
    plan = Interleaver([5.0], min_gap_s=0.001, jitter_s=0.010, rng=np.random.default_rng(1))
    t = np.array([plan.next()[0] for _ in range(500)])
    dev = t - (0.1 + np.arange(500) / 5.0)
    assert np.all(np.abs(dev) <= 0.010 + 1e-12) and dev.std() > 0.004  # uniform ±10 ms
    assert (t[-1] - t[0]) / 499 == pytest.approx(0.2, rel=0.001)


def test_interleaver_resolves_collisions_without_drift():
    plan = Interleaver([10.0, 7.0], min_gap_s=0.02)  # rates beat: pulses meet now and then
    ev = [plan.next() for _ in range(1700)]
    t = np.array([e[0] for e in ev])
    site = np.array([e[1] for e in ev])
    assert np.all(np.diff(t) >= 0.02 - 1e-12)
    pushed = 0
    for i, rate in enumerate((10.0, 7.0)):
        ti = t[site == i]
        nominal = ti[0] + np.arange(len(ti)) / rate
        late = ti - nominal
        assert np.all(late >= -1e-12) and np.all(late <= 0.02 + 1e-12)  # waits, never drifts
        pushed += np.count_nonzero(late > 1e-9)
    assert pushed > 10  # the collision path really ran


def test_scheduler_drives_each_pin_at_its_rate_without_overlap():
    sites = [SiteSettings("L median", "ssep_upper", (), 0, 23.0),
             SiteSettings("R median", "ssep_upper", (), 1, 23.0),
             SiteSettings("L tibial", "ssep_lower", (), 2, 11.0)]
    rec = PinRecorder()
    pins = {"L median": 17, "R median": 27, "L tibial": 22}
    with StimulusScheduler(sites, rec, pins, pulse_ms=1.0) as sch:
        time.sleep(1.5)
    assert rec.overlaps == 0
    assert all(not lv for _, _, lv in rec.log[-3:])  # every line low after stop
    for s in sites:
        r = rec.rises(pins[s.name])
        rate = (len(r) - 1) / (r[-1] - r[0])
        assert rate == pytest.approx(s.rate_hz, rel=0.05), s.name
        assert sch.pulses[s.name] == len(r)
        w = rec.pulses_ms(pins[s.name])
        assert np.median(w) == pytest.approx(1.0, abs=0.5)
    lm, rm = rec.rises(17), rec.rises(27)
    n = min(len(lm), len(rm))
    offset = np.median((rm[:n] - lm[:n]) * 23.0 % 1.0)
    assert 0.2 <= offset <= 0.45  # R median runs between L median pulses, not on top of them


def test_scheduler_jitter_bounds():
    site = [SiteSettings("L median", "ssep_upper", (), 0, 20.0)]
    rec = PinRecorder()
    with StimulusScheduler(site, rec, {"L median": 5}, pulse_ms=0.5, jitter_ms=10.0, seed=3):
        time.sleep(1.5)
    r = rec.rises(5)
    grid = r[0] + np.round((r - r[0]) * 20.0) / 20.0
    dev_ms = (r - grid) * 1000
    # ±10 ms of planned jitter (relative to the first pulse, itself jittered), plus thread wake-up
    # latency on a loaded machine
    assert np.all(np.abs(dev_ms) <= 20.0 + 8.0)
    assert dev_ms.std() > 2.0  # the jitter is really there


def test_scheduler_needs_a_pin_per_site():
    sites = [SiteSettings("L median", "ssep_upper", (), 0, 4.7),
             SiteSettings("R median", "ssep_upper", (), 1, 4.7)]
    with pytest.raises(ConfigError, match="R median"):
        StimulusScheduler(sites, PinRecorder(), {"L median": 17})
    with pytest.raises(ConfigError, match="one pin per site"):
        StimulusScheduler(sites, PinRecorder(), {"L median": 17, "R median": 17})


def test_scheduler_from_config(make_cfg):
    from dataclasses import replace

    cfg = make_cfg()
    pins = {"L median": 17, "R median": 27, "L tibial": 22}
    cfg = replace(cfg, frontend=replace(cfg.frontend, stim_pins=pins, stim_pulse_ms=0.2))
    sch = StimulusScheduler.from_config(cfg, PinRecorder())
    assert sch.pins == [17, 27, 22] and sch.pulse_s == pytest.approx(0.0002)

"""Analog input for the emulated ADS1299 built from a config: engineer C's simulated `Patient`
when it is importable, else a plain noise source with stimulus triggers (and a log line)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from appliance.config import Config

log = logging.getLogger(__name__)


class NoiseSource:
    """Gaussian background (µV RMS) on every channel and a one-sample trigger pulse on each
    site's `trigger_bit` at its `rate_hz`. A stand-in when the simulated patient is missing."""

    def __init__(self, n_channels: int, sample_rate_hz: float,
                 sites: tuple[Any, ...] = (), noise_uv_rms: float = 5.0, seed: int = 1) -> None:
        self.n_channels = n_channels
        self.fs = sample_rate_hz
        self.rng = np.random.default_rng(seed)
        self.noise_uv_rms = noise_uv_rms
        self.periods = [(max(1, round(sample_rate_hz / s.rate_hz)), s.trigger_bit) for s in sites]
        self.n = 0

    @property
    def t_s(self) -> float:
        return self.n / self.fs

    def generate(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        uv = self.rng.normal(0.0, self.noise_uv_rms, (self.n_channels, n))
        idx = self.n + np.arange(n)
        trig = np.zeros(n, np.uint16)
        for period, bit in self.periods:
            trig[idx % period == 0] |= np.uint16(1 << bit)
        self.n += n
        return uv, trig


def patient_source(cfg: Config) -> Any:
    fe = cfg.frontend
    try:
        from appliance.frontend.simulated.patient import Patient
    except ImportError as e:
        log.warning("simulated patient not available (%s); emulated ADS1299 gets noise", e)
        return NoiseSource(len(fe.channels), fe.sample_rate_hz, cfg.analysis.sites, seed=fe.seed)
    scenario = None
    if fe.scenario:
        from appliance.frontend.simulated.scenario import load_scenario

        scenario = load_scenario(fe.scenario)
    return Patient(fe.channels, fe.sample_rate_hz, cfg.analysis.sites, scenario=scenario,
                   seed=fe.seed)

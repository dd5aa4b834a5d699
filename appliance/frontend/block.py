"""The one data type that leaves a front end: `SampleBlock`, and the `FrontEnd` protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class SampleBlock:
    """A run of consecutive samples from every channel.

    data_uv      (n_channels, n_samples) float64, microvolts
    trigger      (n_samples,) uint16: trigger/GPIO input bits latched with each sample
    saturated    (n_channels, n_samples) bool: ADC at full scale (0x7FFFFF / 0x800000)
    lead_off     (n_channels,) bool: lead-off reported for the electrode during the block
    first_sample index of the first sample since the stream started (counts missed samples too,
                 so `first_sample` of the next block == first_sample + n_samples unless samples
                 were lost)
    t_monotonic_s host monotonic clock when the last sample was read
    """

    data_uv: np.ndarray
    trigger: np.ndarray
    saturated: np.ndarray
    lead_off: np.ndarray
    first_sample: int
    sample_rate_hz: float
    t_monotonic_s: float

    @property
    def n_channels(self) -> int:
        return int(self.data_uv.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.data_uv.shape[1])

    @property
    def end_sample(self) -> int:
        return self.first_sample + self.n_samples


@dataclass
class FrontEndHealth:
    """Counters a front end keeps; the acquisition process reports them as health conditions."""

    samples: int = 0
    missed_samples: int = 0
    corrupt_frames: int = 0
    stalls: int = 0
    reconnects: int = 0
    connected: bool = False
    last_error: str = ""
    extra: dict[str, float] = field(default_factory=dict)


class FrontEnd(Protocol):
    """What every source of samples offers (ADS1299 over SPI, Cyton, simulated, recording)."""

    channel_names: tuple[str, ...]
    sample_rate_hz: float
    health: FrontEndHealth

    def start(self) -> None: ...

    def read_block(self, timeout_s: float | None = None) -> SampleBlock | None:
        """Next block, or None on timeout (a stall) or at the end of a finite source."""
        ...

    def stop(self) -> None: ...

    def close(self) -> None: ...

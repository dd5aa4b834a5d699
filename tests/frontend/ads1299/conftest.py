"""Fixtures for the ADS1299 tests: the register-level emulator (`sim_ads1299`) and a bus tap
that records every SPI transaction (like a logic analyser on the bus)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from appliance.frontend.ads1299.emulator import EmulatedBoard
from appliance.frontend.ads1299.frontend import Ads1299FrontEnd


class SpiTap:
    """Sits between a driver and an SPI device and records (mosi, miso) per transaction."""

    def __init__(self, dev) -> None:
        self.dev = dev
        self.log: list[tuple[list[int], list[int]]] = []

    @property
    def mode(self) -> int:
        return self.dev.mode

    @property
    def max_speed_hz(self) -> int:
        return self.dev.max_speed_hz

    def xfer2(self, data: list[int]) -> list[int]:
        out = self.dev.xfer2(data)
        self.log.append((list(data), list(out)))
        return out

    def readbytes(self, n: int) -> list[int]:
        return self.xfer2([0] * n)

    def close(self) -> None:
        self.dev.close()


class Ramp:
    """A deterministic source: channel c, sample i -> (c + 1) * 10 µV * (i % 100) - 500 µV;
    trigger bit 0 every 50 samples, bit 2 every 75."""

    def __init__(self, n_channels: int = 8) -> None:
        self.n_channels = n_channels
        self.i = 0

    def expected(self, idx: np.ndarray) -> np.ndarray:
        c = np.arange(self.n_channels)[:, None]
        return (c + 1) * 10.0 * (idx % 100) - 500.0

    def generate(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self.i + np.arange(n)
        self.i += n
        trig = ((idx % 50 == 0) * 1 | (idx % 75 == 0) * 4).astype(np.uint16)
        return self.expected(idx), trig


@pytest.fixture
def sim_ads1299() -> Callable[..., EmulatedBoard]:
    def make(source=None, rate_hz: float = 4000, n_chips: int = 1, noise_uv_rms: float = 0.0,
             **kw) -> EmulatedBoard:
        return EmulatedBoard(source, rate_hz, n_chips=n_chips, noise_uv_rms=noise_uv_rms, **kw)

    return make


@pytest.fixture
def make_frontend(sim_ads1299) -> Callable[..., tuple[Ads1299FrontEnd, EmulatedBoard]]:
    def make(n_channels: int = 8, rate_hz: int = 4000, gain: int = 24, source=None,
             block_ms: float = 16.0, **kw) -> tuple[Ads1299FrontEnd, EmulatedBoard]:
        board = sim_ads1299(source, rate_hz, n_chips=(n_channels + 7) // 8, **kw)
        names = tuple(f"ch{i + 1}" for i in range(n_channels))
        fe = Ads1299FrontEnd(list(board.chips), board.drdy(0), names, rate_hz, gain,
                             block_ms=block_ms, sleep=board.sleep, board=board)
        return fe, board

    return make

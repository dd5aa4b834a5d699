"""Helpers for the ADS1299 tests (a uniquely named module: conftest names clash across dirs)."""

from __future__ import annotations

import numpy as np


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
    trigger bit 0 every 50 samples, bit 2 on samples 7, 32, 57, ... (every 25)."""

    def __init__(self, n_channels: int = 8) -> None:
        self.n_channels = n_channels
        self.i = 0

    def expected(self, idx: np.ndarray) -> np.ndarray:
        c = np.arange(self.n_channels)[:, None]
        return (c + 1) * 10.0 * (idx % 100) - 500.0

    @staticmethod
    def phase(data_uv: np.ndarray) -> int:
        """Source index (mod 100) of the first sample: the chip converts the source from the
        moment START was sent, after the power-up waits, not from the source's sample 0."""
        return int(round((data_uv[0, 0] + 500.0) / 10.0)) % 100

    def generate(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self.i + np.arange(n)
        self.i += n
        trig = ((idx % 50 == 0) * 1 | (idx % 25 == 7) * 4).astype(np.uint16)
        return self.expected(idx), trig

"""What the Cyton emulator streams: a signal source turned into ADC counts and trigger bits.

A source has `take(n, gains) -> (counts (n, 8) int32, trigger (n,) uint16)` or None once it has
nothing more to send. `gains` (8,) are the PGA gains the host has set, so a µV source is
converted with the gain the board would apply.
"""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from appliance.frontend.cyton.protocol import N_CHANNELS, uv_per_count

_COUNT_MAX = (1 << 23) - 1


class SignalGenerator(Protocol):
    """A simulated patient: `generate(n) -> (uv (n_ch, n) float64, trigger (n,) uint16)`."""

    def generate(self, n: int) -> tuple[np.ndarray, np.ndarray]: ...


class Source(Protocol):
    def take(self, n: int, gains: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None: ...


class CountsSource:
    """Replays ADC counts exactly (e.g. a recording turned back into counts); ends after them.

    counts (n, 8) int, trigger (n,) uint16 or None. Gains are ignored: the counts are what the
    board sent.
    """

    def __init__(self, counts: np.ndarray, trigger: np.ndarray | None = None) -> None:
        counts = np.asarray(counts)
        if counts.ndim != 2 or counts.shape[1] != N_CHANNELS:
            raise ValueError(f"counts must be (n, {N_CHANNELS}), got shape {counts.shape}")
        self.counts = counts.astype(np.int32)
        n = counts.shape[0]
        self.trigger = np.zeros(n, np.uint16) if trigger is None else np.asarray(trigger, np.uint16)
        if self.trigger.shape != (n,):
            raise ValueError(f"trigger must be ({n},), got shape {self.trigger.shape}")
        self.pos = 0

    def take(self, n: int, gains: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        if self.pos >= self.counts.shape[0]:
            return None
        sl = slice(self.pos, self.pos + n)
        self.pos = min(self.pos + n, self.counts.shape[0])
        return self.counts[sl], self.trigger[sl]


class GeneratorSource:
    """µV from a simulated patient (or anything with `generate(n)`), converted to counts with
    each channel's gain and clipped at full scale as the ADS1299 would; never ends."""

    def __init__(self, generator: SignalGenerator) -> None:
        self.generator = generator

    def take(self, n: int, gains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        uv, trigger = self.generator.generate(n)
        uv = np.asarray(uv, np.float64)
        counts = np.zeros((n, N_CHANNELS), np.int32)
        k = min(uv.shape[0], N_CHANNELS)
        scale = np.array([uv_per_count(int(g)) for g in gains[:k]])
        counts[:, :k] = np.clip(np.round(uv[:k].T / scale), -_COUNT_MAX - 1, _COUNT_MAX)
        return counts, np.asarray(trigger, np.uint16)


class TestSignalSource:
    """A deterministic stand-in chosen explicitly (`ionm emulate cyton --source test`): a 10 Hz
    sine of 20 µV plus seeded 5 µV RMS noise per channel, and a trigger pulse on bit 0 at
    4.7 Hz (one sample wide) so a client can see the digital inputs move."""

    __test__ = False  # not a pytest class

    def __init__(self, seed: int = 1, sample_rate_hz: float = 250.0) -> None:
        self.rng = np.random.default_rng(seed)
        self.fs = sample_rate_hz
        self.n = 0

    def generate(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        t = (self.n + np.arange(n)) / self.fs
        uv = 20.0 * np.sin(2 * np.pi * 10.0 * t) + 5.0 * self.rng.standard_normal((N_CHANNELS, n))
        period = self.fs / 4.7
        idx = self.n + np.arange(n)
        trig = (np.floor(idx / period) != np.floor((idx - 1) / period)).astype(np.uint16)
        self.n += n
        return uv, trig


def load_openbci_txt(path: str) -> CountsSource:
    """An OpenBCI GUI raw text file (Cyton, gain 24) as the exact counts the board sent:
    µV / (4.5 / 24 / (2^23 - 1) * 1e6), rounded; digital columns D11..D18 -> trigger bits 0..4.
    """
    import warnings

    from appliance.errors import RecordingError

    if not os.path.isfile(path):
        raise RecordingError(f"OpenBCI text file {path!r}: no such file.")
    try:
        with warnings.catch_warnings():  # an empty table is reported below, not as a warning
            warnings.simplefilter("ignore", UserWarning)
            d = np.loadtxt(path, delimiter=",", comments="%", skiprows=5, usecols=range(19))
    except (OSError, ValueError) as e:
        raise RecordingError(f"OpenBCI text file {path!r}: cannot read it ({e}).") from e
    if d.ndim != 2 or d.shape[0] == 0:
        raise RecordingError(f"OpenBCI text file {path!r}: no samples after the header.")
    counts = np.round(d[:, 1:9] / uv_per_count(24)).astype(np.int32)
    digital = d[:, [13, 14, 15, 16, 18]] != 0  # D11, D12, D13, D17, D18
    trigger = (digital * (1 << np.arange(5))).sum(axis=1).astype(np.uint16)
    return CountsSource(counts, trigger)

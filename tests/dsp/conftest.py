"""Shared helpers for the dsp tests: seeded generators of blocks and synthetic responses."""

import numpy as np
import pytest


def random_splits(rng: np.random.Generator, n: int, max_block: int) -> list[tuple[int, int]]:
    """Cut range(n) into consecutive (start, stop) blocks of random sizes 1..max_block."""
    bounds = [0]
    while bounds[-1] < n:
        bounds.append(min(n, bounds[-1] + int(rng.integers(1, max_block + 1))))
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def gaussian_wave(t_ms: np.ndarray, latency_ms: float, amplitude_uv: float,
                  width_ms: float) -> np.ndarray:
    """A smooth evoked component: amplitude_uv * exp(-(t - latency)^2 / (2 width^2))."""
    return amplitude_uv * np.exp(-0.5 * ((t_ms - latency_ms) / width_ms) ** 2)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261127)


@pytest.fixture
def splits():
    return random_splits


@pytest.fixture
def wave():
    return gaussian_wave

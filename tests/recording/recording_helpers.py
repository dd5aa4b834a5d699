"""Helpers for the recording tests (a config and deterministic sample blocks); a unique module
name, not conftest.py, so `from recording_helpers import ...` never meets another conftest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from appliance.config import Config, from_dict
from appliance.frontend.block import SampleBlock

CHANNELS = ["C3'-Fz", "C4'-Fz", "Cz'-Fz"]


def recording_config(fs: int = 1000, **recording: Any) -> Config:
    rec = {"fsync": False, "disk_check_s": 0.1, "min_free_mb": 0.0, "stop_free_mb": 0.0}
    rec.update(recording)
    return from_dict({"frontend": {"channels": CHANNELS, "sample_rate_hz": fs, "gain": 24},
                      "recording": rec})


def expected_uv(first: int, n: int, n_ch: int = len(CHANNELS)) -> np.ndarray:
    """What blocks() puts in each channel: a function of the stream sample index."""
    idx = np.arange(first, first + n)
    return np.stack([50.0 * np.sin(idx / (5.0 + c)) + 10.0 * c for c in range(n_ch)])


def blocks(n_blocks: int, fs: int = 1000, block_n: int = 16, first: int = 0,
           stim_every: int = 250) -> Iterator[SampleBlock]:
    for b in range(n_blocks):
        start = first + b * block_n
        idx = np.arange(start, start + block_n)
        yield SampleBlock(
            data_uv=expected_uv(start, block_n),
            trigger=(idx % stim_every == 0).astype(np.uint16),
            saturated=np.zeros((len(CHANNELS), block_n), bool),
            lead_off=np.zeros(len(CHANNELS), bool),
            first_sample=start,
            sample_rate_hz=float(fs),
            t_monotonic_s=0.0,
        )

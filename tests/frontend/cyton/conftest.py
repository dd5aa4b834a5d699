"""Fixtures for the Cyton tests: emulators on real pseudo-terminals, the OpenBCI recording."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.frontend.cyton.emulator import CytonEmulator
from appliance.frontend.cyton.frontend import CytonFrontEnd
from appliance.frontend.cyton.protocol import uv_per_count

RECORDING = "openbci-cyton-250hz-blinks-jaw-alpha-15s.txt"
CHANNELS = tuple(f"ch{i}" for i in range(1, 9))


@pytest.fixture
def cyton_emulator(tmp_path: Path) -> Iterator[Callable[..., CytonEmulator]]:
    """Factory: `cyton_emulator(source, realtime=False, board_on=True)`, started, with its
    stable link in tmp_path; all are closed at teardown."""
    made: list[CytonEmulator] = []

    def make(source=None, **kw) -> CytonEmulator:
        kw.setdefault("realtime", False)
        kw.setdefault("link", tmp_path / f"ttyCYTON{len(made)}")
        emu = CytonEmulator(source, **kw).start()
        made.append(emu)
        return emu

    yield make
    for emu in made:
        emu.close()


@pytest.fixture
def cyton_front_end() -> Iterator[Callable[..., CytonFrontEnd]]:
    """Factory for our driver with short timeouts; all are closed at teardown."""
    made: list[CytonFrontEnd] = []

    def make(port: str, **kw) -> CytonFrontEnd:
        kw.setdefault("reply_timeout_s", 1.0)
        fe = CytonFrontEnd(str(port), kw.pop("channels", CHANNELS), **kw)
        made.append(fe)
        return fe

    yield make
    for fe in made:
        fe.close()


@pytest.fixture(scope="session")
def cyton_recording(recordings_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The OpenBCI recording read independently of our code: (uv (n, 8) as printed in the file,
    counts (n, 8) int = µV / 0.0223517 rounded, per data/README.md)."""
    table = np.loadtxt(
        recordings_dir / RECORDING, delimiter=",", comments="%", skiprows=5, usecols=range(9)
    )
    uv = table[:, 1:9]
    counts = np.round(uv / uv_per_count(24)).astype(np.int32)
    return uv, counts


def _read_all(fe: CytonFrontEnd, n_samples: int, timeout_s: float = 20.0) -> list:
    """Blocks from `fe` until n_samples have arrived (or a 0.5 s lull, or timeout_s)."""
    blocks, got = [], 0
    deadline = time.monotonic() + timeout_s
    while got < n_samples and time.monotonic() < deadline:
        b = fe.read_block(0.5)
        if b is None:
            break
        blocks.append(b)
        got += b.n_samples
    return blocks


@pytest.fixture
def read_blocks() -> Callable[..., list]:
    """`read_blocks(fe, n_samples, timeout_s=20)`: blocks until n_samples arrived or a lull."""
    return _read_all

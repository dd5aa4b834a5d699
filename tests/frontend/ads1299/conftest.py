"""Fixtures for the ADS1299 tests: the register-level emulator (`sim_ads1299`) and a front end
on it (`make_frontend`). The bus tap and test sources are in ads1299_helpers.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from appliance.frontend.ads1299.emulator import EmulatedBoard
from appliance.frontend.ads1299.frontend import Ads1299FrontEnd


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

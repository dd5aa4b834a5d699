"""Component windows per site (`components = { I = [from_ms, to_ms] }`): a BAEP whose wave I
comes at 1.0 ms, before the default 1.2-2.4 ms window, is measured where it is once the site
moves the window; the other waves keep their defaults."""

from __future__ import annotations

import pytest
from analysis_helpers import SynthSite, run_monitor, synth_stream, upper_cfg

from appliance.analysis.monitor import Monitor

FS = 16000
CH = ["Cz-A1"]
WAVES = [(1.0, 0.5, 0.15), (3.8, 0.4, 0.2), (5.8, 0.6, 0.2), (7.4, -0.5, 0.4)]  # I III V Vn
SITE = {"name": "L ear", "modality": "baep", "channels": CH, "rate_hz": 21.1,
        "n_sweeps": 200, "update_sweeps": 100}


def _wave_i_ms(site: dict) -> list[float | None]:
    data, trig = synth_stream(CH, FS, 12.0, [SynthSite(0, 21.1, {"Cz-A1": WAVES})],
                              noise_uv=1.0, mains_uv=2.0, seed=4)
    out = run_monitor(Monitor(upper_cfg(CH, [site], FS)), data, trig, FS)
    trends = [d for d in out if d["type"] == "trend"]
    assert trends
    for d in trends:  # wave V (the judged one) keeps its default window either way
        assert d["components"]["V"]["latency_ms"] == pytest.approx(5.8, abs=0.15)
    return [d["components"]["I"]["latency_ms"] for d in trends]  # None: not found


def test_analysis_component_window_per_site_finds_an_early_wave_i() -> None:
    moved = _wave_i_ms({**SITE, "components": {"I": [0.6, 1.8]}})
    assert all(v is not None and v == pytest.approx(1.0, abs=0.1) for v in moved), moved
    # the default window (1.2-2.4 ms) cannot see it there
    default = _wave_i_ms(SITE)
    assert all(v is None or v >= 1.2 for v in default), default

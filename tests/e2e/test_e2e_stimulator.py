"""frontend.stimulator: `ionm run` triggers the external stimulator from GPIO outputs at each
site's rate, interleaved so two sites never pulse together (the recording GPIO backend stands in
for the Pi's pins; on a Pi it is the RPi.GPIO API)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from e2e_helpers import SITE, config_dict, start_appliance

PINS = {"L median": 5, "R median": 6}


def test_e2e_stimulator_pulses_each_site_at_its_rate_without_overlap(tmp_path: Path) -> None:
    d = config_dict(tmp_path, None, realtime=True)
    d["frontend"].update(stimulator=True, stim_pins=PINS, stim_pulse_ms=1.0)
    d["recording"]["enabled"] = False
    app, backend, runner = start_appliance(d, tmp_path)
    try:
        time.sleep(4.0)
    finally:
        app.request_stop()
        runner.join(20.0)
    assert not runner.is_alive()
    rises = {}
    for site in PINS:
        t, state = backend.edges(f"stim:{site}")
        on, off = t[state], t[~state]
        assert on.size >= 20, (site, on.size)  # ~9.7 Hz for 3-4 s
        rate_hz = 1.0 / np.median(np.diff(on))
        assert abs(rate_hz - SITE["rate_hz"]) / SITE["rate_hz"] < 0.1, (site, rate_hz)
        off = off[off > on[0]]
        n = min(on.size, off.size)
        widths_s = off[:n] - on[:n]
        assert n >= on.size - 1 and np.all((widths_s > 0) & (widths_s < 0.05)), widths_s
        rises[site] = on
    # interleaved: a pulse of one site never starts while the other's is high (1 ms pulses)
    a, b = rises["L median"], rises["R median"]
    gap_s = np.min(np.abs(a[:, None] - b[None, :]))
    assert gap_s > 0.001, gap_s
    # all stimulator lines low after shutdown
    for site in PINS:
        assert backend.history(f"stim:{site}")[-1].state is False

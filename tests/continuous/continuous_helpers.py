"""Run the simulated patient (with a scenario) through the real Monitor block by block."""

from __future__ import annotations

from typing import Any

import numpy as np

from appliance import config
from appliance.analysis.monitor import Monitor
from appliance.frontend.block import SampleBlock
from appliance.frontend.simulated.patient import Patient
from appliance.frontend.simulated.scenario import from_dict as scenario_from_dict


def make_cfg(channels: list[str], fs_hz: int, analysis: dict[str, Any]):
    return config.from_dict({"frontend": {"channels": channels, "sample_rate_hz": fs_hz},
                             "analysis": analysis})


def run_patient(cfg, scenario: dict[str, Any], duration_s: float, seed: int = 1,
                block_ms: float = 16.0, patient: dict[str, Any] | None = None,
                stim_sites: tuple = ()):
    """-> (outputs as JSON dicts, the Monitor, the raw stream (n_ch, n)). `stim_sites`:
    extra stimulators the patient sees that the monitor does not analyse."""
    sc = scenario_from_dict({"name": "t", "patient": patient or {}, "event": scenario})
    fs = cfg.frontend.sample_rate_hz
    p = Patient(cfg.frontend.channels, fs, (*cfg.analysis.sites, *stim_sites), sc, seed=seed)
    mon = Monitor(cfg)
    n_block = int(round(block_ms * fs / 1e3))
    out, raw = [], []
    for k in range(int(duration_s * fs) // n_block):
        uv, trig = p.generate(n_block)
        raw.append(uv)
        blk = SampleBlock(uv, trig, np.zeros(uv.shape, bool), np.zeros(uv.shape[0], bool),
                          k * n_block, float(fs), 0.0)
        out += [o.to_json() for o in mon.push(blk)]
    return out, mon, np.concatenate(raw, axis=1)


def conditions(out: list[dict], prefix: str) -> list[dict]:
    return [o for o in out if o.get("type", "condition") == "condition"
            and "id" in o and o["id"].startswith(prefix)]


def first_raised(out: list[dict], cid: str) -> float | None:
    for o in out:
        if o.get("id") == cid and o.get("active"):
            return o["t_s"]
    return None

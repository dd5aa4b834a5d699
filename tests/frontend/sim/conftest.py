"""Fixtures for the simulated patient, its front end and the acquisition process."""

from __future__ import annotations

import pytest
from sim_helpers import SITES

from appliance import config


@pytest.fixture
def make_cfg(tmp_path):
    """make_cfg(scenario_toml="", **frontend) -> Config with the three test sites."""

    def make(scenario_toml: str = "", **frontend):
        fe = {"sample_rate_hz": 1000, "block_ms": 16.0, **frontend}
        if scenario_toml:
            p = tmp_path / "scenario.toml"
            p.write_text(scenario_toml)
            fe["scenario"] = str(p)
        sites = [
            {"name": s.name, "modality": s.modality, "channels": list(s.channels),
             "trigger_bit": s.trigger_bit, "rate_hz": s.rate_hz,
             "band_hz": [30.0, 400.0]}  # what 1 kSPS can analyse (the config is checked whole)
            for s in SITES
        ]
        return config.from_dict({"frontend": fe, "analysis": {"sites": sites}})

    return make

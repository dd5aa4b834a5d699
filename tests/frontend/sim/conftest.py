"""Fixtures for the simulated patient, its front end and the acquisition process."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import config
from appliance.settings.analysis import SiteSettings

CHANNELS = ("C3'-Fz", "C4'-Fz", "Cv5-Fz", "Erb-L", "Erb-R", "Cz'-Fz", "Pf-L", "Pf-R")
SITES = (
    SiteSettings("L median", "ssep_upper", ("C4'-Fz", "Cv5-Fz", "Erb-L"), 0, 4.7),
    SiteSettings("R median", "ssep_upper", ("C3'-Fz", "Cv5-Fz", "Erb-R"), 1, 4.7),
    SiteSettings("L tibial", "ssep_lower", ("Cz'-Fz", "Pf-L"), 2, 2.3),
)
SCENARIOS = Path(__file__).resolve().parents[3] / "deploy" / "scenarios"


@pytest.fixture
def sites() -> tuple[SiteSettings, ...]:
    return SITES


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
             "trigger_bit": s.trigger_bit, "rate_hz": s.rate_hz}
            for s in SITES
        ]
        return config.from_dict({"frontend": fe, "analysis": {"sites": sites}})

    return make

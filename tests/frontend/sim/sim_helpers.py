"""Shared constants of the simulated-patient tests (a unique module name: test modules of other
areas also import helpers, and `conftest` is ambiguous across directories)."""

from __future__ import annotations

from pathlib import Path

from appliance.settings.analysis import SiteSettings

CHANNELS = ("C3'-Fz", "C4'-Fz", "Cv5-Fz", "Erb-L", "Erb-R", "Cz'-Fz", "Pf-L", "Pf-R")
SITES = (
    SiteSettings("L median", "ssep_upper", ("C4'-Fz", "Cv5-Fz", "Erb-L"), 0, 4.7),
    SiteSettings("R median", "ssep_upper", ("C3'-Fz", "Cv5-Fz", "Erb-R"), 1, 4.7),
    SiteSettings("L tibial", "ssep_lower", ("Cz'-Fz", "Pf-L"), 2, 2.3),
)
SCENARIOS = Path(__file__).resolve().parents[3] / "deploy" / "scenarios"


def corrupting_ads1299(cfg):
    """The register-level ADS1299 emulator with 2 % of frames garbled (status nibble not 0xC),
    opened in the acquisition child by Acquisition(frontend_factory="sim_helpers:...")."""
    from appliance.frontend.ads1299.frontend import Ads1299FrontEnd

    fe = Ads1299FrontEnd.from_config(cfg, emulated=True)
    for chip in fe.board.chips:
        chip.inject(corrupt_rate=0.02)
    return fe


def garbled_ads1299(cfg):
    """The register-level ADS1299 emulator with every frame garbled: bytes, never a sample."""
    from appliance.frontend.ads1299.frontend import Ads1299FrontEnd

    fe = Ads1299FrontEnd.from_config(cfg, emulated=True)
    for chip in fe.board.chips:
        chip.inject(corrupt_rate=1.0)
    return fe

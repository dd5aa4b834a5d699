"""Modality name (as in `analysis.sites[].modality`) -> its defaults and criteria function."""

from __future__ import annotations

from collections.abc import Callable

from appliance.errors import ConfigError
from appliance.modalities import baep, ssep, tcmep
from appliance.modalities.base import Modality

Judge = Callable[[dict, dict, dict], list[str]]

MODALITIES: dict[str, tuple[Modality, Judge]] = {
    "ssep_upper": (ssep.SSEP_UPPER, ssep.judge),
    "ssep_lower": (ssep.SSEP_LOWER, ssep.judge),
    "baep": (baep.BAEP, baep.judge),
    "tcmep": (tcmep.TCMEP, tcmep.judge),
}


def get(name: str) -> tuple[Modality, Judge]:
    try:
        return MODALITIES[name]
    except KeyError:
        raise ConfigError(
            f"modality: got {name!r}, allowed: {', '.join(MODALITIES)}."
        ) from None

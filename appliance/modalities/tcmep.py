"""Transcranial motor evoked potentials (muscle): single sweeps, never averaged; optional D-wave.

Measures onset latency, peak-to-peak amplitude and area (MacDonald 2013, ISIN recommendations).
Criteria: disappearance always; > 80 % amplitude loss for spine, > 50 % for brain, brainstem and
facial nerve (case_type "cranial"); D-wave > 50 % loss (Sala 2006 / Kothbauer). Sources in
docs/clinical-defaults.md.
"""

from __future__ import annotations

import math

from appliance.modalities.base import Component, Measure, Modality

CASE_AMPLITUDE_RATIO_MIN = {"spine": 0.2, "cranial": 0.5}

TCMEP = Modality(
    name="tcmep",
    family="tcmep",
    window_ms=(5.0, 100.0),
    band_hz=(10.0, 1500.0),
    n_sweeps=1,
    update_sweeps=1,
    reject_uv=math.inf,
    default_role="muscle",
    measures={
        "muscle": Measure((Component("MEP", (8.0, 95.0), 0),), "MEP", onset=True),
        "epidural": Measure((Component("D", (1.5, 12.0), +1, 0.3),), "D"),
    },
    criteria={"amplitude_ratio_min": 0.2, "confirm_updates": 2},
    extra={"d_wave_sweeps": 20, "d_wave_ratio_min": 0.5},
)


def judge(now: dict, base: dict, crit: dict[str, float]) -> list[str]:
    """'lost' when no response is found; 'amplitude' when below the case type's fraction."""
    if not now["found"]:
        return ["lost"]
    if now["amplitude_uv"] < crit["amplitude_ratio_min"] * base["amplitude_uv"]:
        return ["amplitude"]
    return []

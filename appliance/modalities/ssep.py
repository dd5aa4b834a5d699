"""Somatosensory evoked potentials (median/ulnar: upper; posterior tibial: lower).

Defaults: window, band and sweep counts from ASNM/ACNS guidance (ACNS Guideline 11B, 2006;
Toleikis 2005); criteria amplitude < 50 % or latency > 110 % of baseline (Nuwer 1995). Sources in
docs/clinical-defaults.md.
"""

from __future__ import annotations

from appliance.modalities.base import Component, Measure, Modality

CRITERIA = {
    "amplitude_ratio_min": 0.5,  # alarm below 50 % of baseline amplitude
    "latency_ratio_max": 1.10,  # alarm above 110 % of baseline latency
    "peripheral_ratio_min": 0.5,  # Erb/popliteal below 50 %: stimulation, not the cord
    "confirm_updates": 2,  # a change must hold on two consecutive updates
}

# Criteria judge the template fit (docs/analysis.md): the latency over the last half of the
# moving window — a latency is measured far more precisely than an amplitude (SD ~0.3 ms
# against a 2 ms criterion on the simulated patient), so it can follow a change in half the
# time — and the amplitude over as many sweeps as bring its standard error to 0.1 of
# baseline (the 50 % criterion 5 SE away; at least those 50 %, at most 4 windows).
JUDGE_FRACTION = 0.5

SSEP_UPPER = Modality(
    name="ssep_upper",
    family="ssep",
    window_ms=(10.0, 50.0),
    band_hz=(30.0, 1000.0),
    n_sweeps=300,
    update_sweeps=50,
    reject_uv=100.0,
    default_role="cortical",
    measures={
        "peripheral": Measure((Component("N9", (7.0, 12.0), -1, 0.35),), "N9"),
        "cervical": Measure((Component("N13", (11.0, 16.0), -1, 0.5),), "N13"),
        "subcortical": Measure((Component("P14", (12.0, 17.0), +1, 0.4),), "P14"),
        "cortical": Measure(
            (Component("N20", (16.0, 25.0), -1, 1.0), Component("P25", (21.0, 33.0), +1, 1.5)),
            "N20", pair=("N20", "P25"),
        ),
    },
    criteria=dict(CRITERIA),
    judge_fraction=JUDGE_FRACTION,
)

SSEP_LOWER = Modality(
    name="ssep_lower",
    family="ssep",
    window_ms=(10.0, 100.0),
    band_hz=(30.0, 1000.0),
    n_sweeps=500,
    update_sweeps=50,
    reject_uv=100.0,
    default_role="cortical",
    measures={
        "peripheral": Measure((Component("N8", (6.0, 13.0), -1, 0.4),), "N8"),
        "subcortical": Measure((Component("N22", (18.0, 27.0), -1, 0.7),), "N22"),
        "cervical": Measure((Component("N30", (25.0, 36.0), -1, 0.7),), "N30"),
        "cortical": Measure(
            (Component("P37", (32.0, 46.0), +1, 1.0), Component("N45", (40.0, 58.0), -1, 1.2)),
            "P37", pair=("P37", "N45"),
        ),
    },
    criteria=dict(CRITERIA),
    judge_fraction=JUDGE_FRACTION,
)


def judge(now: dict, base: dict, crit: dict[str, float]) -> list[str]:
    """Criteria an SSEP measure violates: 'amplitude' and/or 'latency'.

    now/base: {"amplitude_uv", "latency_ms", "found"} of the channel's judged measure.
    """
    out = []
    if now["amplitude_uv"] < crit["amplitude_ratio_min"] * base["amplitude_uv"]:
        out.append("amplitude")
    if now["found"] and now["latency_ms"] > crit["latency_ratio_max"] * base["latency_ms"]:
        out.append("latency")
    return out

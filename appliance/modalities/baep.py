"""Brainstem auditory evoked potentials (click, alternating polarity).

Defaults: window -2..+12 ms, 100-3000 Hz, 1000 sweeps (ACNS Guideline 9C; Møller 2006);
criteria: wave V lost, or latency +1.0 ms together with amplitude -50 % (Polo 2004; Møller &
Møller 1989; James 2005). Sources in docs/clinical-defaults.md.
"""

from __future__ import annotations

from appliance.modalities.base import Component, Measure, Modality

_WAVES = (
    Component("I", (1.2, 2.4), +1, 0.1),
    Component("III", (3.0, 4.6), +1, 0.12),
    Component("V", (4.8, 7.4), +1, 0.12),
    Component("Vn", (6.0, 9.5), -1, 0.25),  # the trough after V: V amplitude is V - Vn
)

BAEP = Modality(
    name="baep",
    family="baep",
    window_ms=(2.0, 12.0),
    band_hz=(100.0, 3000.0),
    n_sweeps=1000,
    update_sweeps=250,
    reject_uv=60.0,
    default_role="subcortical",
    measures={"subcortical": Measure(_WAVES, "V", pair=("V", "Vn"))},
    criteria={
        "latency_shift_ms": 1.0,
        "shift_amplitude_ratio_min": 0.5,
        "amplitude_ratio_min": 0.0,  # wave V "lost" = not found; 0: no amplitude-only criterion
        "confirm_updates": 2,
    },
)


def judge(now: dict, base: dict, crit: dict[str, float]) -> list[str]:
    """'wave_v_lost' when V is not found; 'latency_amplitude' for +1.0 ms with -50 %."""
    if not now["found"]:
        return ["wave_v_lost"]
    out = []
    if now["amplitude_uv"] < crit["amplitude_ratio_min"] * base["amplitude_uv"]:
        out.append("amplitude")
    late = now["latency_ms"] - base["latency_ms"] > crit["latency_shift_ms"]
    small = now["amplitude_uv"] < crit["shift_amplitude_ratio_min"] * base["amplitude_uv"]
    if late and small:
        out.append("latency_amplitude")
    return out

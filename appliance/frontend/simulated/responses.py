"""Evoked responses of the simulated patient: which component appears on which channel for a site,
with what baseline latency and amplitude, and the waveform of one sweep.

Channel names are read the way a technologist writes them: the first electrode decides the place
("C4'-Fz" scalp right, "Cv5-Fz" cervical, "Erb-L" Erb's point left, "Pf-R" popliteal right,
"Cz-A1" has the left ear, "APB-L" a hand muscle); the site's side comes from its name
("L median", "Right tibial"). The mapping (docs/simulated-patient.md) is:

  ssep_upper   Erb same side: N9 · cervical: N13 · scalp opposite side: N20, P25
  ssep_lower   popliteal same side: N8 · lumbar: N22 · cervical: N30 ·
               scalp midline: P37, N45 (scalp same side: the same at 60 %)
  baep         a channel with the same-side ear/mastoid (A1/M1 left, A2/M2 right): I, III, V, Vn;
               with the other ear: III (50 %), V and Vn (80 %), no wave I
  tcmep        muscle same side: MEP (hand muscles onset 22 ms, leg muscles 32 ms)

A site's `channels` list restricts where its responses appear; a listed channel whose name is not
recognised gets the modality's main response (cortical for SSEP, I-V for BAEP, MEP), so generic
names ("ch1") still carry a response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ComponentSpec:
    """A peak as the generator draws it. amplitude_uv: baseline-to-peak magnitude (MEP:
    peak-to-peak); polarity -1 negative (N), +1 positive (P), 0 polyphasic (MEP);
    width_ms: Gaussian SD (MEP: burst duration); latency_ms: peak (MEP: onset)."""

    name: str
    role: str
    latency_ms: float
    amplitude_uv: float
    polarity: int
    width_ms: float


def _c(name: str, role: str, lat: float, amp: float, pol: int, width: float) -> ComponentSpec:
    return ComponentSpec(name, role, lat, amp, pol, width)


# Typical adult values under total intravenous anaesthesia (sources: docs/simulated-patient.md).
SSEP_UPPER = {
    "N9": _c("N9", "peripheral", 9.5, 3.5, -1, 0.7),
    "N13": _c("N13", "cervical", 13.3, 2.0, -1, 1.0),
    "N20": _c("N20", "cortical", 19.5, 1.3, -1, 1.2),
    "P25": _c("P25", "cortical", 25.0, 1.2, +1, 2.0),
}
SSEP_LOWER = {
    "N8": _c("N8", "peripheral", 8.5, 4.0, -1, 0.8),
    "N22": _c("N22", "subcortical", 22.0, 1.0, -1, 1.5),
    "N30": _c("N30", "cervical", 30.0, 0.8, -1, 1.5),
    "P37": _c("P37", "cortical", 37.5, 1.5, +1, 2.0),
    "N45": _c("N45", "cortical", 45.0, 1.5, -1, 2.5),
}
BAEP = {
    "I": _c("I", "peripheral", 1.6, 0.35, +1, 0.2),
    "III": _c("III", "subcortical", 3.7, 0.35, +1, 0.25),
    "V": _c("V", "subcortical", 5.6, 0.5, +1, 0.25),
    "Vn": _c("Vn", "subcortical", 7.0, 0.35, -1, 0.5),
}
MEP_UPPER = _c("MEP", "muscle", 22.0, 600.0, 0, 15.0)
MEP_LOWER = _c("MEP", "muscle", 32.0, 400.0, 0, 18.0)
MEP_OTHER = _c("MEP", "muscle", 28.0, 500.0, 0, 16.0)
MEP_ONSET_JITTER_MS = 0.8

_UPPER_MUSCLES = ("apb", "adm", "fdi", "thenar", "hypoth", "bic", "tric", "del", "ecr", "fcr",
                  "edc",
                  # cranial-nerve muscles of free-running EMG (facial, trigeminal, vagal)
                  "orb", "oculi", "oris", "ment", "mass", "nasal", "vocal")
_LOWER_MUSCLES = ("ta", "ah", "abh", "gast", "quad", "vl", "vm", "rf", "ehl", "sol", "ham", "pl")
_SCALP = re.compile(r"^(fp|af|fc|ft|cp|tp|po|f|c|p|o|t)(\d+|z)'?$")


@dataclass(frozen=True)
class Place:
    """Where a channel's first electrode sits: kind and side ('L', 'R', 'z' midline, '' unknown).
    `ear` is the side of an ear/mastoid electrode anywhere in the derivation ('' if none)."""

    kind: str  # scalp, cervical, erb, popliteal, lumbar, muscle_upper, muscle_lower, unknown
    side: str
    ear: str


def _side_token(tokens: list[str]) -> str:
    for tok in tokens:
        if tok in ("l", "left", "lt"):
            return "L"
        if tok in ("r", "right", "rt"):
            return "R"
    return ""


def place_of(channel: str) -> Place:
    tokens = [t for t in re.split(r"[-\s/_]+", channel.strip().lower()) if t]
    first = tokens[0] if tokens else ""
    ear = ""
    for tok in tokens:
        if re.fullmatch(r"(a|m)1|ear-?l|le", tok):
            ear = "L"
        elif re.fullmatch(r"(a|m)2|ear-?r|re", tok):
            ear = "R"
    side = _side_token(tokens[1:] + tokens[:1])
    m = _SCALP.match(first)
    if re.match(r"^(cv|c2s|c5s|c7s?|cerv|cs)", first):
        return Place("cervical", "z", ear)
    if re.match(r"^(erb|ep$|clav)", first):
        return Place("erb", side, ear)
    if re.match(r"^(pf|pop|knee)", first):
        return Place("popliteal", side, ear)
    if re.match(r"^(lp|t1[012]|l[1-5]$|lumb)", first):
        return Place("lumbar", "z", ear)
    if m:
        sd = "z" if m.group(2) == "z" else ("L" if int(m.group(2)) % 2 else "R")
        return Place("scalp", sd, ear)
    for names, kind in ((_UPPER_MUSCLES, "muscle_upper"), (_LOWER_MUSCLES, "muscle_lower")):
        if any(tok in names for tok in tokens):
            return Place(kind, side, ear)
    return Place("unknown", side, ear)


def site_side(site_name: str) -> str:
    """'L median' -> 'L', 'Right tibial' -> 'R', 'median' -> '' (either)."""
    tokens = [t for t in re.split(r"[-\s/_]+", site_name.strip().lower()) if t]
    return _side_token(tokens)


def _same(a: str, b: str) -> bool:
    return not a or not b or a == b


def _opposite(site: str, ch: str) -> bool:
    return ch in ("L", "R") and (not site or site != ch)


def components_for(modality: str, site_name: str, channel: str,
                   listed: bool) -> list[tuple[ComponentSpec, float]]:
    """(component, amplitude factor) pairs drawn on `channel` for a site. `listed`: the site names
    this channel explicitly (unrecognised names then get the main response)."""
    p, s = place_of(channel), site_side(site_name)
    if modality == "ssep_upper":
        if p.kind == "erb" and _same(s, p.side):
            return [(SSEP_UPPER["N9"], 1.0)]
        if p.kind == "cervical":
            return [(SSEP_UPPER["N13"], 1.0)]
        if (p.kind == "scalp" and _opposite(s, p.side)) or (p.kind == "unknown" and listed):
            return [(SSEP_UPPER["N20"], 1.0), (SSEP_UPPER["P25"], 1.0)]
    elif modality == "ssep_lower":
        if p.kind == "popliteal" and _same(s, p.side):
            return [(SSEP_LOWER["N8"], 1.0)]
        if p.kind == "lumbar":
            return [(SSEP_LOWER["N22"], 1.0)]
        if p.kind == "cervical":
            return [(SSEP_LOWER["N30"], 1.0)]
        cortical = [(SSEP_LOWER["P37"], 1.0), (SSEP_LOWER["N45"], 1.0)]
        if (p.kind == "scalp" and p.side == "z") or (p.kind == "unknown" and listed):
            return cortical
        if p.kind == "scalp" and s and p.side == s:
            return [(c, 0.6) for c, _ in cortical]
    elif modality == "baep":
        if (p.ear and _same(s, p.ear)) or (not p.ear and p.kind == "unknown" and listed):
            return [(c, 1.0) for c in BAEP.values()]
        if p.ear:  # the other ear: no wave I (no near-field nerve), smaller III, V nearly intact
            return [(BAEP["III"], 0.5), (BAEP["V"], 0.8), (BAEP["Vn"], 0.8)]
    elif modality == "tcmep":
        if p.kind.startswith("muscle") and _same(s, p.side):
            return [(MEP_UPPER if p.kind == "muscle_upper" else MEP_LOWER, 1.0)]
        if p.kind == "unknown" and listed:
            return [(MEP_OTHER, 1.0)]
    return []


def gaussian_wave(fs_hz: float, latency_ms: float, amplitude_uv: float, polarity: int,
                  width_ms: float) -> tuple[int, np.ndarray]:
    """One Gaussian peak: (first sample offset from the stimulus sample, values µV)."""
    lo = max(0, int(np.floor((latency_ms - 5 * width_ms) * fs_hz / 1000.0)))
    hi = int(np.ceil((latency_ms + 5 * width_ms) * fs_hz / 1000.0)) + 1
    t_ms = np.arange(lo, hi) * 1000.0 / fs_hz
    return lo, polarity * amplitude_uv * np.exp(-0.5 * ((t_ms - latency_ms) / width_ms) ** 2)


def mep_wave(fs_hz: float, onset_ms: float, amplitude_uv: float, duration_ms: float,
             rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """A polyphasic compound muscle action potential: 2-5 phases under an envelope that starts
    at `onset_ms` and lasts ~`duration_ms`; scaled to exactly `amplitude_uv` peak-to-peak."""
    lo = max(0, int(np.ceil(onset_ms * fs_hz / 1000.0)))
    t_ms = np.arange(lo, lo + int(duration_ms * 2 * fs_hz / 1000.0) + 1) * 1000.0 / fs_hz
    tau = np.clip(t_ms - onset_ms, 0.0, None)
    tp = duration_ms / 4.0
    env = (tau / tp) * np.exp(1.0 - tau / tp)
    f1, f2 = rng.uniform(70.0, 180.0), rng.uniform(150.0, 300.0)
    ph = rng.uniform(0, 2 * np.pi, 2)
    w = env * (np.sin(2 * np.pi * f1 * tau / 1000.0 + ph[0]) * (1 - 0.3)
               + 0.3 * np.sin(2 * np.pi * f2 * tau / 1000.0 + ph[1]))
    p2p = float(np.ptp(w)) if len(w) else 0.0
    return lo, (w * (amplitude_uv / p2p) if p2p > 0 else w)


def stim_artefact(fs_hz: float, amplitude_uv: float, tau_ms: float = 0.3) -> np.ndarray:
    """Stimulus artefact from the stimulus sample on: a fast exponential decay."""
    n = max(1, int(np.ceil(6 * tau_ms * fs_hz / 1000.0)))
    return amplitude_uv * np.exp(-np.arange(n) * 1000.0 / fs_hz / tau_ms)

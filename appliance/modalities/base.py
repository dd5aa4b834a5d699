"""What a modality is: its acquisition defaults, the components it measures on each channel role,
and the criteria it judges them by. One instance per modality in ssep.py, baep.py, tcmep.py."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Order matters: the first pattern that matches the first electrode of a channel name wins.
_ROLE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"^(erb|ep\b|clav)", "peripheral"),  # Erb's point (brachial plexus)
    (r"^(pf|pop|knee)", "peripheral"),  # popliteal fossa (tibial nerve)
    (r"^(lp|t1[012]|l[1-5]\b)", "subcortical"),  # lumbar potential
    (r"^(cv|c2s|c5s|c7|cerv|cs)", "cervical"),  # over the cervical spine
    (r"^(epi|dw|d-?wave)", "epidural"),
    (r"^(a[12]\b|m[12]\b|ear)", "subcortical"),  # BAEP ear/mastoid derivations
    (r"^(c[1-6z]|cp|p[3-4z]|fp?z)", "cortical"),  # scalp (C3', C4', Cz')
)


def role_from_name(channel: str, modality_default: str) -> str:
    """Role of a channel derived from its first electrode's name, else the modality's default.

    "Erb-L" -> peripheral, "Cv5-Fz" -> cervical, "C3'-Fz" -> cortical, "Pf-R" -> peripheral.
    """
    first = re.split(r"[-\s/]", channel.strip().lower(), maxsplit=1)[0]
    for pattern, role in _ROLE_PATTERNS:
        if re.match(pattern, first):
            return role
    return modality_default


@dataclass(frozen=True)
class Component:
    """A named peak searched for in `window_ms` with polarity +1 (positive) or -1 (negative).

    fit_ms: half-width of the least-squares parabola that refines the peak (about half the
    peak's SD): it averages out the broadband noise that would move a 3-sample estimate.
    """

    name: str
    window_ms: tuple[float, float]
    polarity: int
    fit_ms: float = 0.0


@dataclass(frozen=True)
class Measure:
    """What a channel of a role is judged by.

    components  peaks searched on that role's channels
    primary     component whose latency is judged
    pair        (a, b): amplitude judged is |a - b| (peak to peak, insensitive to offsets);
                None: the primary component's |amplitude| from the pre-stimulus baseline
    onset       tcMEP: onset latency / peak-to-peak / area in the primary component's window
    """

    components: tuple[Component, ...]
    primary: str
    pair: tuple[str, str] | None = None
    onset: bool = False


@dataclass(frozen=True)
class Modality:
    name: str
    family: str  # "ssep", "baep", "tcmep": prefix of condition ids
    window_ms: tuple[float, float]  # (pre, post) around the stimulus
    band_hz: tuple[float, float]
    n_sweeps: int  # moving-window length (1: single sweep, never averaged)
    update_sweeps: int  # accepted sweeps per update
    reject_uv: float  # |x| beyond this rejects a sweep (inf: never by amplitude)
    default_role: str
    measures: dict[str, Measure]
    criteria: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)
    # criteria judge a template fit of the baseline average (appliance/dsp/template.py):
    # the latency over the last judge_fraction x n_sweeps sweeps, the amplitude over as many
    # sweeps as make its standard error judge_se (at least those); 0: peaks are judged
    judge_fraction: float = 0.0
    judge_se: float = 0.1

    def measure_for(self, role: str) -> Measure:
        return self.measures.get(role) or self.measures[self.default_role]

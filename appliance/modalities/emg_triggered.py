"""Triggered EMG: the response to one pulse, and the threshold search (no I/O).

A pulse's response in `window_ms` after it: peak-to-peak per channel, a response when it reaches
`response_uv`, onset latency where the trace first leaves the pre-pulse noise. The threshold
search per labelled target ("L4 left screw"): ascending in `step_ma` from `start_ma` until a
response, then descending in `fine_step_ma` until none; the threshold is the lowest intensity
that gave a response (> max_ma when none up to it). Warning levels: docs/clinical-defaults.md
(Raynor et al. 2007; Calancie et al. 1994).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def response(seg: np.ndarray, pre: np.ndarray, fs_hz: float, t0_ms: float,
             response_uv: float) -> dict[str, float | bool | None]:
    """seg: (n,) the response window starting t0_ms after the pulse; pre: pre-pulse samples."""
    p2p = float(seg.max() - seg.min()) if seg.size else 0.0
    found = p2p >= response_uv
    onset_ms = None
    if found:
        level = float(np.median(pre)) if pre.size else 0.0
        noise = float(np.std(pre)) if pre.size else 0.0
        over = np.flatnonzero(np.abs(seg - level) > max(0.2 * response_uv, 5.0 * noise))
        onset_ms = t0_ms + float(over[0]) * 1e3 / fs_hz if over.size else None
    return {"peak_to_peak_uv": round(p2p, 1), "response": bool(found),
            "onset_ms": None if onset_ms is None else round(onset_ms, 2)}


@dataclass
class ThresholdSearch:
    target: str
    start_ma: float
    step_ma: float
    fine_step_ma: float
    max_ma: float
    intensity_ma: float = 0.0
    phase: str = "ascending"  # ascending, descending, done
    lowest_response_ma: float | None = None
    steps: list[tuple[float, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.intensity_ma = self.start_ma

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def observe(self, intensity_ma: float, responded: bool) -> None:
        """One pulse at intensity_ma; sets the next intensity or finishes."""
        self.steps.append((round(intensity_ma, 3), responded))
        if self.phase == "ascending":
            if responded:
                self.lowest_response_ma = intensity_ma
                self.phase = "descending"
                self.intensity_ma = intensity_ma - self.fine_step_ma
            else:
                self.intensity_ma = intensity_ma + self.step_ma
                if self.intensity_ma > self.max_ma + 1e-9:
                    self.phase = "done"
        elif self.phase == "descending":
            if responded:
                self.lowest_response_ma = intensity_ma
                self.intensity_ma = intensity_ma - self.fine_step_ma
            else:
                self.phase = "done"
        if self.phase == "descending" and self.intensity_ma < 0.5 * self.fine_step_ma:
            self.phase = "done"  # responds at the lowest step: threshold at most that

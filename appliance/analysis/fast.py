"""Fast detection for SSEP sites, on by default (analysis.fast_detection): the sweep-by-sweep
detector of appliance/detection/ fed by the site pipeline's own accepted sweeps, beside the
conventional averages and criteria.

`FastSite.push(sweeps, stim_s)` takes the accepted, conditioned sweeps of one update
(k, n_ch, n_times) with their stimulus times (s since stream start), cuts the site's cortical
channels to the detector's window and returns its `fast.<name>:<site>` Conditions (evidence +
"channel", the first cortical channel, and "channels", all of them). With several cortical
derivations the detector combines them (GLS across channels, docs/detection.md).
"""

from __future__ import annotations

import numpy as np

from appliance.analysis.plan import FAST_WINDOWS_MS, fast_enabled
from appliance.conditions import Condition
from appliance.detection.detector import DetectorSettings, SweepDetector

__all__ = ["FAST_WINDOWS_MS", "FastSite", "fast_enabled"]


class FastSite:
    """One site's fast detector on its cortical channels. Not thread-safe."""

    def __init__(self, plan, analysis, t_ms: np.ndarray, fs_sweep_hz: float) -> None:
        """plan_site has checked that the detector's window lies inside the sweep."""
        self.site = plan.site.name
        self.rows = [i for i, role in enumerate(plan.roles) if role == "cortical"]
        self.channels = [plan.site.channels[i] for i in self.rows]
        self.channel = self.channels[0]
        (lo, hi), shift_ms = FAST_WINDOWS_MS[plan.modality.name]
        self.window = np.flatnonzero((t_ms >= lo) & (t_ms < hi))
        cfg = DetectorSettings(rate_hz=plan.site.rate_hz,
                               baseline_sweeps=analysis.fast_baseline_sweeps,
                               latency_shift_ms=shift_ms)
        self.detector = SweepDetector(self.site, fs_sweep_hz, cfg)
        self.active: set[str] = set()

    def push(self, sweeps: np.ndarray, stim_s: np.ndarray) -> list[Condition]:
        if not len(sweeps):
            return []
        x = sweeps[:, self.rows][:, :, self.window]
        out = self.detector.push(x if len(self.rows) > 1 else x[:, 0], stim_s)
        for c in out:
            c.evidence["channel"] = self.channel
            c.evidence["channels"] = self.channels
            (self.active.add if c.active else self.active.discard)(c.id)
        return out

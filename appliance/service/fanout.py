"""Where each Monitor output goes: MQTT (queued, never blocking) and the case record."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from appliance.analysis.continuous import CONTINUOUS_TYPES
from appliance.analysis.outputs import WAVE_KEYS

log = logging.getLogger("ionm.service")

Record = Callable[[str, dict[str, Any]], None]


def route_output(d: dict[str, Any], mqtt: Any, record: Record, case_id: str | None) -> bool:
    """Publish and record one output (its to_json()); True when it is a new baseline."""
    kind = d.get("type")
    if kind == "trend":
        if mqtt is not None:
            mqtt.publish_trend(d)
        record("trend", d)
    elif kind == "waveform":
        if mqtt is not None:
            mqtt.publish_waveform(d)
        record("waveform", d)
    elif kind in CONTINUOUS_TYPES:  # EEG and EMG (appliance/analysis/continuous.py)
        if mqtt is not None:
            mqtt.publish_continuous(d)
        if kind != "eeg_raw":  # the raw EEG is in the BDF+ recording already
            record(kind, d)
    elif kind == "baseline":
        record("baseline", d)
        log.info("baseline %s %s: %.2f uV, %.2f ms", d.get("site"), d.get("channel"),
                 d.get("amplitude_uv") or 0.0, d.get("latency_ms") or 0.0,
                 extra={"CASE_ID": case_id or ""})
        return True
    return False


class BaselineBoard:
    """The retained `baseline/<modality>/<site>/<channel>` topics: each channel's baseline with
    the average it was taken from, so a console that joins mid-case overlays the real baseline.
    A baseline is taken from the update whose waveform came just before it (auto) or from the
    latest update (command): the last waveform of the channel is that average, unless the
    baseline carries its own (measured on the site's longer average)."""

    def __init__(self, modality_of: dict[str, str]) -> None:
        self.modality_of = modality_of
        self._last_wave: dict[tuple[str, str], dict[str, Any]] = {}
        self._published: set[tuple[str, str]] = set()

    def saw(self, d: dict[str, Any]) -> None:
        if d.get("type") == "waveform":
            self._last_wave[(d["site"], d["channel"])] = d

    def taken(self, d: dict[str, Any], mqtt: Any) -> None:
        key = (d["site"], d["channel"])
        if mqtt is None or key[0] not in self.modality_of:
            return
        # a baseline from the longer average carries that average; else the last waveform
        w = d.get("waveform") or self._last_wave.get(key)
        mqtt.publish_baseline({**d, "type": "baseline", "modality": self.modality_of[key[0]],
                               "waveform": {k: w[k] for k in WAVE_KEYS} if w else None})
        self._published.add(key)

    def clear(self, mqtt: Any, t_s: float) -> None:
        """A new case: every published baseline is gone (retained `cleared` replaces it)."""
        if mqtt is not None:
            for site, channel in sorted(self._published):
                mqtt.publish_baseline({"type": "baseline", "t_s": round(t_s, 3), "site": site,
                                       "channel": channel, "modality": self.modality_of[site],
                                       "cleared": True})
        self._published.clear()
        self._last_wave.clear()

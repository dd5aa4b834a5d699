"""Where each Monitor output goes: MQTT (queued, never blocking) and the case record."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from appliance.analysis.continuous import CONTINUOUS_TYPES

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

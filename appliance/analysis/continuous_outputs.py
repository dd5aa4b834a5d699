"""What the continuous modalities emit (the JSON shapes in docs/asyncapi.yaml): EEG trends and
raw display data, EMG events and trends, triggered-EMG responses and thresholds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.analysis.outputs import encode_int16


def rounded(x: float, nd: int = 4) -> float | None:
    return round(float(x), nd) if np.isfinite(x) else None


@dataclass(frozen=True)
class EegTrend:
    t_s: float
    channels: dict[str, dict[str, Any]]
    sides: dict[str, dict[str, Any]]
    baseline: bool
    artefact: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"type": "eeg_trend", "t_s": round(self.t_s, 3), "channels": self.channels,
                "sides": self.sides, "baseline": self.baseline, "artefact": self.artefact}


@dataclass(frozen=True)
class EegRaw:
    t_s: float
    sample_rate_hz: float
    channels: tuple[str, ...]
    data_uv: np.ndarray  # (n_ch, n)

    def to_json(self) -> dict[str, Any]:
        return {"type": "eeg_raw", "t_s": round(self.t_s, 3),
                "sample_rate_hz": self.sample_rate_hz, "channels": list(self.channels),
                "data_uv": [[round(float(v), 1) for v in row] for row in self.data_uv]}


@dataclass(frozen=True)
class EmgEvent:
    t_s: float  # onset
    channel: str
    kind: str  # spike, burst, a_train, cautery
    phase: str  # "onset", "end" or "" (a spike/burst is reported once, complete)
    duration_ms: float | None
    peak_uv: float
    frequency_hz: float | None
    train_time_s: float
    snippet_t0_s: float
    snippet_rate_hz: float
    snippet_uv: np.ndarray = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        scale, data = encode_int16(self.snippet_uv)
        return {"type": "emg_event", "t_s": round(self.t_s, 4), "channel": self.channel,
                "kind": self.kind, "phase": self.phase,
                "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 1),
                "peak_uv": round(self.peak_uv, 1),
                "frequency_hz": None if self.frequency_hz is None else round(self.frequency_hz),
                "train_time_s": round(self.train_time_s, 3),
                "snippet": {"t0_s": round(self.snippet_t0_s, 4),
                            "sample_rate_hz": self.snippet_rate_hz,
                            "encoding": "int16-le-base64", "scale_uv": scale, "data": data}}


@dataclass(frozen=True)
class EmgTrend:
    t_s: float
    channels: dict[str, dict[str, Any]]
    cautery: bool

    def to_json(self) -> dict[str, Any]:
        return {"type": "emg_trend", "t_s": round(self.t_s, 3), "channels": self.channels,
                "cautery": self.cautery}


@dataclass(frozen=True)
class TemgOutput:
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return dict(self.body)

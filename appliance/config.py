"""TOML -> validated, frozen `Config`. An error names the key, the bad value and what is allowed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError
from appliance.settings.alarms import AlarmSettings
from appliance.settings.analysis import AnalysisSettings
from appliance.settings.device import DeviceSettings
from appliance.settings.frontend import FrontendSettings
from appliance.settings.lights import LightsSettings
from appliance.settings.mqtt import MqttSettings
from appliance.settings.recording import RecordingSettings
from appliance.validate import build, field, read_toml


@dataclass(frozen=True)
class Config:
    device: DeviceSettings = field(DeviceSettings())
    frontend: FrontendSettings = field(FrontendSettings())
    analysis: AnalysisSettings = field(AnalysisSettings())
    alarms: AlarmSettings = field(AlarmSettings())
    lights: LightsSettings = field(LightsSettings())
    mqtt: MqttSettings = field(MqttSettings())
    recording: RecordingSettings = field(RecordingSettings())

    def check(self, path: str) -> None:
        names = set(self.frontend.channels)
        for i, site in enumerate(self.analysis.sites):
            for ch in site.channels:
                if ch not in names:
                    raise ConfigError(
                        f"analysis.sites[{i}].channels: got {ch!r}, allowed: one of "
                        f"frontend.channels {sorted(names)}."
                    )
        a = self.analysis
        for key, chans in (("eeg", a.eeg.channels), ("emg_free", a.emg_free.channels),
                           ("emg_triggered", a.emg_triggered.channels)):
            for ch in chans:
                if ch not in names:
                    raise ConfigError(f"analysis.{key}: channel {ch!r} is not one of "
                                      f"frontend.channels {sorted(names)}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def hash(self) -> str:
        """Short stable hash of the effective config (goes into the MQTT birth message)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def from_dict(data: dict[str, Any]) -> Config:
    return build(Config, data, "")


def load(path: str | Path) -> Config:
    return from_dict(read_toml(path, "config"))


def main(argv: list[str]) -> int:
    """`ionm check-config FILE`: validate a config file; exit 2 naming the key on error."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="ionm check-config", description=main.__doc__)
    ap.add_argument("config")
    args = ap.parse_args(argv)
    try:
        cfg = load(args.config)
    except ConfigError as e:
        print(f"ionm: config error: {e}", file=sys.stderr)
        return 2
    print(f"{args.config}: OK (config hash {cfg.hash}, {len(cfg.analysis.sites)} sites)")
    return 0

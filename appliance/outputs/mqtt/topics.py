"""Topic names under `<root>/<device>/` (docs/asyncapi.yaml is the contract).

Site names become topic levels, so they are sanitised: anything outside [A-Za-z0-9_.-] becomes
'_' ('L median' -> 'L_median'); the original name stays in the payload's "site".
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def level(name: str) -> str:
    """One safe topic level: no '+', '#', '/', NUL, spaces; never empty, never starting with '$'."""
    s = _UNSAFE.sub("_", str(name))[:64]
    return s or "_"


class Topics:
    """All topics of one device. `cmd_filter` is what the device subscribes to."""

    def __init__(self, root: str, device: str) -> None:
        self.base = f"{root}/{level(device)}"
        self.status = f"{self.base}/status"
        self.health = f"{self.base}/health"
        self.case = f"{self.base}/case"
        self.annotation = f"{self.base}/annotation"
        self.alarm_event = f"{self.base}/alarm/event"
        self.alarm_active = f"{self.base}/alarm/active"
        self.cmd_prefix = f"{self.base}/cmd/"
        self.cmd_filter = f"{self.base}/cmd/+/+"
        self.reply_prefix = f"{self.base}/reply/"

    def trend(self, modality: str, site: str) -> str:
        return f"{self.base}/trend/{level(modality)}/{level(site)}"

    def baseline(self, modality: str, site: str, channel: str) -> str:
        return f"{self.base}/baseline/{level(modality)}/{level(site)}/{level(channel)}"

    def waveform(self, modality: str, site: str) -> str:
        return f"{self.base}/waveform/{level(modality)}/{level(site)}"

    def continuous(self, kind: str, channel: str = "") -> str:
        """EEG/EMG outputs: '<base>/eeg/trend', '<base>/emg/event/<channel>', ...
        (kind 'emg_event' -> emg/event; the channel or target as the last level if any)."""
        family, _, what = kind.partition("_")
        tail = f"/{level(channel)}" if channel else ""
        return f"{self.base}/{level(family)}/{level(what)}{tail}"

    def reply(self, client: str) -> str:
        """Fallback reply topic when a request carries no MQTT 5 Response Topic."""
        return f"{self.reply_prefix}{level(client)}"

    def parse_cmd(self, topic: str) -> tuple[str, str] | None:
        """'<base>/cmd/<client>/<name>' -> (client, name); None for anything else."""
        if not topic.startswith(self.cmd_prefix):
            return None
        parts = topic[len(self.cmd_prefix):].split("/")
        if len(parts) != 2 or not all(parts):
            return None
        return parts[0], parts[1]

from dataclasses import dataclass

from appliance.validate import field


@dataclass(frozen=True)
class AlarmSettings:
    audio_pause_s: float = field(120.0, min=10.0, max=600.0, help="audio pause duration")

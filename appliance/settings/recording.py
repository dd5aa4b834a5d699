from dataclasses import dataclass

from appliance.validate import field


@dataclass(frozen=True)
class RecordingSettings:
    enabled: bool = field(True, help="record every case (raw BDF+ and SQLite store)")
    directory: str = field("cases", help="folder that holds one sub-folder per case")

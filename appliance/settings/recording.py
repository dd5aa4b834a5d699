from dataclasses import dataclass

from appliance.errors import ConfigError
from appliance.validate import field


@dataclass(frozen=True)
class RecordingSettings:
    enabled: bool = field(True, help="record every case (raw BDF+ and SQLite store)")
    directory: str = field("cases", help="folder that holds one sub-folder per case")
    min_free_mb: float = field(
        500.0, min=0.0, max=1e12,
        help="free disk below this: raw BDF+ writing pauses (events still stored), tech.storage",
    )
    stop_free_mb: float = field(
        50.0, min=0.0, max=1e12, help="free disk below this: the SQLite store pauses too"
    )
    disk_check_s: float = field(5.0, min=0.1, max=600.0, help="how often free space is checked")
    queue_s: float = field(
        10.0, min=0.1, max=600.0,
        help="raw data the writer queue holds before blocks are dropped (slow disk)",
    )
    fsync: bool = field(True, help="fsync each 1-s BDF+ record (survives power loss)")
    annotate_stimuli: bool = field(True, help="stimulus events (trigger edges) as annotations")
    physical_max_uv: float = field(
        0.0, min=1000.0, max=4.5e6, special={0.0: "the ADC full scale 4.5 V / gain"},
        help="BDF+ physical range ±this µV; at least the front end's full scale (no clipping)",
    )

    def check(self, path: str) -> None:
        p = path or "recording"
        if self.stop_free_mb > self.min_free_mb:
            raise ConfigError(
                f"{p}.stop_free_mb: got {self.stop_free_mb}, allowed: at most {p}.min_free_mb "
                f"({self.min_free_mb}); the store pauses after the raw file, not before."
            )

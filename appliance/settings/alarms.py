from dataclasses import dataclass

from appliance.validate import field


@dataclass(frozen=True)
class AlarmSettings:
    """The alarm manager's rules (docs/alarms.md). High-priority physiological alarms always latch
    (IEC 60601-1-8 practice); `latching_ids` adds more by id prefix, never removes that rule."""

    audio_pause_s: float = field(120.0, min=10.0, max=600.0, help="audio pause duration")
    latching_ids: tuple[str, ...] = field(
        (), help="id prefixes of further alarms that latch, e.g. 'tech.frontend_lost'"
    )
    latch_medium_physiological: bool = field(
        False, help="also latch medium-priority physiological alarms"
    )
    resume_on_new_priority: str = field(
        "medium", choices=("low", "medium", "high"),
        help="a new alarm of at least this priority ends an audio pause",
    )
    control_socket: str = field(
        "", help="Unix socket for `ionm alarm`; '' = $RUNTIME_DIRECTORY or $XDG_RUNTIME_DIR/ionm"
    )

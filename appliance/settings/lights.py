from dataclasses import dataclass

from appliance.errors import ConfigError
from appliance.validate import field

GPIO_BACKENDS = ("rpi", "terminal", "file", "recording", "none")

# BCM pins other subsystems use (hw/pinout.md): SPI0 8-11, DRDY 26/13, CS2 19, stimulator 5/6/12/16.
RESERVED_PINS = {8: "SPI0", 9: "SPI0", 10: "SPI0", 11: "SPI0", 26: "DRDY 1", 13: "DRDY 2",
                 19: "CS 2", 5: "stimulus", 6: "stimulus", 12: "stimulus", 16: "stimulus"}


@dataclass(frozen=True)
class LightsSettings:
    """Alert lights, optional buzzer and the acknowledge button (hw/lights.md). Pins are BCM
    numbers; -1 means not fitted."""

    backend: str = field("terminal", choices=GPIO_BACKENDS, help="how lights are driven")
    file_path: str = field("lights.jsonl", help="where the 'file' backend appends JSON lines")
    red_pin: int = field(17, min=0, max=27, help="red light: high priority")
    yellow_pin: int = field(27, min=0, max=27, help="yellow light: medium / low physiological")
    cyan_pin: int = field(22, min=0, max=27, help="cyan light: technical alarm present")
    green_pin: int = field(23, min=0, max=27, help="green light: monitoring")
    paused_pin: int = field(18, min=-1, max=27, help="audio-paused LED (in the button); -1 none")
    buzzer_pin: int = field(24, min=-1, max=27, help="buzzer driver (optional); -1 = none")
    button_pin: int = field(25, min=-1, max=27, help="ack / audio-pause button, pull-up, to GND")
    active_high: bool = field(True, help="a light is on when its pin is high")
    high_flash_hz: float = field(2.0, min=1.4, max=2.8, help="red flash rate (IEC 1.4-2.8 Hz)")
    medium_flash_hz: float = field(0.5, min=0.4, max=0.8, help="yellow flash rate (0.4-0.8 Hz)")
    flash_duty: float = field(0.5, min=0.2, max=0.6, help="flash on-fraction (IEC 20-60 %)")
    monitoring_timeout_s: float = field(
        1.0, min=0.2, max=5.0, help="green goes dark if monitoring is not renewed within this"
    )
    lamp_test_s: float = field(1.5, min=0.0, max=10.0, help="start-up lamp test duration")
    button_debounce_ms: float = field(
        30.0, min=5.0, max=200.0, help="button must be stable this long"
    )
    button_long_press_s: float = field(1.5, min=0.5, max=5.0, help="hold this long for audio pause")
    buzzer_repeat_s: float = field(3.0, min=2.5, max=4.0, help="burst repeat interval (2.5-4 s)")

    def check(self, path: str) -> None:
        used: dict[int, str] = {}
        for name in ("red", "yellow", "cyan", "green", "paused", "buzzer", "button"):
            pin = getattr(self, f"{name}_pin")
            if pin < 0:
                continue
            if pin in RESERVED_PINS:
                raise ConfigError(
                    f"{path}.{name}_pin: got {pin}, allowed: a BCM pin not used by "
                    f"{RESERVED_PINS[pin]} (see hw/pinout.md)."
                )
            if pin in used:
                raise ConfigError(
                    f"{path}.{name}_pin: got {pin}, allowed: a pin not already used by "
                    f"{path}.{used[pin]}_pin."
                )
            used[pin] = name

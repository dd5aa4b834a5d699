from dataclasses import dataclass

from appliance.validate import field

GPIO_BACKENDS = ("rpi", "terminal", "file", "recording", "none")


@dataclass(frozen=True)
class LightsSettings:
    backend: str = field("terminal", choices=GPIO_BACKENDS, help="how lights are driven")

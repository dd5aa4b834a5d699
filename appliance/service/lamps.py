"""The GPIO parts: alarm lights (in their own process unless a backend object is given or the
backend cannot cross a process), the acknowledge button, the stimulator trigger outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Gpio:
    """What start_lights/start_stimulator built; `owned` backends are closed at shutdown."""

    lights: Any = None
    button: Any = None
    stimulator: Any = None
    owned: list[Any] = field(default_factory=list)


def start_lights(cfg: Any, manager: Any, backend: Any, gpio: Gpio) -> None:
    """Lights showing manager.display(); the button acknowledges (short) or audio-pauses."""
    from appliance.outputs.button import Button
    from appliance.outputs.gpio import backend_from_settings
    from appliance.outputs.lights import Lights

    s = cfg.lights
    if backend is not None or s.backend == "recording":
        if backend is None:
            backend = backend_from_settings(s)
            gpio.owned.append(backend)
        gpio.lights = Lights.from_settings(s, backend, source=manager.display)
        button_backend = backend
    else:
        from appliance.outputs.lights_process import LightsProcess

        gpio.lights = LightsProcess(s, source=manager.display)
        button_backend = None
        if s.button_pin >= 0:  # the button's pin lives in this process (outputs: the child)
            button_backend = backend_from_settings(s)
            gpio.owned.append(button_backend)
    if s.lamp_test_s > 0:
        if isinstance(gpio.lights, Lights):
            gpio.lights.lamp_test(s.lamp_test_s, wait=False)
        else:
            gpio.lights.lamp_test(s.lamp_test_s)
    if s.button_pin >= 0 and button_backend is not None:
        gpio.button = Button.from_settings(
            s, button_backend, lambda: manager.acknowledge("button"),
            lambda: manager.audio_pause("button"))


def start_stimulator(cfg: Any, backend: Any, gpio: Gpio) -> None:
    """frontend.stimulator: trigger the external isolated stimulator from GPIO outputs. The
    line is looped back into a front-end input, so the ADC latches each stimulus on its
    sample and the analysis never relies on this thread's timing (hw/stimulus.md)."""
    if not cfg.frontend.stimulator:
        return
    from appliance.frontend.stimulus import StimulusScheduler
    from appliance.outputs.gpio import backend_from_settings

    if backend is None:
        backend = backend_from_settings(cfg.lights)
        gpio.owned.append(backend)
    for site, pin in cfg.frontend.stim_pins.items():
        backend.setup_output(pin, f"stim:{site}")
    gpio.stimulator = StimulusScheduler.from_config(cfg, backend.output)
    gpio.stimulator.start()

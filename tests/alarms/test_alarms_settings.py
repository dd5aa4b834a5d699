"""The alarms and lights config sections: defaults, pin clashes, the standard's ranges."""

from __future__ import annotations

import pytest

from appliance import config
from appliance.errors import ConfigError
from appliance.outputs.gpio import RecordingBackend
from appliance.outputs.lights import Lights


def test_defaults_follow_the_standard():
    c = config.from_dict({})
    assert c.alarms.audio_pause_s == 120.0
    assert (c.lights.high_flash_hz, c.lights.medium_flash_hz, c.lights.flash_duty) == (2.0, 0.5,
                                                                                       0.5)
    pins = [c.lights.red_pin, c.lights.yellow_pin, c.lights.cyan_pin, c.lights.green_pin,
            c.lights.buzzer_pin, c.lights.button_pin]
    assert pins == [17, 27, 22, 23, 24, 25]


@pytest.mark.parametrize("table,msg", [
    ({"lights": {"red_pin": 10}}, "lights.red_pin: got 10, allowed: a BCM pin not used by SPI0"),
    ({"lights": {"buzzer_pin": 5}}, "not used by stimulus"),
    ({"lights": {"green_pin": 17}}, "lights.green_pin: got 17, allowed: a pin not already used"),
    ({"lights": {"high_flash_hz": 3.0}}, "lights.high_flash_hz: got 3.0, allowed: a value from"),
    ({"lights": {"flash_duty": 0.7}}, "lights.flash_duty"),
    ({"lights": {"backend": "gpiozero"}}, "allowed: 'rpi'"),
    ({"alarms": {"audio_pause_s": 5}}, "alarms.audio_pause_s: got 5"),
    ({"alarms": {"resume_on_new_priority": "urgent"}}, "alarms.resume_on_new_priority"),
])
def test_bad_values_named(table, msg):
    with pytest.raises(ConfigError, match=msg):
        config.from_dict(table)


def test_unfitted_outputs_are_skipped():
    c = config.from_dict({"lights": {"buzzer_pin": -1, "paused_pin": -1}})
    backend = RecordingBackend()
    with Lights.from_settings(c.lights, backend) as lights:
        assert set(lights.pins) == {"red", "yellow", "cyan", "green"}
    assert set(backend.names.values()) == {"red", "yellow", "cyan", "green"}

"""The start-up check for the DRDY GPIO binding (issue 11, goal 4): libgpiod v2 or an error
naming the package; Debian bookworm's 1.6 API is named, never a ModuleNotFoundError. The gpiod
modules here are stand-ins for the third-party binding (this machine has no GPIO chip)."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import pytest

from appliance.errors import FrontEndError
from appliance.frontend.ads1299.spi import GpiodDrdy, check_gpiod, open_drdy


def _install(monkeypatch, gpiod: types.ModuleType | None, line: types.ModuleType | None = None):
    monkeypatch.setitem(sys.modules, "gpiod", gpiod)  # None: import raises ImportError
    monkeypatch.setitem(sys.modules, "gpiod.line", line)


def test_absent_binding_fails_naming_the_package(monkeypatch):
    _install(monkeypatch, None)
    with pytest.raises(FrontEndError, match=r"not installed: pip install 'gpiod>=2'"):
        open_drdy(26)


def test_debian_libgpiod_1_6_api_is_named_not_a_crash(monkeypatch):
    v1 = types.ModuleType("gpiod")  # the 1.x binding: Chip(...).get_line(...), no request_lines
    v1.Chip = type("Chip", (), {"get_line": lambda self, n: None})
    v1.__version__ = "1.6.3"
    _install(monkeypatch, v1)
    with pytest.raises(FrontEndError) as err:
        open_drdy(26)
    msg = str(err.value)
    assert "libgpiod 1.x API (1.6.3" in msg and "python3-libgpiod" in msg and "gpiod>=2" in msg


@dataclass
class EdgeEvent:
    line_seqno: int
    timestamp_ns: int


class Request:
    def __init__(self, batches):
        self.batches = list(batches)
        self.released = False

    def wait_edge_events(self, timeout_s):
        return bool(self.batches)

    def read_edge_events(self):
        return self.batches.pop(0)

    def release(self):
        self.released = True


def test_v2_binding_gives_the_newest_edge_sequence_and_timestamp(monkeypatch):
    v2 = types.ModuleType("gpiod")
    req = Request([[EdgeEvent(1, 1000)], [EdgeEvent(2, 2000), EdgeEvent(3, 3000)]])
    asked = {}

    def request_lines(path, consumer, config):
        asked.update(path=path, consumer=consumer, pins=list(config))
        return req

    v2.request_lines = request_lines
    v2.LineSettings = lambda **kw: kw
    line = types.ModuleType("gpiod.line")
    line.Bias = types.SimpleNamespace(PULL_UP="pull-up")
    line.Direction = types.SimpleNamespace(INPUT="input")
    line.Edge = types.SimpleNamespace(FALLING="falling")
    _install(monkeypatch, v2, line)
    assert check_gpiod() is v2
    drdy = GpiodDrdy(26, chip_path="/dev/gpiochip0")
    assert asked == {"path": "/dev/gpiochip0", "consumer": "ionm-ads1299", "pins": [26]}
    assert drdy.wait(0.1) and (drdy.sequence, drdy.timestamp_ns) == (1, 1000)
    # two queued edges: the newest is the one a read now belongs to; seq 2 was overwritten
    assert drdy.wait(0.1) and (drdy.sequence, drdy.timestamp_ns) == (3, 3000)
    assert not drdy.wait(0.1)
    drdy.close()
    assert req.released

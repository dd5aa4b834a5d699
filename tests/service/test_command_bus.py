"""The command registry's runtime on its own: the loop runs what callers queued; a caller that
gave up (time-out) is never run late; refusals carry their code; only recorded commands are
reported to the case."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from appliance.commands import CommandBus, CommandRejected, Role
from appliance.errors import CommandError


def _bus() -> tuple[CommandBus, list[tuple[str, dict[str, Any], str]], list[str]]:
    ran: list[tuple[str, dict[str, Any], str]] = []
    calls: list[str] = []
    bus = CommandBus(on_ran=lambda n, a, c: ran.append((n, a, c)))

    def annotate(args: dict[str, Any], cause: str) -> dict[str, Any]:
        calls.append(args["text"])
        if args["text"] == "boom":
            raise ZeroDivisionError("x")
        return {"ok": cause}

    bus.handle("annotate", annotate)
    return bus, ran, calls


def test_timed_out_command_is_never_run_late() -> None:
    bus, ran, calls = _bus()
    with pytest.raises(CommandRejected) as e:
        bus.call("annotate", {"text": "late"}, "cli", timeout_s=0.05)  # nobody runs the loop
    assert e.value.code == "timeout"
    bus.run_pending()  # the loop comes back: the abandoned command is dropped
    assert calls == [] and ran == []


def test_loop_runs_records_and_passes_refusals_back() -> None:
    bus, ran, calls = _bus()
    stop = threading.Event()

    def main_loop() -> None:
        while not stop.wait(0.005):
            bus.run_pending()

    loop = threading.Thread(target=main_loop, daemon=True)
    loop.start()
    try:
        assert bus.call("annotate", {"text": "rod"}, "mqtt:n1") == {"ok": "mqtt:n1"}
        with pytest.raises(CommandError, match="annotate: ZeroDivisionError"):
            bus.call("annotate", {"text": "boom"}, "cli")
        with pytest.raises(CommandRejected) as e:
            bus.call("annotate", {"text": "x"}, "viewer1", role=Role.VIEWER)
        assert e.value.code == "unauthorised"
        with pytest.raises(CommandRejected) as e:
            bus.call("ping", {}, "cli")  # in the registry, but the MQTT link answers it
        assert e.value.code == "refused" and "MQTT link" in str(e.value)
        with pytest.raises(CommandRejected) as e:
            bus.call("stop_case", {}, "cli")  # no handler registered here
        assert e.value.code == "refused"
    finally:
        stop.set()
        loop.join(1.0)
    assert calls == ["rod", "boom"]  # the viewer's never reached the handler
    assert ran == [("annotate", {"text": "rod"}, "mqtt:n1")]  # refused ones are not recorded
    with pytest.raises(ValueError, match="MQTT link"):
        bus.handle("set", lambda a, c: {})

"""The one command registry: name -> argument validation -> role -> handler on the main loop.

Every front door is a thin adapter over it:
  MQTT `<root>/<device>/cmd/<client>/<name>` (appliance/outputs/mqtt/commands.py: payload bytes,
      allow-list, executor with time-out, the reply message); the web console publishes there;
  the local control socket (appliance/alarms/control.py, `ionm alarm`): one JSON line.
Both call `CommandBus.call(name, args, cause, role)`, which checks the arguments against
COMMANDS, the caller's role, and hands the command to the main loop (`run_pending()`), the one
thread that owns the Monitor; the caller waits on a Future with a time-out, the loop never waits.
A refusal is a CommandRejected whose `code` and message are the same whichever door it came
through (codes in docs/mqtt.md).
"""

from __future__ import annotations

import json
import logging
import queue
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from appliance.errors import CommandError, IonmError

log = logging.getLogger("ionm.commands")

MAX_PAYLOAD_BYTES = 4096


class Role(IntEnum):
    """Who may run a command: a viewer reads (ping), a technologist acts."""

    VIEWER = 1
    TECHNOLOGIST = 2


class CommandRejected(CommandError):
    """A command that gets an error reply; `code` is the machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Arg:
    """One argument: its type, whether required, bounds (str: length; float: value)."""

    type: type
    required: bool = False
    lo: float | None = None
    hi: float | None = None


@dataclass(frozen=True)
class Spec:
    """args: name -> Arg. runs_on "loop" (the main loop's handler) or "link" (answered by the
    MQTT link itself: it concerns the link). record: stored in the case as kind `command`."""

    args: dict[str, Arg] = field(default_factory=dict)
    role: Role = Role.TECHNOLOGIST
    runs_on: str = "loop"
    record: bool = True


_label = Arg(str, False, 1, 64)
COMMANDS: dict[str, Spec] = {
    "start_case": Spec({"label": Arg(str, True, 1, 64), "procedure": Arg(str, False, 0, 128)}),
    "stop_case": Spec(),
    "set_baseline": Spec({"site": _label}),
    "acknowledge": Spec(),
    "audio_pause": Spec(),
    "annotate": Spec({"text": Arg(str, True, 1, 256)}),
    "set": Spec({"key": Arg(str, True, 1, 64), "value": Arg(float, True)}, runs_on="link",
                record=False),
    "ping": Spec(role=Role.VIEWER, runs_on="link", record=False),
    "temg_search": Spec({"target": Arg(str, True, 1, 64)}),
    "temg_intensity": Spec({"ma": Arg(float, True, 0.0, 200.0), "target": _label}),
    "emg_audio": Spec({"volume": Arg(float, False, 0.0, 1.0), "channel": Arg(str, False, 0, 64)}),
}

# The settings a remote client may change: presentation only, never analysis or alarm criteria.
SAFE_SETTINGS: dict[str, tuple[float, float]] = {
    "mqtt.waveform_interval_s": (0.0, 60.0),  # min interval between waveforms per topic
    "mqtt.health_interval_s": (0.5, 60.0),
}


def _type_name(t: type) -> str:
    return {str: "a string", float: "a number", bool: "true/false"}.get(t, t.__name__)


def spec_of(name: str) -> Spec:
    if name not in COMMANDS:
        raise CommandRejected(
            "unknown_command", f"command {name!r}: unknown; allowed: {', '.join(COMMANDS)}")
    return COMMANDS[name]


def parse_payload(name: str, payload: bytes) -> dict[str, Any]:
    """A byte transport's request (MQTT): JSON object of arguments, then check_args."""
    spec_of(name)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CommandRejected("malformed", f"payload: {len(payload)} bytes, allowed: at most "
                              f"{MAX_PAYLOAD_BYTES}")
    try:
        args = json.loads(payload.decode("utf-8")) if payload.strip() else {}
    except (UnicodeDecodeError, ValueError) as e:
        raise CommandRejected("malformed", f"payload: not UTF-8 JSON ({e})") from None
    return check_args(name, args)


def check_args(name: str, args: object) -> dict[str, Any]:
    """The arguments of `name`, checked and normalised (numbers as float); CommandRejected
    naming the argument, the value and what is allowed."""
    spec = spec_of(name).args
    if not isinstance(args, dict):
        raise CommandRejected("malformed", f"payload: got a JSON {type(args).__name__}, "
                              "allowed: a JSON object of arguments")
    unknown = sorted(set(args) - set(spec))
    if unknown:
        raise CommandRejected("invalid_args", f"{name}.{unknown[0]}: unknown argument; allowed: "
                              f"{', '.join(spec) or 'none'}")
    out: dict[str, Any] = {}
    for key, a in spec.items():
        if key not in args or args[key] is None:
            if a.required:
                raise CommandRejected("invalid_args", f"{name}.{key}: missing")
            continue
        v = args[key]
        ok = isinstance(v, str) if a.type is str else (
            isinstance(v, int | float) and not isinstance(v, bool) and v == v
            and abs(v) != float("inf"))
        if not ok:
            raise CommandRejected("invalid_args", f"{name}.{key}: got {v!r:.80}, allowed: "
                                  f"{_type_name(a.type)}")
        size = len(v) if a.type is str else v
        if (a.lo is not None and size < a.lo) or (a.hi is not None and size > a.hi):
            what = "length" if a.type is str else "value"
            raise CommandRejected("invalid_args", f"{name}.{key}: {what} {size}, allowed: "
                                  f"{a.lo} to {a.hi}")
        out[key] = float(v) if a.type is float else v
    if name == "set":
        key = out["key"]
        if key not in SAFE_SETTINGS:
            raise CommandRejected("invalid_args", f"set.key: got {key!r:.80}, allowed: "
                                  f"{', '.join(SAFE_SETTINGS)}")
        lo, hi = SAFE_SETTINGS[key]
        if not lo <= out["value"] <= hi:
            raise CommandRejected("invalid_args", f"set.value: got {out['value']} for {key}, "
                                  f"allowed: {lo} to {hi}")
    return out


def authorise(name: str, role: Role, who: str) -> None:
    """CommandRejected('unauthorised') when `role` is below what `name` needs."""
    need = spec_of(name).role
    if role < need:
        raise CommandRejected("unauthorised", f"{name}: needs the {need.name.lower()} role; "
                              f"{who} is a {role.name.lower()}")


# handler(args, cause) -> result dict, or a Future of one (work finished off the loop)
Handler = Callable[[dict[str, Any], str], "dict[str, Any] | Future"]


@dataclass
class _Pending:
    name: str
    args: dict[str, Any]
    cause: str
    future: Future = field(default_factory=Future)


class CommandBus:
    """The registry's runtime: parts register handlers for the loop's commands; any thread
    calls `call()`; the main loop runs them in `run_pending()` (never blocks).

    on_ran(name, args, cause) is called on the loop after a recorded command's handler
    accepted it (the supervisor stores it in the case)."""

    def __init__(self, on_ran: Callable[[str, dict[str, Any], str], None] | None = None) -> None:
        self._handlers: dict[str, Handler] = {}
        self._q: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._on_ran = on_ran

    def handle(self, name: str, handler: Handler) -> None:
        if spec_of(name).runs_on != "loop":
            raise ValueError(f"{name}: answered by the MQTT link, not the loop")
        self._handlers[name] = handler

    def call(self, name: str, args: dict[str, Any], cause: str,
             role: Role = Role.TECHNOLOGIST, timeout_s: float = 2.0) -> dict[str, Any]:
        """Validate, authorise, run on the loop and wait up to timeout_s (any thread but the
        loop's). CommandRejected names why not; a handler's CommandError passes through."""
        args = check_args(name, args)
        authorise(name, role, cause)
        if name not in self._handlers:
            why = "only the MQTT link answers it" if spec_of(name).runs_on == "link" else \
                "this appliance has no handler for it"
            raise CommandRejected("refused", f"{name}: not available here ({why})")
        p = _Pending(name, args, cause)
        self._q.put(p)
        try:
            return p.future.result(timeout=timeout_s)
        except FutureTimeout:
            p.future.cancel()
            raise CommandRejected("timeout", f"{name}: the appliance did not answer within "
                                  f"{timeout_s:.1f} s") from None

    def run_pending(self) -> None:
        """The main loop: run every queued command; a refusal goes back to its caller."""
        while True:
            try:
                p = self._q.get_nowait()
            except queue.Empty:
                return
            if not p.future.set_running_or_notify_cancel():
                continue  # the caller gave up
            try:
                result = self._handlers[p.name](p.args, p.cause)
            except Exception as e:  # refused: the reply says why; monitoring goes on
                p.future.set_exception(e if isinstance(e, IonmError) else CommandError(
                    f"{p.name}: {type(e).__name__}: {e}"))
                continue
            if isinstance(result, Future):  # finished off the loop (e.g. the case worker)
                result.add_done_callback(lambda f, dst=p.future: _chain(f, dst))
            else:
                p.future.set_result(result)
            if self._on_ran is not None and COMMANDS[p.name].record:
                self._on_ran(p.name, p.args, p.cause)


def _chain(src: Future, dst: Future) -> None:
    exc = src.exception()
    if exc is not None:
        dst.set_exception(exc)
    else:
        dst.set_result(src.result())

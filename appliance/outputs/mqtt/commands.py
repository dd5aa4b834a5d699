"""Commands in: validation, authorisation and a worker that keeps them off the network thread.

Topic `<root>/<device>/cmd/<client>/<name>`, payload a JSON object of arguments (may be empty),
MQTT 5 Response Topic + Correlation Data for the reply. <client> is the requester's broker
username: the ACL (deploy/mosquitto/acl) lets each user write only under its own name, which is
what makes the in-app allow-list (mqtt.command_clients) meaningful. A subscriber cannot otherwise
learn who published (MQTT 5 has no such field; user properties are whatever the sender wrote).

Every request gets exactly one reply: {"ok": true, "result": {...}} or
{"ok": false, "error": {"code", "message"}}; errors are logged and counted.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from appliance.errors import CommandError

log = logging.getLogger("ionm.mqtt.commands")

MAX_PAYLOAD_BYTES = 4096


class CommandRejected(CommandError):
    """A command that gets an error reply; `code` is the machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# name -> {arg: (type, required, min, max)}; str bounds are lengths.
_Arg = tuple[type, bool, float | None, float | None]
COMMANDS: dict[str, dict[str, _Arg]] = {
    "start_case": {"label": (str, True, 1, 64), "procedure": (str, False, 0, 128)},
    "stop_case": {},
    "set_baseline": {"site": (str, False, 1, 64)},
    "acknowledge": {},
    "audio_pause": {},
    "annotate": {"text": (str, True, 1, 256)},
    "set": {"key": (str, True, 1, 64), "value": (float, True, None, None)},
    "ping": {},
    "temg_search": {"target": (str, True, 1, 64)},
    "temg_intensity": {"ma": (float, True, 0.0, 200.0), "target": (str, False, 1, 64)},
    "emg_audio": {"volume": (float, False, 0.0, 1.0), "channel": (str, False, 0, 64)},
}

# The settings a remote client may change: presentation only, never analysis or alarm criteria.
SAFE_SETTINGS: dict[str, tuple[float, float]] = {
    "mqtt.waveform_interval_s": (0.0, 60.0),  # min interval between waveforms per topic
    "mqtt.health_interval_s": (0.5, 60.0),
}

LOCAL = ("ping", "set")  # answered by the link itself


def _type_name(t: type) -> str:
    return {str: "a string", float: "a number", bool: "true/false"}.get(t, t.__name__)


def validate(name: str, payload: bytes) -> dict[str, Any]:
    """Parse and check one request; return its arguments or raise CommandRejected."""
    if name not in COMMANDS:
        raise CommandRejected(
            "unknown_command", f"command {name!r}: unknown; allowed: {', '.join(COMMANDS)}"
        )
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CommandRejected("malformed", f"payload: {len(payload)} bytes, allowed: at most "
                              f"{MAX_PAYLOAD_BYTES}")
    try:
        args = json.loads(payload.decode("utf-8")) if payload.strip() else {}
    except (UnicodeDecodeError, ValueError) as e:
        raise CommandRejected("malformed", f"payload: not UTF-8 JSON ({e})") from None
    if not isinstance(args, dict):
        raise CommandRejected("malformed", f"payload: got a JSON {type(args).__name__}, "
                              "allowed: a JSON object of arguments")
    spec = COMMANDS[name]
    unknown = sorted(set(args) - set(spec))
    if unknown:
        raise CommandRejected("invalid_args", f"{name}.{unknown[0]}: unknown argument; allowed: "
                              f"{', '.join(spec) or 'none'}")
    out: dict[str, Any] = {}
    for key, (tp, required, lo, hi) in spec.items():
        if key not in args or args[key] is None:
            if required:
                raise CommandRejected("invalid_args", f"{name}.{key}: missing")
            continue
        v = args[key]
        ok = isinstance(v, str) if tp is str else (
            isinstance(v, int | float) and not isinstance(v, bool) and v == v
            and abs(v) != float("inf"))
        if not ok:
            raise CommandRejected("invalid_args", f"{name}.{key}: got {v!r:.80}, allowed: "
                                  f"{_type_name(tp)}")
        size = len(v) if tp is str else v
        if (lo is not None and size < lo) or (hi is not None and size > hi):
            what = "length" if tp is str else "value"
            raise CommandRejected("invalid_args", f"{name}.{key}: {what} {size}, allowed: "
                                  f"{lo} to {hi}")
        out[key] = float(v) if tp is float else v
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


@dataclass(frozen=True)
class Request:
    client: str
    name: str
    payload: bytes
    response_topic: str  # '' = none given
    correlation: bytes | None


Handler = Callable[[str, dict[str, Any], str], dict[str, Any]]
ReplyFn = Callable[[Request, dict[str, Any]], None]


class CommandWorker:
    """One dispatcher thread; `on_command` runs in a single executor thread with a timeout, so a
    slow or hung handler yields 'timeout'/'busy' replies instead of piling up threads."""

    def __init__(self, handler: Handler, local: Callable[[str, dict[str, Any]], dict[str, Any]],
                 reply: ReplyFn, allowed_clients: tuple[str, ...], timeout_s: float,
                 max_pending: int = 64) -> None:
        self.handler, self.local, self.reply = handler, local, reply
        self.allowed = frozenset(allowed_clients)
        self.timeout_s = timeout_s
        self.counts: Counter[str] = Counter()
        self._q: queue.Queue[Request | None] = queue.Queue(max_pending)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ionm-mqtt-cmd")
        self._busy: Any = None
        self._thread = threading.Thread(target=self._run, name="ionm-mqtt-cmds", daemon=True)
        self._thread.start()

    def submit(self, req: Request) -> None:
        """Called on the network thread: never blocks; a full queue gets a 'busy' reply."""
        try:
            self._q.put_nowait(req)
        except queue.Full:
            self._answer(req, CommandRejected("busy", "too many pending commands; retry"))

    def _run(self) -> None:
        while True:
            req = self._q.get()
            if req is None:
                return
            try:
                self._answer(req, self._execute(req))
            except Exception as e:  # never let one request end the worker
                log.exception("command %s from %s failed", req.name, req.client)
                self._answer(req, CommandRejected("failed", f"{req.name}: {e}"))

    def _execute(self, req: Request) -> dict[str, Any] | CommandRejected:
        try:
            if self.allowed and req.client not in self.allowed:
                raise CommandRejected(
                    "unauthorised", f"client {req.client!r} is not in mqtt.command_clients")
            args = validate(req.name, req.payload)
            if req.name in LOCAL:
                return self.local(req.name, args)
            if self._busy is not None and not self._busy.done():
                raise CommandRejected("busy", "the previous command is still running; retry")
            fut = self._pool.submit(self.handler, req.name, args, req.client)
            self._busy = fut
            try:
                result = fut.result(timeout=self.timeout_s)
            except FutureTimeout:
                raise CommandRejected(
                    "timeout", f"{req.name}: no answer within {self.timeout_s} s") from None
            except CommandError as e:
                raise CommandRejected(getattr(e, "code", "refused"), str(e)) from None
            except Exception as e:
                log.exception("on_command(%s) raised", req.name)
                raise CommandRejected("failed", f"{req.name}: {type(e).__name__}: {e}") from None
            return result if isinstance(result, dict) else {"value": result}
        except CommandRejected as e:
            return e

    def _answer(self, req: Request, outcome: dict[str, Any] | CommandRejected) -> None:
        body: dict[str, Any] = {"type": "command_reply", "command": req.name[:64],
                                "client": req.client[:64]}
        if isinstance(outcome, CommandRejected):
            self.counts[f"rejected.{outcome.code}"] += 1
            log.warning("command %r from %r rejected: %s", req.name[:64], req.client[:64], outcome)
            body.update(ok=False, error={"code": outcome.code, "message": str(outcome)[:500]})
        else:
            self.counts["ok"] += 1
            body.update(ok=True, result=outcome)
        try:
            self.reply(req, body)
        except Exception:
            log.exception("could not queue the reply to %s", req.name)

    def stats(self) -> dict[str, int]:
        counts = dict(self.counts)  # a C-level copy: safe while the worker adds keys
        ok = counts.get("ok", 0)
        return {"ok": ok, "rejected": sum(counts.values()) - ok}

    def close(self) -> None:
        try:
            self._q.put_nowait(None)
        except queue.Full:
            pass
        self._pool.shutdown(wait=False, cancel_futures=True)

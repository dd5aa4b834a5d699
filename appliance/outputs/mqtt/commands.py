"""Commands in over MQTT: the transport adapter of the command registry (appliance/commands.py,
which validates and authorises), and a worker that keeps them off the network thread.

Topic `<root>/<device>/cmd/<client>/<name>`, payload a JSON object of arguments (may be empty),
MQTT 5 Response Topic + Correlation Data for the reply. <client> is the requester's broker
username: the ACL (deploy/mosquitto/acl) lets each user write only under its own name, which is
what makes the in-app allow-list (mqtt.command_clients) meaningful. A subscriber cannot otherwise
learn who published (MQTT 5 has no such field; user properties are whatever the sender wrote).

Every request gets exactly one reply: {"ok": true, "result": {...}} or
{"ok": false, "error": {"code", "message"}}; errors are logged and counted.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from appliance.commands import COMMANDS, CommandRejected, Role, authorise, parse_payload
from appliance.errors import CommandError

log = logging.getLogger("ionm.mqtt.commands")

LOCAL = tuple(n for n, spec in COMMANDS.items() if spec.runs_on == "link")  # ping, set


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
            args = parse_payload(req.name, req.payload)
            # whom the broker ACL and the allow-list let through acts as a technologist; the
            # broker ACL keeps viewers off the command topics (docs/deploy.md)
            authorise(req.name, Role.TECHNOLOGIST, f"client {req.client!r}")
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

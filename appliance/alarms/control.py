"""Local control channel for `ionm alarm ack|pause|status`: a Unix stream socket in the runtime
directory, one JSON line in, one JSON line out, per connection. A thin adapter of the command
registry (appliance/commands.py): every command there that the main loop runs can be sent here,
refused exactly as over MQTT, with cause "cli".

Why a socket and not MQTT: the CLI must work at the bedside when the broker or network is down,
and file permissions (mode 0660, the service's group) decide who may act: a connected client is
a technologist. The server thread waits for the main loop's answer (up to REPLY_TIMEOUT_S); the
loop never waits on it.

Request:  {"cmd": "ack" | "pause" | "status" | <registry command>, "args": {...}}
          ("ack" = acknowledge, "pause" = audio_pause, "status" runs nothing)
Reply:    {"ok": true, "result": {...}, "events": [...alarm_event...], "active": [...],
           "display": {...}}
          {"ok": false, "error": "...", "code": "..."}
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import struct
import tempfile
import threading
from pathlib import Path
from typing import Any

from appliance.alarms.manager import AlarmManager
from appliance.commands import COMMANDS, CommandBus, CommandRejected, Handler, Role
from appliance.errors import CommandError
from appliance.settings.alarms import AlarmSettings

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 4096
ALIASES = {"ack": "acknowledge", "pause": "audio_pause", "status": None}
CLI_ACTIONS = tuple(ALIASES)  # `ionm alarm` actions
REPLY_TIMEOUT_S = 1.5  # below the client's 2 s


def alarm_handlers(manager: AlarmManager) -> dict[str, Handler]:
    """The registry's alarm commands, run on the main loop by whoever owns `manager`."""
    return {
        "acknowledge": lambda args, cause: {
            "events": [e.to_json() for e in manager.acknowledge(cause)]},
        "audio_pause": lambda args, cause: {
            "events": [e.to_json() for e in manager.audio_pause(cause)]},
    }


def default_socket_path(settings: AlarmSettings | None = None) -> Path:
    """settings.control_socket, else $RUNTIME_DIRECTORY (systemd RuntimeDirectory=), else
    $XDG_RUNTIME_DIR/ionm, else <tmp>/ionm-<uid>; file name alarm.sock."""
    if settings is not None and settings.control_socket:
        return Path(settings.control_socket)
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime:
        return Path(runtime) / "alarm.sock"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(xdg) / "ionm" if xdg else Path(tempfile.gettempdir()) / f"ionm-{os.getuid()}"
    return base / "alarm.sock"


class ControlServer:
    """Serve requests on a Unix socket at `path` (own thread): commands go to `bus`, the alarm
    state in every reply is read from `manager`.

    Bad requests get an error reply and are counted (`n_errors`); they never stop the server.
    A stale socket file is replaced; a live one (another appliance answering) is an error.
    """

    def __init__(self, path: str | Path, bus: CommandBus, manager: AlarmManager,
                 mode: int = 0o660) -> None:
        self.path = Path(path)
        self.bus = bus
        self.manager = manager
        self.n_requests = 0
        self.n_errors = 0
        self._closed = threading.Event()
        self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        if self.path.exists():
            self._remove_stale()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(self.path))
        os.chmod(self.path, mode)
        self._sock.listen(8)
        self._sock.settimeout(0.5)  # so close() is noticed
        self._thread = threading.Thread(target=self._serve, name="alarm-control", daemon=True)

    def _remove_stale(self) -> None:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.path))
        except OSError:
            self.path.unlink()  # nobody answers: left over from a crash
            return
        finally:
            probe.close()
        raise CommandError(f"control socket {str(self.path)!r}: another appliance is listening.")

    def start(self) -> ControlServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if self._thread.is_alive():
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as wake:
                wake.connect(str(self.path))  # wake accept() now rather than at its timeout
            self._thread.join(timeout=2.0)
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._closed.is_set():
                    return
                raise
            if self._closed.is_set():
                conn.close()
                return
            with conn:
                try:
                    self._handle(conn)
                except OSError as e:  # client went away mid-reply: its problem, not ours
                    log.warning("alarm control: connection failed: %s", e)

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(1.0)
        self.n_requests += 1
        try:
            reply = self.dispatch(_read_line(conn), _peer_uid(conn))
        except CommandError as e:
            self.n_errors += 1
            log.warning("alarm control: %s", e)
            reply = {"ok": False, "error": str(e), "code": getattr(e, "code", "refused")}
        conn.sendall(json.dumps(reply).encode() + b"\n")

    def dispatch(self, raw: bytes, uid: int | None = None) -> dict[str, Any]:
        """Run one request line; CommandError names what was wrong."""
        try:
            req = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CommandRejected("malformed", f"request is not JSON ({e}); "
                                  "send {\"cmd\": \"ack\"}.") from e
        cmd = req.get("cmd") if isinstance(req, dict) else None
        if not isinstance(cmd, str) or (cmd not in ALIASES and cmd not in COMMANDS):
            allowed = ", ".join([*ALIASES, *COMMANDS])
            raise CommandRejected("unknown_command", f"cmd: got {cmd!r:.80}, allowed: {allowed}.")
        name = ALIASES.get(cmd, cmd)
        result: dict[str, Any] = {}
        if name is not None:
            result = self.bus.call(name, req.get("args", {}), "cli", Role.TECHNOLOGIST,
                                   REPLY_TIMEOUT_S)
            log.info("alarm control: %s by uid %s", name, uid)
        return {
            "ok": True,
            "result": result,
            "events": result.get("events", []),
            "active": self.manager.active_set(),
            "display": self.manager.display().to_json(),
        }


def _read_line(conn: socket.socket) -> bytes:
    buf = b""
    while b"\n" not in buf:
        try:
            chunk = conn.recv(1024)
        except TimeoutError as e:
            raise CommandError("request incomplete: no newline within 1 s.") from e
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_REQUEST_BYTES:
            raise CommandError(f"request longer than {MAX_REQUEST_BYTES} bytes.")
    return buf.split(b"\n", 1)[0]


def _peer_uid(conn: socket.socket) -> int | None:
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return None
    return struct.unpack("3i", creds)[1]


def request(path: str | Path, cmd: str, timeout_s: float = 2.0) -> dict[str, Any]:
    """Client side: send `cmd` to the appliance at `path`; return its reply.

    Raises CommandError when nobody listens or the appliance refuses the request."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout_s)
    try:
        try:
            s.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise CommandError(
                f"no appliance listening on {str(path)!r} ({e.strerror}); is `ionm run` running? "
                "Pass --socket or set alarms.control_socket if it uses another path."
            ) from e
        except PermissionError as e:
            raise CommandError(
                f"not allowed to use {str(path)!r}: join the appliance's group."
            ) from e
        s.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except TimeoutError as e:
        raise CommandError(f"appliance on {str(path)!r}: no answer within {timeout_s} s.") from e
    finally:
        s.close()
    try:
        reply = json.loads(buf)
    except json.JSONDecodeError as e:
        raise CommandError(f"appliance on {str(path)!r}: malformed reply {buf[:80]!r}.") from e
    if not reply.get("ok"):
        raise CommandError(f"appliance refused {cmd!r}: {reply.get('error')}")
    return reply

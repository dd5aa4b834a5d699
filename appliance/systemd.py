"""systemd integration: sd_notify (READY, STATUS, WATCHDOG, STOPPING) and journald logging.

The notify protocol is one datagram to the Unix socket named by $NOTIFY_SOCKET (a leading '@'
means an abstract socket). systemd-python's `systemd.daemon.notify` speaks it; when that module
is not importable (a laptop without libsystemd) we send the datagram ourselves. With no
NOTIFY_SOCKET (not started by systemd) every call is a cheap no-op that returns False.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

try:  # the ecosystem's library; optional so the appliance runs where libsystemd is absent
    from systemd import daemon as _sd_daemon
except ImportError:  # pragma: no cover - depends on the machine
    _sd_daemon = None


def _send_raw(message: str) -> bool:
    """One datagram to $NOTIFY_SOCKET without systemd-python."""
    addr = os.environ.get("NOTIFY_SOCKET", "")
    if not addr:
        return False
    target = "\0" + addr[1:] if addr.startswith("@") else addr
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(target)
            s.sendall(message.encode("utf-8"))
        return True
    except OSError as e:
        log.warning("sd_notify to %r failed: %s", addr, e)
        return False


def _send_library(message: str) -> bool:
    if _sd_daemon is None:
        return _send_raw(message)
    return bool(_sd_daemon.notify(message))


class _PriorityFormatter(logging.Formatter):
    """journald reads a leading "<N>" on each stderr line as the syslog priority
    (SyslogLevelPrefix=, on by default), so levels survive without systemd-python."""

    _PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6}

    def format(self, record: logging.LogRecord) -> str:
        prio = next((p for lvl, p in self._PRIORITY.items() if record.levelno >= lvl), 7)
        # one journal entry per line: continuation lines (tracebacks) keep the same priority
        return "\n".join(f"<{prio}>{line}" for line in super().format(record).splitlines())


class Notifier:
    """Tell systemd how the service is doing (Type=notify, WatchdogSec=).

    `use_library=False` forces the built-in datagram sender (what runs when systemd-python is
    not installed); both read $NOTIFY_SOCKET at each call, so a test can set it late.
    Thread-safe; each method returns True when a datagram went out.
    """

    def __init__(self, use_library: bool = True) -> None:
        self._send: Callable[[str], bool] = _send_library if use_library else _send_raw
        self._lock = threading.Lock()
        self._last_status = ""

    @property
    def enabled(self) -> bool:
        return bool(os.environ.get("NOTIFY_SOCKET"))

    def notify(self, message: str) -> bool:
        if not self.enabled:
            return False
        with self._lock:
            return self._send(message)

    def ready(self) -> bool:
        return self.notify("READY=1")

    def status(self, text: str) -> bool:
        """One line; repeated identical status lines are not re-sent."""
        line = " ".join(text.split())[:400]
        with self._lock:
            if line == self._last_status:
                return False
            self._last_status = line
        return self.notify(f"STATUS={line}")

    def watchdog(self) -> bool:
        """Call only while data flows end to end: systemd restarts us when this stops."""
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")


def watchdog_interval_s() -> float | None:
    """How often to send WATCHDOG=1: half of $WATCHDOG_USEC, or None when no watchdog is set
    (or it is meant for another process, $WATCHDOG_PID)."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2e6


def under_systemd() -> bool:
    """True when journald takes our output: $JOURNAL_STREAM names stderr, or $INVOCATION_ID is
    set (systemd starts every unit with it)."""
    if os.environ.get("INVOCATION_ID"):
        return True
    stream = os.environ.get("JOURNAL_STREAM", "")
    if not stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


def setup_logging(
    level: int | str = logging.INFO,
    sender_function: Callable[..., Any] | None = None,
    use_library: bool = True,
) -> logging.Handler:
    """Configure the root logger once and return its handler.

    Under systemd: systemd.journal.JournalHandler (structured fields; pass them with
    `log.warning("...", extra={"ALARM_ID": aid, "CASE_ID": cid})`, upper-case names), with
    SYSLOG_IDENTIFIER=ionm; without systemd-python, stderr lines with "<N>" priority prefixes
    (journald stores the level, not the extra fields). Otherwise plain stderr, timestamped.
    `sender_function` replaces journal.send (the library's own seam, for tests);
    `use_library=False` takes the path used when systemd-python is not installed.
    """
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_ionm", False):
            root.removeHandler(h)
    handler: logging.Handler
    journal_handler = None
    if use_library and under_systemd():
        try:
            from systemd.journal import JournalHandler

            journal_handler = JournalHandler
        except ImportError:
            journal_handler = None
    if journal_handler is not None:
        kw: dict[str, Any] = {"SYSLOG_IDENTIFIER": "ionm"}
        if sender_function is not None:
            kw["sender_function"] = sender_function
        handler = journal_handler(**kw)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    elif under_systemd():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_PriorityFormatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    handler._ionm = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return handler

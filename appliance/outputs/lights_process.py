"""The lights in a child process of their own (recommended for the service).

Why: in the monitor process the lights thread shares the GIL with the analysis, and a numpy/scipy
call that holds the GIL delays a flash edge by as long as it runs (`ionm bench lights` measures
it). Worse, if the monitor process hangs, a lights *thread* freezes with it and the green
"monitoring" lamp would stay lit. In a child process the rhythm is independent of the analysis,
and a parent that stops renewing `set_monitoring(True)` -- hung or dead -- turns the green dark
within `monitoring_timeout_s`; a child whose parent has gone turns everything off and exits.

The parent side never blocks: messages go through a multiprocessing queue (put_nowait).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
from collections.abc import Callable
from typing import Any

from appliance.alarms.events import Display
from appliance.errors import ConfigError
from appliance.outputs.gpio import GpioError
from appliance.settings.lights import LightsSettings

log = logging.getLogger(__name__)


def raise_priority(rt_priority: int = 10, nice: int = -10) -> str:
    """Ask the OS to run this process ahead of the analysis: SCHED_FIFO if allowed (root,
    CAP_SYS_NICE, or systemd LimitRTPRIO=), else a lower nice value, else nothing. Safe for the
    lights because their thread sleeps between edges. Returns what it got, for the log."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(rt_priority))
        return f"SCHED_FIFO {rt_priority}"
    except (PermissionError, OSError, AttributeError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
        return f"nice {nice}"
    except (PermissionError, OSError):
        return "normal priority (no CAP_SYS_NICE: timing shares the CPU with everything else)"


def _child(settings: LightsSettings, q: Any, status: Any, parent_pid: int, realtime: bool) -> None:
    from appliance.outputs.gpio import backend_from_settings
    from appliance.outputs.lights import Lights

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; it sends "close"
    got = raise_priority() if realtime else "normal priority (realtime=False)"
    (log.warning if got.startswith("normal") else log.info)("lights process: %s", got)
    try:
        backend = backend_from_settings(settings)
        lights = Lights.from_settings(settings, backend)
    except Exception as e:  # reported to the parent, which raises it: no silent dark lights
        status.put(("error", f"{type(e).__name__}: {e}"))
        return
    status.put(("ok", got))
    try:
        while True:
            try:
                msg = q.get(timeout=0.25)
            except queue.Empty:
                msg = None
            if os.getppid() != parent_pid:
                return  # parent gone: dark, not frozen
            if msg is None:
                continue
            kind, arg = msg
            if kind == "show":
                lights.show(arg)
            elif kind == "monitoring":
                lights.set_monitoring(arg)
            elif kind == "lamp_test":
                lights.lamp_test(arg)
            elif kind == "close":
                return
    finally:
        lights.close()
        backend.close()


class LightsProcess:
    """Same surface as `Lights` (show, set_monitoring, lamp_test, close), run in a child process
    with the backend named by `settings` ('recording' cannot cross a process: use 'file').

    With `source` (e.g. `manager.display`), a parent thread forwards the display whenever it
    changes (polled every `poll_s`). With `realtime` the child asks for SCHED_FIFO (or a lower
    nice value) where the OS allows it (see `raise_priority`).

    The constructor waits until the child has opened its backend (about a second: spawn imports
    numpy) and raises GpioError with the child's reason if it could not, e.g. RPi.GPIO missing.
    """

    def __init__(
        self,
        settings: LightsSettings,
        source: Callable[[], Display] | None = None,
        poll_s: float = 0.05,
        realtime: bool = True,
        start_timeout_s: float = 30.0,
    ) -> None:
        if settings.backend == "recording":
            raise ConfigError(
                "lights.backend: got 'recording', allowed in a lights process: 'rpi', 'terminal',"
                " 'file', 'none' (a recording stays in the child; use 'file' to inspect it)."
            )
        ctx = mp.get_context("spawn")  # no fork of a threaded parent
        self._q = ctx.Queue()
        self._status = ctx.Queue()
        self._proc = ctx.Process(
            target=_child, args=(settings, self._q, self._status, os.getpid(), realtime),
            name="ionm-lights", daemon=True,
        )
        self._proc.start()
        try:
            result, detail = self._status.get(timeout=start_timeout_s)
        except queue.Empty:
            result, detail = "error", f"no word from it within {start_timeout_s:g} s"
        if result != "ok":
            self._proc.join(timeout=1.0)
            if self._proc.is_alive():
                self._proc.terminate()
            raise GpioError(f"lights process failed to start: {detail}")
        self._priority = detail
        self.n_dropped = 0
        self._stop = threading.Event()
        self._forwarder = None
        if source is not None:
            self._forwarder = threading.Thread(
                target=self._forward, args=(source, poll_s), name="lights-forward", daemon=True
            )
            self._forwarder.start()

    def priority(self) -> str:
        """The scheduling the child obtained, e.g. 'SCHED_FIFO 10'."""
        return self._priority

    def alive(self) -> bool:
        """For the watchdog: the child runs."""
        return self._proc.is_alive()

    def show(self, display: Display) -> None:
        self._put("show", display)

    def set_monitoring(self, ok: bool) -> None:
        self._put("monitoring", bool(ok))

    def lamp_test(self, duration_s: float = 1.5) -> None:
        """Starts the lamp test in the child (does not wait for it)."""
        self._put("lamp_test", float(duration_s))

    def close(self, timeout_s: float = 3.0) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._forwarder is not None:
            self._forwarder.join(timeout=1.0)
        self._put("close", None)
        self._proc.join(timeout=timeout_s)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=1.0)
        self._q.close()
        self._status.close()

    def __enter__(self) -> LightsProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _put(self, kind: str, arg: object) -> None:
        if not self._proc.is_alive():
            self.n_dropped += 1
            if self.n_dropped == 1:
                log.error("lights process not running (exit code %s); lights are dark",
                          self._proc.exitcode)
            return
        self._q.put_nowait((kind, arg))

    def _forward(self, source: Callable[[], Display], poll_s: float) -> None:
        last = None
        while not self._stop.wait(poll_s):
            try:
                d = source()
                if d != last:
                    self.show(d)
                    last = d
            except Exception:  # keep forwarding whatever one poll did
                log.exception("lights: display source failed")

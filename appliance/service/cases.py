"""The case part: the CaseRecorder, the open case, case start/stop on a worker thread, restoring
a resumed case's baselines and latched alarms, and the retained `case` MQTT message.

The main loop only calls the never-blocking methods (`record`, `write_block`, `save_state`,
`conditions`); start/stop touch the disk, so they run on the `ionm-case` worker and, while one
runs (`busy`), the loop does not feed the recorder.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from appliance.errors import CommandError, IonmError

log = logging.getLogger("ionm.service")


class Cases:
    """`publish_case(d)` sends the retained case message (if MQTT runs); `fault(cid,
    message)` raises a technical alarm for a part that cannot start."""

    def __init__(self, cfg: Any, state_dir: Path, publish_case: Callable[[dict], None],
                 fault: Callable[[str, str], None]) -> None:
        self.cfg = cfg
        self.state_dir = state_dir
        self._publish = publish_case
        self._fault = fault
        self.recorder: Any = None
        self.case_id: str | None = None
        self.busy = threading.Event()  # a case start/stop is running: don't feed the recorder
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ionm-case")

    # ---- start-up

    def open(self, monitor: Any, manager: Any) -> None:
        """Resume the open case (its baselines and latched alarms) or start one."""
        from appliance.outputs.recorder import CaseRecorder

        if not self.cfg.recording.enabled:
            log.info("recording disabled (recording.enabled = false)")
            return
        directory = Path(self.cfg.recording.directory)
        if not directory.is_absolute():
            directory = self.state_dir / directory
        try:
            self.recorder = CaseRecorder(directory, self.cfg)
            self.case_id = self.recorder.resume()
            resumed = self.case_id is not None
            if not resumed:
                self.case_id = self.recorder.start_case(self.cfg.device.id, "")
                log.info("case %s started", self.case_id, extra={"CASE_ID": self.case_id})
        except (OSError, sqlite3.Error, IonmError) as e:  # monitor on, without recording
            self.recorder = self.case_id = None
            self._fault("tech.storage", f"recording unavailable: cannot open a case in "
                        f"{str(directory)!r} ({e}); monitoring goes on without recording")
            return
        if resumed:
            self._restore(monitor, manager)

    def _restore(self, monitor: Any, manager: Any) -> None:
        """Baselines and latched alarms of a resumed case (the loop saves them on change)."""
        rec = self.recorder
        baselines = rec.state("baselines")
        n_base = 0
        if baselines:
            try:
                monitor.restore_baselines(baselines)
                n_base = len(baselines.get("current", []))
                for b in baselines.get("current", []):
                    rec.record("baseline", {**b, "reason": "restored"})
            except (KeyError, TypeError, ValueError) as e:
                log.error("case %s: stored baselines unreadable (%s); capturing anew",
                          self.case_id, e, extra={"CASE_ID": self.case_id})
        alarms = rec.state("alarms")
        restored = manager.restore(alarms) if alarms else []
        log.warning("case %s resumed: %d baselines, %d latched alarms restored", self.case_id,
                    n_base, len(restored), extra={"CASE_ID": self.case_id})

    # ---- the loop's never-blocking calls

    @property
    def feeding(self) -> bool:
        return self.recorder is not None and not self.busy.is_set()

    def record(self, kind: str, d: dict[str, Any]) -> None:
        if self.feeding:
            self.recorder.record(kind, d)

    def write_block(self, block: Any) -> None:
        if self.feeding:
            self.recorder.write_block(block)  # queued: never waits on the disk

    def save_state(self, key: str, value: Callable[[], Any]) -> None:
        """Store value() under `key` for recovery; value is only computed when it is stored."""
        if self.feeding:
            self.recorder.save_state(key, value())

    def conditions(self, t_s: float) -> list[Any]:
        return list(self.recorder.conditions(t_s)) if self.feeding else []

    def annotate(self, t_s: float, text: str) -> None:
        """A note in the case (BDF+ annotation and event row); CommandError without a case."""
        if self.recorder is None or self.case_id is None:
            raise CommandError("annotate: no case is being recorded")
        self.recorder.annotate(t_s, text)

    # ---- start/stop (commands): on the worker

    def check_can_change(self, name: str) -> None:
        """CommandError naming why `name` (start_case/stop_case) cannot run now."""
        if self.recorder is None:
            raise CommandError(f"{name}: recording is disabled (recording.enabled = false)")
        if self.busy.is_set():
            raise CommandError(f"{name}: a case start/stop is already running; retry")
        if name == "stop_case" and self.case_id is None:
            raise CommandError("stop_case: no case is open")

    def start(self, label: str, procedure: str, alarms_state: Callable[[], Any]) -> Future:
        """Stop the open case and start a new one on the worker (after check_can_change)."""
        self.busy.set()
        return self._pool.submit(self._start, label, procedure, alarms_state)

    def stop(self) -> Future:
        self.busy.set()
        return self._pool.submit(self._stop)

    def _start(self, label: str, procedure: str, alarms_state: Callable[[], Any]
               ) -> dict[str, Any]:
        try:
            if self.case_id is not None:
                self.recorder.stop_case()
            self.case_id = self.recorder.start_case(label, procedure)
        finally:
            self.busy.clear()
        log.info("case %s started (%s)", self.case_id, procedure, extra={"CASE_ID": self.case_id})
        self.recorder.save_state("alarms", alarms_state())
        self.publish()
        return {"case_id": self.case_id}

    def _stop(self) -> dict[str, Any]:
        old = self.case_id
        try:
            self.recorder.stop_case()
            self.case_id = None
        finally:
            self.busy.clear()
        log.info("case %s stopped", old, extra={"CASE_ID": old})
        self.publish(stopped=old)
        return {"case_id": old}

    # ---- the retained `case` message

    def _info(self) -> dict[str, Any] | None:
        from appliance.outputs import casestore

        case_dir = getattr(self.recorder, "case_dir", None)
        try:
            return casestore.case_info(Path(case_dir)) if case_dir else None
        except (OSError, sqlite3.Error):
            return None

    def publish(self, stopped: str | None = None) -> None:
        """Start-up or the case worker only: it reads the case store."""
        if self.case_id is not None:
            d = {"type": "case", "state": "running", "case_id": self.case_id}
            info = self._info()
            if info:
                d.update(label=info["label"] or "", procedure=info["procedure"] or "",
                         started_utc=_utc_z(info["started_utc"]))
        elif stopped is not None:
            d = {"type": "case", "state": "stopped", "case_id": stopped}
        else:
            d = {"type": "case", "state": "none", "case_id": None}
        self._publish(d)

    # ---- shutdown

    def close(self, final_state: dict[str, Callable[[], Any]]) -> None:
        """Finish a running start/stop, store `final_state`, close; the case stays open so a
        restart resumes it."""
        self._pool.shutdown(wait=True, cancel_futures=False)
        if self.recorder is None:
            return
        if self.case_id:
            for key, value in final_state.items():
                try:
                    self.recorder.save_state(key, value())
                except Exception:  # noqa: BLE001 - shutting down: keep closing
                    log.exception("saving %s at shutdown", key)
        self.recorder.close()


def _utc_z(t: str | None) -> str | None:
    """The store's ISO time with '+00:00' as MQTT's 'Z' form."""
    return t.replace("+00:00", "Z") if t else None

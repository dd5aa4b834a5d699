"""The case recorder: one folder per case with the raw BDF+ segments and the SQLite store.

    <directory>/<case_id>/raw-001.bdf   every channel in µV, 'Status' trigger channel,
                          raw-002.bdf   stimulus and alarm events as annotations; a new segment
                          ...           after a restart (resume) or when the disk recovers
                          case.sqlite   see appliance/outputs/casestore.py

Nothing here blocks the caller: `write_block`, `record`, `annotate`, `save_state` put items on a
queue that one writer thread drains. The raw queue is bounded (`recording.queue_s` of samples)
and so is the event queue; what does not fit is dropped and counted. Trouble with the disk (slow,
nearly full, write errors) raises the technical condition "tech.storage"; monitoring goes on and
recording degrades: below `min_free_mb` raw writing pauses while events are still stored, below
`stop_free_mb` the store pauses too, and both resume (raw in a new segment) once space returns.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import queue
import secrets
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.conditions import Condition, Kind, Priority
from appliance.config_rules import ADC_FULL_SCALE_UV
from appliance.errors import RecordingError
from appliance.frontend.bdf import BdfWriter
from appliance.frontend.block import SampleBlock
from appliance.outputs import casestore

log = logging.getLogger(__name__)

MAX_EVENTS_QUEUED = 20_000
SOFTWARE = f"ionm {__version__}"  # in the case's started/resumed events: what recorded each run
DROP_ALARM_S = 10.0  # tech.storage stays active this long after the last drop
RECOVER_FACTOR = 1.2  # hysteresis: resume once free space exceeds the threshold by 20 %


@dataclass
class RecorderStats:
    blocks_written: int = 0
    samples_written: int = 0
    blocks_dropped: int = 0
    samples_dropped: int = 0
    events_written: int = 0
    events_dropped: int = 0
    annotations_dropped: int = 0
    raw_errors: int = 0
    db_errors: int = 0
    segments: int = 0
    clipped_samples: int = 0  # beyond ±physical_max_uv: stored at the limit
    free_mb: float = float("nan")


class CaseRecorder:
    """Record cases under `directory` (cfg.recording holds the thresholds).

    channel_names defaults to cfg.frontend.channels (used when a block's channel count
    matches, otherwise ch1..chN). Times `t_s` are seconds on the stream's clock
    (first_sample / sample rate), the same as Condition.t_s.
    """

    def __init__(self, directory: str | Path, cfg: Any,
                 channel_names: tuple[str, ...] | None = None) -> None:
        self.root = Path(directory)
        self.cfg = cfg
        self.settings = cfg.recording
        self.channel_names = tuple(channel_names or cfg.frontend.channels)
        self.stats = RecorderStats()
        self.case_id: str | None = None
        self.case_dir: Path | None = None
        self._q: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._raw_queued = 0  # samples waiting in the queue
        self._events_queued = 0
        self._raw_limit: int | None = None  # samples, set from the first block's rate
        self._thread: threading.Thread | None = None
        self._db: Any = None  # the writer thread's sqlite3 connection
        # writer-thread state
        self._bdf: BdfWriter | None = None
        self._seg_t0_s = 0.0
        self._seg_reason = "start"
        self._raw_paused = False
        self._db_paused = False
        self._raw_failed = False
        self._db_failed = False
        self._last_drop_t = -1e9
        self._last_clip_t = -1e9
        self._next_disk_check = 0.0
        self._cond_active = False
        self._problem = ""
        self._setup_error = ""  # the case folder/store could not be made

    # ------------------------------------------------------------------ lifecycle (caller thread)

    def start_case(self, label: str, procedure: str) -> str:
        """Create the case folder and store; returns the case id. A folder or store that cannot
        be made does not raise (monitoring must start anyway): nothing is recorded and
        tech.storage says why."""
        if self.case_id is not None:
            raise RecordingError(f"case {self.case_id} is open; stop_case() it first.")
        now = dt.datetime.now(dt.UTC)
        case_id = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"
        case_dir = self.root / case_id
        try:
            case_dir.mkdir(parents=True)
            casestore.create(case_dir, case_id, label, procedure, self.cfg.to_dict(),
                             self.cfg.hash, self.settings.fsync)
        except (OSError, sqlite3.Error) as e:
            log.error("case %s: cannot create %s (%s); monitoring without recording",
                      case_id, case_dir, e, extra={"CASE_ID": case_id})
            with self._lock:
                self.case_id, self.case_dir = case_id, None
                self._raw_failed = self._db_failed = True
                self._setup_error = f"cannot create case folder {case_dir} ({e})"
            return case_id
        self._open(case_id, case_dir, "start")
        self.record("case", {"event": "started", "label": label, "procedure": procedure,
                             "software": SOFTWARE})
        return case_id

    def resume(self) -> str | None:
        """Find the open case (no stop marker) left by a crash and continue it: a new raw
        segment in the same folder, the old ones untouched. None when there is none."""
        if self.case_id is not None:
            return self.case_id
        try:
            case_dir = casestore.find_open_case(self.root)
        except (OSError, sqlite3.Error) as e:
            log.error("cannot look for an open case in %s: %s", self.root, e)
            case_dir = None
        if case_dir is None:
            return None
        info = casestore.case_info(case_dir)
        assert info is not None  # noqa: S101 - find_open_case read it
        self._open(info["id"], case_dir, "resume")
        self.record("case", {"event": "resumed", "software": SOFTWARE})
        log.info("resumed case %s", info["id"], extra={"CASE_ID": info["id"]})
        return info["id"]

    def _open(self, case_id: str, case_dir: Path, reason: str) -> None:
        self.case_id, self.case_dir = case_id, case_dir
        self._seg_reason = reason
        self._raw_failed = self._db_failed = False
        self._setup_error = ""
        self._raw_queued = self._events_queued = 0
        self._q = queue.SimpleQueue()  # nothing left over from a previous case
        self._check_disk(force=True)
        self._thread = threading.Thread(target=self._run, name="case-recorder", daemon=True)
        self._thread.start()

    def stop_case(self, timeout_s: float = 10.0) -> None:
        """Close the raw segment and set the stop marker (a later resume() skips this case)."""
        if self.case_id is None:
            return
        self.record("case", {"event": "stopped"})
        self._finish(("stop",), timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush and close files; the case stays open (resume() continues it). Idempotent."""
        if self.case_id is not None:
            self._finish(("close",), timeout_s)

    def _finish(self, item: tuple[Any, ...], timeout_s: float) -> None:
        alive = self._thread is not None and self._thread.is_alive()
        self._q.put(item)
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("case recorder did not finish within %.1f s", timeout_s)
        if not alive and item[0] == "stop" and self.case_dir is not None:
            # the writer thread had died: still set the stop marker, or resume() would return
            casestore.mark_stopped(self.case_dir)
        self._thread = None
        self.case_id = self.case_dir = None

    def __enter__(self) -> CaseRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ never-blocking inputs

    def write_block(self, block: SampleBlock) -> bool:
        """Queue a block for the raw BDF+; False (and counted) when it had to be dropped."""
        if self.case_id is None:
            return False
        n = block.n_samples
        with self._lock:
            if self._raw_limit is None:
                self._raw_limit = max(1, int(self.settings.queue_s * block.sample_rate_hz))
            if self._raw_queued + n > self._raw_limit or self._raw_paused or self._raw_failed:
                self.stats.blocks_dropped += 1
                self.stats.samples_dropped += n
                if not (self._raw_paused or self._raw_failed):  # a pause is reported as such
                    self._last_drop_t = time.monotonic()
                return False
            self._raw_queued += n
        self._q.put(("block", block))
        return True

    def record(self, kind: str, data: dict[str, Any], t_s: float | None = None) -> bool:
        """Store a JSON-able dict (trend, waveform, alarm_event, condition, command, baseline,
        ...). Alarm events also become annotations in the raw recording."""
        if self.case_id is None:
            return False
        with self._lock:
            if self._thread is None or self._db_failed:  # nobody to write it: count and go
                self.stats.events_dropped += 1
                return False
            if self._events_queued >= MAX_EVENTS_QUEUED:
                self.stats.events_dropped += 1
                self._last_drop_t = time.monotonic()
                return False
            self._events_queued += 1
        t = data.get("t_s") if t_s is None else t_s
        self._q.put(("event", casestore.utc_now(), t, kind, str(data.get("site", "")),
                     json.dumps(data, default=str)))
        if kind == "alarm_event" and t is not None:
            text = (f"alarm {data.get('event', '?')}: {data.get('alarm_id', '?')} "
                    f"({data.get('priority', '?')}) {data.get('message', '')}")
            self._q.put(("annot", float(t), text.strip()))
        return True

    def annotate(self, t_s: float, text: str) -> None:
        """An annotation in the raw recording (and in the store as kind 'annotation')."""
        self.record("annotation", {"t_s": t_s, "text": text})
        if self._thread is not None and not self._raw_failed:
            self._q.put(("annot", float(t_s), text))

    def save_state(self, key: str, data: dict[str, Any]) -> None:
        """Latest JSON under `key` (e.g. 'baselines', 'alarms'), what resume() restores."""
        if self._thread is not None and not self._db_failed:
            self._q.put(("state", key, json.dumps(data, default=str)))

    def state(self, key: str) -> dict[str, Any] | None:
        """What save_state stored last (read from disk: works right after resume())."""
        if self.case_dir is None:
            return None
        return casestore.read_state(self.case_dir, key)

    def health(self) -> dict[str, Any]:
        """Counters for the health message (MQTT) and STATUS line."""
        with self._lock:
            d = dataclasses.asdict(self.stats)
            d.update(case_id=self.case_id, raw_paused=self._raw_paused,
                     store_paused=self._db_paused, raw_failed=self._raw_failed,
                     store_failed=self._db_failed)
        return d

    def conditions(self, t_s: float) -> list[Condition]:
        """tech.storage while the disk gives trouble, then once inactive when it is over.
        Reads flags only (the writer thread checks the disk): safe on any thread."""
        with self._lock:
            problem = self._problem_text()
            was = self._cond_active
            self._cond_active = bool(problem)
            if not problem and not was:
                return []
            s = self.stats
            evidence = {"free_mb": round(s.free_mb, 1), "blocks_dropped": s.blocks_dropped,
                        "events_dropped": s.events_dropped, "raw_errors": s.raw_errors,
                        "db_errors": s.db_errors, "clipped_samples": s.clipped_samples,
                        "raw_paused": self._raw_paused,
                        "store_paused": self._db_paused}
        return [Condition("tech.storage", Kind.TECHNICAL, Priority.MEDIUM, bool(problem), t_s,
                          "", problem or self._problem or "recording storage OK", evidence)]

    def _problem_text(self) -> str:
        parts = []
        if self._db_paused:
            parts.append(f"disk nearly full ({self.stats.free_mb:.0f} MB free): "
                         "nothing is being recorded")
        elif self._raw_paused:
            parts.append(f"disk nearly full ({self.stats.free_mb:.0f} MB free): raw recording "
                         "paused, events still stored")
        if self._setup_error:
            parts.append(f"nothing is being recorded: {self._setup_error}")
        elif self._raw_failed:
            parts.append("raw recording failed (write error)")
        if self._db_failed and not self._setup_error:
            parts.append("case store failed (write error)")
        if time.monotonic() - self._last_drop_t < DROP_ALARM_S:
            parts.append(f"recording cannot keep up: {self.stats.blocks_dropped} blocks, "
                         f"{self.stats.events_dropped} events dropped")
        if time.monotonic() - self._last_clip_t < DROP_ALARM_S:
            parts.append(f"raw recording clips: {self.stats.clipped_samples} samples beyond "
                         f"±{self._physical_max_uv():g} µV stored at the limit (raise "
                         "recording.physical_max_uv)")
        text = "; ".join(parts)
        if text:
            self._problem = text
        return text

    def _check_disk(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.case_dir is None or (not force and now < self._next_disk_check):
            return
        self._next_disk_check = now + self.settings.disk_check_s
        try:
            free_mb = shutil.disk_usage(self.case_dir).free / 1e6
        except OSError:
            return
        s = self.settings
        with self._lock:
            self.stats.free_mb = free_mb
            if free_mb < s.min_free_mb:
                self._raw_paused = True
            elif free_mb > s.min_free_mb * RECOVER_FACTOR:
                self._raw_paused = False
            if free_mb < s.stop_free_mb:
                self._db_paused = True
            elif free_mb > s.stop_free_mb * RECOVER_FACTOR:
                self._db_paused = False

    # ---------------------------------------------------------------------- writer thread

    def _run(self) -> None:
        assert self.case_dir is not None  # noqa: S101
        db = self._db = casestore.connect(self.case_dir, self.settings.fsync)
        pending, last_commit = 0, time.monotonic()
        try:
            while True:
                try:
                    item = self._q.get(timeout=0.2)
                except queue.Empty:
                    item = None
                if item is not None:
                    done, n = self._handle(db, item)
                    pending += n
                    if done:
                        self._commit(db, pending)
                        return
                now = time.monotonic()
                urgent = item is not None and item[0] == "state"  # recovery data: commit now
                if pending and (item is None or urgent or pending >= 200
                                or now - last_commit > 0.25):
                    pending, last_commit = self._commit(db, pending), now
                self._check_disk()
                if self._raw_paused and self._bdf is not None:
                    self._close_segment("disk nearly full")
        except Exception:  # never take monitoring down; say why the recorder stopped
            log.exception("case recorder thread failed", extra={"CASE_ID": self.case_id})
            with self._lock:
                self._raw_failed = self._db_failed = True
        finally:
            self._close_segment("")
            db.close()

    def _handle(self, db: Any, item: tuple[Any, ...]) -> tuple[bool, int]:
        """Apply one queued item; (finished, rows written)."""
        op = item[0]
        if op == "block":
            self._write_raw(item[1])
        elif op == "event":
            with self._lock:
                self._events_queued -= 1
            return False, self._write_db(
                db, "INSERT INTO events (t_utc, t_s, kind, site, json) VALUES (?, ?, ?, ?, ?)",
                item[1:])
        elif op == "state":
            return False, self._write_db(db, "INSERT OR REPLACE INTO state VALUES (?, ?, ?)",
                                         (item[1], casestore.utc_now(), item[2]))
        elif op == "annot":
            self._annotate_raw(item[1], item[2])
        elif op in ("stop", "close"):
            self._close_segment("")
            n = 0
            if op == "stop":
                n = self._write_db(db, 'UPDATE "case" SET stopped_utc = ?', (casestore.utc_now(),),
                                   force=True)
            return True, n
        return False, 0

    def _write_db(self, db: Any, sql: str, args: tuple[Any, ...], force: bool = False) -> int:
        """One statement; skipped (counted) while the store is paused, unless `force` (the stop
        marker: a few bytes that keep resume() from reopening a finished case)."""
        if (self._db_paused and not force) or self._db_failed:
            with self._lock:
                self.stats.events_dropped += 1
            return 0
        try:
            db.execute(sql, args)
            self.stats.events_written += 1
            return 1
        except Exception as e:  # sqlite3.OperationalError on a full disk, etc.
            with self._lock:
                self.stats.db_errors += 1
                self._db_failed = True
            log.error("case store write failed: %s", e, extra={"CASE_ID": self.case_id})
            return 0

    def _commit(self, db: Any, pending: int) -> int:
        if (pending or db.in_transaction) and not self._db_failed:
            try:
                db.commit()
            except Exception as e:
                with self._lock:
                    self.stats.db_errors += 1
                    self._db_failed = True
                log.error("case store commit failed: %s", e, extra={"CASE_ID": self.case_id})
        return 0

    def _write_raw(self, block: SampleBlock) -> None:
        with self._lock:
            self._raw_queued -= block.n_samples
        if self._raw_paused or self._raw_failed:
            with self._lock:
                self.stats.blocks_dropped += 1
                self.stats.samples_dropped += block.n_samples
            return
        try:
            if self._bdf is None:
                self._open_segment(block)
            assert self._bdf is not None  # noqa: S101
            clipped = self._bdf.clipped_samples
            self._bdf.write(block)
            if self._bdf.clipped_samples > clipped:
                with self._lock:
                    self.stats.clipped_samples += self._bdf.clipped_samples - clipped
                    self._last_clip_t = time.monotonic()
            self.stats.blocks_written += 1
            self.stats.samples_written += block.n_samples
        except (OSError, RecordingError) as e:
            with self._lock:
                self.stats.raw_errors += 1
                self.stats.blocks_dropped += 1
                self.stats.samples_dropped += block.n_samples
                self._raw_failed = True
            log.error("raw recording failed: %s", e, extra={"CASE_ID": self.case_id})
            self._close_segment("")

    def _open_segment(self, block: SampleBlock) -> None:
        assert self.case_dir is not None  # noqa: S101
        n = len(list(self.case_dir.glob("raw-*.bdf"))) + 1
        name = f"raw-{n:03d}.bdf"
        names = self.channel_names
        if len(names) != block.n_channels:
            names = tuple(f"ch{i + 1}" for i in range(block.n_channels))
        pmax = self._physical_max_uv()
        info = casestore.case_info(self.case_dir) or {}
        label = "_".join(str(info.get("label", "X")).split()) or "X"
        self._bdf = BdfWriter(
            self.case_dir / name, names, block.sample_rate_hz, physical_max_uv=pmax,
            patient=f"{label} X X X", recording=f"{self.case_id} X ionm",
            annotate_triggers=self.settings.annotate_stimuli, fsync=self.settings.fsync,
        )
        self._seg_t0_s = block.first_sample / block.sample_rate_hz
        self.stats.segments += 1
        seg = {"t_s": self._seg_t0_s, "file": name, "reason": self._seg_reason,
               "start_utc": self._bdf.start_utc.isoformat()}
        # written here, not queued: a stop already in the queue must not overtake it
        self._write_db(self._db, "INSERT INTO events (t_utc, t_s, kind, site, json) "
                       "VALUES (?, ?, 'segment', '', ?)",
                       (casestore.utc_now(), self._seg_t0_s, json.dumps(seg)))
        self._seg_reason = "disk space recovered"

    def _physical_max_uv(self) -> float:
        return self.settings.physical_max_uv or ADC_FULL_SCALE_UV / self.cfg.frontend.gain

    def _annotate_raw(self, t_s: float, text: str) -> None:
        if self._bdf is None:
            with self._lock:
                self.stats.annotations_dropped += 1
            return
        self._bdf.annotate(t_s - self._seg_t0_s, 0.0, text)

    def _close_segment(self, why: str) -> None:
        if self._bdf is None:
            return
        bdf, self._bdf = self._bdf, None
        try:
            if why:
                bdf.annotate(bdf.elapsed_s, 0.0, f"raw recording paused: {why}")
            bdf.close()
        except OSError as e:
            with self._lock:
                self.stats.raw_errors += 1
            log.error("closing %s failed: %s", bdf.path, e, extra={"CASE_ID": self.case_id})

"""A recorded case read for the report: one read-only snapshot of case.sqlite, put on one time
axis (seconds since the case started, across resumed runs) and indexed for the figures.

Read-only and non-blocking: the store is in WAL mode, so a `mode=ro` connection inside one read
transaction sees a consistent snapshot while the recorder keeps writing (a case still being
recorded is reported up to its last committed event). A store that is not SQLite, truncated or
lacks the case tables is a RecordingError naming the file (`ionm report` exits 2 with it).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from appliance.errors import RecordingError
from appliance.outputs import casestore


@dataclass
class Event:
    seq: int
    t_utc: str
    t_s: float | None  # the run's stream clock, as stored
    kind: str
    site: str
    data: dict[str, Any]
    case_s: float = float("nan")  # seconds since the case started (every run on one axis)


@dataclass
class CaseData:
    """Everything the report draws, in the case's own terms."""

    case_dir: Path
    info: dict[str, Any]  # id, label, procedure, started_utc, stopped_utc, config, config_hash
    events: list[Event]
    state: dict[str, Any]
    problems: list[str] = field(default_factory=list)  # rows that could not be read
    run_starts_s: list[float] = field(default_factory=list)  # case_s where each run began

    @property
    def recording(self) -> bool:
        return not self.info.get("stopped_utc")

    def of(self, *kinds: str) -> list[Event]:
        return [e for e in self.events if e.kind in kinds]

    @property
    def end_s(self) -> float:
        return max((e.case_s for e in self.events if np.isfinite(e.case_s)), default=0.0)

    def clock(self, case_s: float) -> str:
        """The UTC wall time of a case time (start + offset), HH:MM:SS."""
        start = parse_utc(self.info.get("started_utc"))
        if start is None or not np.isfinite(case_s):
            return "—"
        return f"{start + dt.timedelta(seconds=case_s):%H:%M:%S}"

    def waveforms(self) -> dict[tuple[str, str], list[Event]]:
        """(site, channel) -> waveform events in time order."""
        out: dict[tuple[str, str], list[Event]] = defaultdict(list)
        for e in self.of("waveform"):
            out[(e.site, str(e.data.get("channel", "")))].append(e)
        return out

    def trends(self) -> dict[tuple[str, str], list[Event]]:
        out: dict[tuple[str, str], list[Event]] = defaultdict(list)
        for e in self.of("trend"):
            out[(e.site, str(e.data.get("channel", "")))].append(e)
        return out

    def baselines(self) -> dict[tuple[str, str], list[Event]]:
        """(site, channel) -> baselines taken (auto or set by hand), in time order. Baselines
        restored after a restart repeat an earlier one and are left out."""
        out: dict[tuple[str, str], list[Event]] = defaultdict(list)
        for e in self.of("baseline"):
            if e.data.get("reason") != "restored":
                out[(e.site, str(e.data.get("channel", "")))].append(e)
        return out


def parse_utc(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        t = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _read(path: Path) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """One consistent snapshot (a single read transaction) of the case row, events, state."""
    try:
        db = casestore.connect_read_only(path)
        try:
            db.execute("BEGIN")
            case = db.execute('SELECT id, label, procedure, started_utc, stopped_utc, '
                              'config_json, config_hash FROM "case"').fetchone()
            events = db.execute("SELECT seq, t_utc, t_s, kind, site, json FROM events "
                                "ORDER BY seq").fetchall()
            state = db.execute("SELECT key, json FROM state").fetchall()
            db.execute("COMMIT")
        finally:
            db.close()
    except sqlite3.DatabaseError as e:  # not a database, truncated, malformed, no such table
        raise RecordingError(f"{path}: not a readable case store ({e}).") from None
    if case is None:
        raise RecordingError(f"{path}: not a readable case store (no case row).")
    return case, events, state


def load(case_dir: str | Path) -> CaseData:
    """Read a case folder; RecordingError (one line naming the problem) when it is not one."""
    d = Path(case_dir)
    if not d.is_dir():
        raise RecordingError(f"{str(d)!r}: not a case folder (no such directory).")
    path = d / casestore.DB_NAME
    if not path.is_file():
        raise RecordingError(f"{str(d)!r}: not a case folder (no {casestore.DB_NAME} in it).")
    row, rows, state_rows = _read(path)
    problems: list[str] = []
    keys = ("id", "label", "procedure", "started_utc", "stopped_utc", "config", "config_hash")
    info = dict(zip(keys, row, strict=True))
    try:
        info["config"] = json.loads(info["config"] or "{}")
    except ValueError as e:
        problems.append(f"{casestore.DB_NAME}: the case's config snapshot is not valid JSON ({e})")
        info["config"] = {}
    events = []
    for seq, t_utc, t_s, kind, site, text in rows:
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as e:
            problems.append(f"{casestore.DB_NAME} events row seq {seq} (kind {kind!r}): "
                            f"not valid JSON ({e}); left out")
            continue
        if not isinstance(data, dict):
            problems.append(f"{casestore.DB_NAME} events row seq {seq} (kind {kind!r}): "
                            "not a JSON object; left out")
            continue
        t = float(t_s) if isinstance(t_s, int | float) and np.isfinite(t_s) else None
        events.append(Event(int(seq), str(t_utc or ""), t, str(kind), str(site or ""), data))
    state = {}
    for k, text in state_rows:
        try:
            state[k] = json.loads(text)
        except (TypeError, ValueError) as e:
            problems.append(f"{casestore.DB_NAME} state {k!r}: not valid JSON ({e}); left out")
    case = CaseData(d, info, events, state, problems)
    case.run_starts_s = place_on_case_axis(case)
    return case


def place_on_case_axis(case: CaseData) -> list[float]:
    """Set every event's `case_s`. Each run (the first, then one per resume after a restart)
    has its own stream clock starting near 0; a run starts on the case axis at its wall-clock
    distance from the case start, but never before the previous run's last event (a run
    faster than real time, as in tests, would otherwise overlap). Returns each run's start."""
    start = parse_utc(case.info.get("started_utc"))
    offset, last, starts = 0.0, 0.0, [0.0]
    for e in case.events:
        if e.kind == "case" and e.data.get("event") == "resumed":
            wall = parse_utc(e.t_utc)
            since_s = (wall - start).total_seconds() if wall and start else 0.0
            offset = max(since_s, last)
            starts.append(offset)
        if e.t_s is not None:
            e.case_s = offset + e.t_s
            if e.data.get("reason") != "restored":  # restored baselines keep their old t_s
                last = max(last, e.case_s)
    return starts


def decode(d: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """(time ms, µV) of a stored waveform, or None when it does not decode."""
    from appliance.analysis.outputs import decode_waveform

    try:
        y = decode_waveform(d)
        fs = float(d["sample_rate_hz"])
        t0 = float(d.get("t0_ms") or 0.0)
    except (KeyError, TypeError, ValueError):
        return None
    if y.size == 0 or fs <= 0:
        return None
    return t0 + np.arange(y.size) * 1e3 / fs, y

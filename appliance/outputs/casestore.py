"""The SQLite half of a case folder: what happened, in the shared JSON shapes.

case.sqlite tables
  case      one row: id, label (anonymised), procedure, started_utc, stopped_utc (NULL while
            open: the stop marker `resume()` looks for), config JSON and hash
  events    seq, t_utc, t_s, kind, site, json: trends, waveforms (averages), alarm events
            (raised / acknowledged / ...), conditions, commands, baselines, annotations, notes
  state     key -> latest JSON (e.g. "baselines", "alarms": latched alarm state for recovery)
Raw BDF+ segments are events of kind "segment" ({file, reason, start_utc, t_s}).
WAL journal: a reader (export, `state()`) never blocks the writer thread; a SIGKILL loses at
most the transaction being written, never the database.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

DB_NAME = "case.sqlite"

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS "case" (
    id TEXT PRIMARY KEY, label TEXT, procedure TEXT, started_utc TEXT, stopped_utc TEXT,
    config_json TEXT, config_hash TEXT);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, t_utc TEXT, t_s REAL, kind TEXT, site TEXT,
    json TEXT);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, t_utc TEXT, json TEXT);
"""


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to a case store (`path`: its case.sqlite). A WAL store opened
    read-only needs its -shm file, which read-only media (an archived case) cannot hold; with
    no -wal file everything is in the main file and nobody is writing, so it is read as
    immutable. sqlite3.Error as sqlite raises it otherwise."""
    uri = f"file:{quote(str(path))}?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=5.0)
    try:
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1")  # the -shm file is made here
    except sqlite3.OperationalError as e:
        db.close()
        if "unable to open" not in str(e) or Path(f"{path}-wal").exists():
            raise
        db = sqlite3.connect(uri + "&immutable=1", uri=True, timeout=5.0)
    return db


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def connect(case_dir: Path, fsync: bool = True) -> sqlite3.Connection:
    db = sqlite3.connect(case_dir / DB_NAME, timeout=5.0)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'NORMAL' if fsync else 'OFF'}")
    db.executescript(SCHEMA)
    return db


def create(case_dir: Path, case_id: str, label: str, procedure: str, config: dict[str, Any],
           config_hash: str, fsync: bool = True) -> None:
    with connect(case_dir, fsync) as db:
        db.execute(
            'INSERT INTO "case" VALUES (?, ?, ?, ?, NULL, ?, ?)',
            (case_id, label, procedure, utc_now(), json.dumps(config, default=str), config_hash),
        )
    db.close()


def mark_stopped(case_dir: Path) -> bool:
    try:
        with connect(case_dir) as db:
            db.execute('UPDATE "case" SET stopped_utc = ? WHERE stopped_utc IS NULL',
                       (utc_now(),))
        db.close()
        return True
    except (OSError, sqlite3.Error):
        return False


def case_info(case_dir: Path) -> dict[str, Any] | None:
    path = case_dir / DB_NAME
    if not path.is_file():
        return None
    db = connect_read_only(path)
    try:
        row = db.execute(
            'SELECT id, label, procedure, started_utc, stopped_utc, config_json, config_hash '
            'FROM "case"'
        ).fetchone()
    except sqlite3.DatabaseError:
        return None
    finally:
        db.close()
    if row is None:
        return None
    keys = ("id", "label", "procedure", "started_utc", "stopped_utc", "config", "config_hash")
    info = dict(zip(keys, row, strict=True))
    info["config"] = json.loads(info["config"] or "{}")
    return info


def find_open_case(root: Path) -> Path | None:
    """The most recently started case folder under root with no stop marker."""
    open_cases = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        info = case_info(d) if d.is_dir() else None
        if info and not info["stopped_utc"]:
            open_cases.append((info["started_utc"], d))
    return max(open_cases)[1] if open_cases else None


def read_state(case_dir: Path, key: str) -> dict[str, Any] | None:
    db = connect_read_only(case_dir / DB_NAME)
    try:
        row = db.execute("SELECT json FROM state WHERE key = ?", (key,)).fetchone()
    finally:
        db.close()
    return None if row is None else json.loads(row[0])


def read_events(case_dir: Path, kind: str | None = None,
                skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """Events in order: {seq, t_utc, t_s, kind, site, data}. A row whose JSON does not parse
    is left out and named (logged, and appended to `skipped`): one bad row never hides the
    rest of the case."""
    db = connect_read_only(case_dir / DB_NAME)
    try:
        q = "SELECT seq, t_utc, t_s, kind, site, json FROM events"
        rows = db.execute(q + (" WHERE kind = ?" if kind else "") + " ORDER BY seq",
                          (kind,) if kind else ()).fetchall()
    finally:
        db.close()
    events = []
    for s, u, t, k, site, j in rows:
        try:
            data = json.loads(j)
        except (TypeError, ValueError) as e:
            why = f"{DB_NAME} events row seq {s} (kind {k!r}): not valid JSON ({e}); skipped"
            log.warning("%s: %s", case_dir, why)
            if skipped is not None:
                skipped.append(why)
            continue
        events.append({"seq": s, "t_utc": u, "t_s": t, "kind": k, "site": site, "data": data})
    return events


def read_segments(case_dir: Path, skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """The raw segments in order: {file, reason, start_utc, t_s}."""
    return [e["data"] for e in read_events(case_dir, "segment", skipped)]


def read_all_state(case_dir: Path, skipped: list[str] | None = None) -> dict[str, Any]:
    db = connect_read_only(case_dir / DB_NAME)
    try:
        rows = db.execute("SELECT key, json FROM state ORDER BY key").fetchall()
    finally:
        db.close()
    state = {}
    for k, j in rows:
        try:
            state[k] = json.loads(j)
        except (TypeError, ValueError) as e:
            why = f"{DB_NAME} state {k!r}: not valid JSON ({e}); skipped"
            log.warning("%s: %s", case_dir, why)
            if skipped is not None:
                skipped.append(why)
    return state

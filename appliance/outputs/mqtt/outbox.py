"""Store-and-forward outbox: SQLite in WAL mode, owned by the link's thread (not thread-safe).

A row is committed before its message is published and deleted when its PUBACK arrives, so
whatever was not acknowledged survives a broker outage, a network cut and a kill -9 (a commit in
WAL mode with synchronous=NORMAL is in the OS once it returns). Alarm rows are also made
power-loss safe with an fsync of the WAL (`sync()`, or `durable=True` on the commit), either
right after their publish call or before it (mqtt.alarm_fsync). Rows are read back by class
(alarm, trend, waveform), oldest first within a class.

The same file keeps the persistent counters: per-topic sequence numbers, the session counter and
the drop accounting, so none of them restart from zero after a restart.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path


class Lane(IntEnum):
    """Replay class; lower goes first."""

    ALARM = 0  # alarm events, the active alarm set, the case
    TREND = 1
    WAVEFORM = 2


@dataclass(frozen=True)
class Row:
    id: int
    lane: Lane
    topic: str
    payload: bytes
    qos: int
    retain: bool
    expires_at: float | None  # unix time


@dataclass(frozen=True)
class NewRow:
    lane: Lane
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    expires_at: float | None = None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lane INTEGER NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL,
    qos INTEGER NOT NULL, retain INTEGER NOT NULL, expires_at REAL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_lane ON outbox(lane, id);
CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Outbox:
    def __init__(self, path: str | Path, max_rows: int) -> None:
        self.path = Path(path)
        self.max_rows = max_rows
        # errors stay OSError / sqlite3.Error (the service then monitors without MQTT), with
        # a message that names the file
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OSError(e.errno, f"mqtt outbox {str(self.path)!r}: cannot create its "
                          f"directory ({e.strerror})") from e
        try:
            self.db = sqlite3.connect(str(self.path), isolation_level=None,
                                      check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            # checkpoints (which fsync the database file) run on their own thread, so a slow
            # SD card never stalls the link's thread mid-alarm
            self.db.execute("PRAGMA wal_autocheckpoint=0")
            self.db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise sqlite3.OperationalError(
                f"mqtt outbox {str(self.path)!r}: cannot open it ({e})") from e
        self._sync = ""
        self.counters: dict[str, int] = dict(self.db.execute("SELECT name, value FROM counters"))
        self.rows = self._count()
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoints, daemon=True,
                                              name="ionm-mqtt-checkpoint")
        self._checkpointer.start()

    def _checkpoints(self, every_s: float = 2.0) -> None:
        db = sqlite3.connect(str(self.path), isolation_level=None)
        try:
            while not self._stop.wait(every_s):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    pass  # busy: next time
        finally:
            db.close()

    def _count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def _synchronous(self, mode: str) -> None:
        if mode != self._sync:
            self.db.execute(f"PRAGMA synchronous={mode}")
            self._sync = mode

    def next_session(self) -> int:
        """Increment and durably store the session counter (the Sparkplug bdSeq)."""
        n = self.counters.get("session", 0) + 1
        self.commit([], {"session": n}, durable=True)
        return n

    def commit(self, new: list[NewRow], counters: dict[str, int], durable: bool) -> list[int]:
        """Insert rows and store counters in one transaction; return the new row ids.

        Past `max_rows` the oldest rows of the lowest class are dropped (counted as
        'dropped.<lane>' counters).
        """
        self._synchronous("FULL" if durable else "NORMAL")
        cur = self.db.cursor()
        now = time.time()
        ids: list[int] = []
        cur.execute("BEGIN")
        try:
            excess = self.rows + len(new) - self.max_rows
            dropped = self._drop_oldest(cur, excess) if excess > 0 else {}
            for r in new:
                cur.execute(
                    "INSERT INTO outbox(lane, topic, payload, qos, retain, expires_at, created)"
                    " VALUES (?,?,?,?,?,?,?)",
                    (int(r.lane), r.topic, r.payload, r.qos, int(r.retain), r.expires_at, now),
                )
                ids.append(int(cur.lastrowid or 0))
            merged = dict(counters)
            for lane, n in dropped.items():
                key = f"dropped.{lane.name.lower()}"
                merged[key] = self.counters.get(key, 0) + n
            if merged:
                cur.executemany(
                    "INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) "
                    "DO UPDATE SET value = excluded.value", merged.items()
                )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        self.counters.update(merged)
        self.rows += len(new) - sum(dropped.values())
        return ids

    def _drop_oldest(self, cur: sqlite3.Cursor, n: int) -> dict[Lane, int]:
        dropped: dict[Lane, int] = {}
        for lane in sorted(Lane, reverse=True):
            if n <= 0:
                break
            cur.execute(
                "DELETE FROM outbox WHERE id IN "
                "(SELECT id FROM outbox WHERE lane = ? ORDER BY id LIMIT ?)", (int(lane), n)
            )
            if cur.rowcount > 0:
                dropped[lane] = cur.rowcount
                n -= cur.rowcount
        return dropped

    def sync(self) -> None:
        """Make every committed row power-loss safe: a synchronous=FULL transaction fsyncs the
        WAL, which holds the earlier NORMAL commits too."""
        self._synchronous("FULL")
        n = self.counters.get("syncs", 0) + 1
        self.db.execute("INSERT INTO counters(name, value) VALUES ('syncs', ?) "
                        "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (n,))
        self.counters["syncs"] = n

    def fetch(self, lane: Lane, after_id: int, limit: int) -> list[Row]:
        rows = self.db.execute(
            "SELECT id, lane, topic, payload, qos, retain, expires_at FROM outbox "
            "WHERE lane = ? AND id > ? ORDER BY id LIMIT ?", (int(lane), after_id, limit)
        ).fetchall()
        return [Row(i, Lane(ln), t, bytes(p), q, bool(r), e) for i, ln, t, p, q, r, e in rows]

    def delete(self, ids: list[int], reason: str = "") -> None:
        """Delete acknowledged (or expired: reason='expired', counted) rows."""
        if not ids:
            return
        self._synchronous("NORMAL")
        cur = self.db.cursor()
        cur.execute("BEGIN")
        cur.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
        n = cur.rowcount if cur.rowcount >= 0 else len(ids)
        if reason:
            key = f"{reason}"
            self.counters[key] = self.counters.get(key, 0) + n
            cur.execute(
                "INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) "
                "DO UPDATE SET value = excluded.value", (key, self.counters[key])
            )
        cur.execute("COMMIT")
        self.rows = max(0, self.rows - n)

    def max_id(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()[0])

    def close(self) -> None:
        self._stop.set()
        self._checkpointer.join(2.0)
        try:
            self.db.close()
        except sqlite3.Error:
            pass

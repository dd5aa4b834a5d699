"""`Acquisition(cfg)`: the front end in its own process, blocks shipped to the monitor.

Why a process: reading the ADS1299 is a tight loop on DRDY; analysis is numpy work in the same
interpreter would share the GIL with it and make the reader miss DRDYs. Only I/O runs in the child.

Why a Pipe (not a Queue): a multiprocessing.Queue hides a feeder thread and a shared lock; a child
killed while holding that lock leaves the queue unusable, and its `get(timeout)` can still block on
the lock. A one-way Pipe is a socketpair: the parent polls with a timeout, a dead child shows up as
EOF, and nothing is shared but the socket. The child never blocks its reader on the parent: a
sender thread in the child drains a bounded deque into the pipe; if the parent falls more than
`backlog_s` behind, the oldest blocks are dropped and the parent counts the gap in first_sample
as missed samples. Exception: a simulated or recorded source with realtime = false (as fast as
possible) waits for room instead, so an offline run loses nothing.

Health the parent derives (never trusting the child to report its own death):
  missed samples   gaps in first_sample between consecutive blocks
  corrupt frames   the front end's own counter (FrontEndHealth.corrupt_frames)
  stall            no block for `stall_s` (0.5 s) while the child lives
  front end lost   the child died, could not open the front end, or a stall lasted `lost_s`
and reports them as technical Conditions (ids, priorities and reasons in CONDITIONS below).
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from appliance.conditions import Condition, Kind, Priority
from appliance.frontend.block import FrontEndHealth, SampleBlock

# id prefix -> (priority, why). IEC 60601-1-8 asks for the priority that matches the harm of a
# delayed response: when no data arrive at all the monitor is blind while the surgeon may believe
# it watches (HIGH); a short stall may recover by itself (MEDIUM, escalates to front end lost);
# one bad electrode or a saturated channel blinds one trace and is fixed at the bedside (MEDIUM);
# a few lost samples or corrupt frames only cost some sweeps (LOW).
CONDITIONS: dict[str, tuple[Priority, str]] = {
    "tech.frontend_lost": (Priority.HIGH, "no data from the front end: monitoring has stopped"),
    "tech.stall": (Priority.MEDIUM, "no samples for more than the stall limit"),
    "tech.lead_off": (Priority.MEDIUM, "electrode off or high impedance"),
    "tech.saturated": (Priority.MEDIUM, "channel at the ADC limit (offset, cautery, lead off)"),
    "tech.missed_samples": (Priority.LOW, "samples lost between front end and monitor"),
    "tech.corrupt_frames": (Priority.LOW, "corrupt frames from the front end"),
}
HEALTH_WITHOUT_BLOCKS_S = 1.0  # the child reports front-end health this often while no blocks come


def _concat(blocks: list[SampleBlock]) -> SampleBlock:
    if len(blocks) == 1:
        return blocks[0]
    b0, b1 = blocks[0], blocks[-1]
    return SampleBlock(
        np.hstack([b.data_uv for b in blocks]), np.concatenate([b.trigger for b in blocks]),
        np.hstack([b.saturated for b in blocks]),
        np.logical_or.reduce([b.lead_off for b in blocks]), b0.first_sample, b0.sample_rate_hz,
        b1.t_monotonic_s)


class _Batcher:
    """Joins small contiguous blocks (e.g. one Cyton packet each) into ~target_samples."""

    def __init__(self, target_samples: int) -> None:
        self.target = max(1, target_samples)
        self.parts: list[SampleBlock] = []

    def push(self, b: SampleBlock) -> list[SampleBlock]:
        out = []
        if self.parts and b.first_sample != self.parts[-1].end_sample:
            out.append(self.flush())
        self.parts.append(b)
        if sum(p.n_samples for p in self.parts) >= self.target:
            out.append(self.flush())
        return [o for o in out if o is not None]

    def flush(self) -> SampleBlock | None:
        if not self.parts:
            return None
        b, self.parts = _concat(self.parts), []
        return b


def _open(cfg: Any, factory: str | None) -> Any:
    """The front end: open_frontend(cfg), or `factory` ("module:function", called with cfg)."""
    if not factory:
        from appliance.frontend.factory import open_frontend

        return open_frontend(cfg)
    import importlib

    mod, func = factory.split(":")
    return getattr(importlib.import_module(mod), func)(cfg)


def _child_main(cfg: Any, conn: Any, stop: Any, backlog_s: float, factory: str | None) -> None:
    """Acquisition process: open the front end, read, batch, hand blocks to the sender thread."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us through `stop`

    out: deque[tuple] = deque()
    cv = threading.Condition()
    done = threading.Event()
    dropped = [0]

    def sender() -> None:
        while True:
            with cv:
                while not out and not done.is_set():
                    cv.wait(0.1)
                if not out:
                    return
                msg = out.popleft()
                cv.notify_all()  # a lossless producer may be waiting for room
            try:
                conn.send(msg)
            except (OSError, ValueError):  # parent gone: nothing left to do
                stop.set()
                return

    # A source paced by hardware must never wait for the parent (drop the oldest instead); a file
    # or a simulation read as fast as possible waits, so nothing is lost.
    lossless = not cfg.frontend.realtime and cfg.frontend.kind in ("simulated", "recording")

    def put(msg: tuple, max_len: int) -> None:
        with cv:
            while lossless and len(out) >= max_len and not stop.is_set():
                cv.wait(0.1)
            if len(out) >= max_len:
                out.popleft()
                dropped[0] += 1
            out.append(msg)
            cv.notify_all()

    th = threading.Thread(target=sender, name="acq-sender", daemon=True)
    th.start()
    fe = None
    try:
        fe = _open(cfg, factory)
        fe.start()
        fs = float(fe.sample_rate_hz)
        target = int(round(cfg.frontend.block_ms * fs / 1000.0))
        max_len = max(8, int(backlog_s * 1000.0 / cfg.frontend.block_ms))
        batch = _Batcher(target)
        put(("info", tuple(fe.channel_names), fs), max_len)
        health_sent = time.monotonic()
        while not stop.is_set():
            t0 = time.monotonic()
            blk = fe.read_block(timeout_s=0.1)
            if blk is None:  # timeout, or a finite source at its end (returns at once): no spin
                stop.wait(max(0.0, 0.1 - (time.monotonic() - t0)))
                if t0 - health_sent >= HEALTH_WITHOUT_BLOCKS_S:
                    # no blocks: the parent still learns why (e.g. only corrupt frames arrive)
                    health_sent = t0
                    put(("health", copy.copy(fe.health)), max_len)
            ready = batch.push(blk) if blk is not None else [b for b in [batch.flush()] if b]
            for b in ready:
                health_sent = t0
                h = copy.copy(fe.health)
                h.extra = {**h.extra, "child_dropped_blocks": float(dropped[0])}
                put(("block", b, h), max_len)
    except Exception as e:  # any failure of the front end is reported, then the child ends
        put(("error", f"{type(e).__name__}: {e}"), 1 << 30)
    finally:
        try:
            if fe is not None:
                fe.stop()
                fe.close()
        except Exception as e:
            put(("error", f"closing front end: {type(e).__name__}: {e}"), 1 << 30)
        done.set()
        with cv:
            cv.notify()
        th.join(timeout=2.0)
        conn.close()


class Acquisition:
    """The front end of `cfg` in a child process. All methods are for the parent's one thread
    (the monitor loop); none blocks longer than the timeout it is given (stop: ~3 s at most).

    A child that dies (or never opens its front end) is restarted after 1, 2, 5, then every 10 s
    (`restart=False` to keep it down). The new child's stream is shifted to continue where the
    old one stopped, so first_sample stays increasing and the outage counts as missed samples
    (time elapsed x sample rate); health().reconnects counts restarts. A restarted simulated
    patient starts its scenario again from t = 0.

    `frontend_factory` ("module:function", called with cfg in the child, returning a FrontEnd)
    replaces factory.open_frontend, e.g. to open an emulator with faults injected.
    """

    BACKOFF_S = (1.0, 2.0, 5.0, 10.0)

    def __init__(self, cfg: Any, stall_s: float | None = None, lost_s: float = 5.0,
                 startup_s: float = 10.0, backlog_s: float = 5.0, window_s: float = 2.0,
                 restart: bool = True, frontend_factory: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.frontend_factory = frontend_factory
        self.stall_s = cfg.frontend.stall_s if stall_s is None else stall_s
        self.lost_s, self.startup_s = lost_s, startup_s
        self.backlog_s, self.window_s = backlog_s, window_s
        self.restart = restart
        self.clock = clock
        self.channel_names: tuple[str, ...] = tuple(cfg.frontend.channels)
        self.sample_rate_hz = float(cfg.frontend.sample_rate_hz)
        self._proc: Any = None
        self._conn: Any = None
        self._stop: Any = None
        self._fe_health = FrontEndHealth()
        self.blocks = 0
        self.samples = 0
        self.missed_samples = 0
        self.stalls = 0
        self.restarts = 0
        self._failed_starts = 0  # restarts in a row without a block: the backoff step
        self.error = ""
        self._expected: int | None = None
        self._offset = 0  # added to the current child's first_sample
        self._align = False  # the next block starts a restarted child's stream
        self._started_at = 0.0
        self._last_block_at: float | None = None
        self._last_gap_at = -np.inf
        self._last_gap = 0
        self._corrupt_seen = 0
        self._corrupt_base = 0  # corrupt frames counted by children that were restarted
        self._last_corrupt_at = -np.inf
        self._stalled = False
        self._lost = False
        self._lost_at = 0.0
        self._lost_by_stall = False
        self._stopping = False
        self._recent: deque[tuple[float, np.ndarray, np.ndarray, int]] = deque()
        self._active: dict[str, Condition] = {}

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError("Acquisition.start(): already started")
        self._spawn()

    def _spawn(self) -> None:
        ctx = mp.get_context("spawn")  # never fork a process that may hold MQTT/log threads
        self._conn, child_conn = ctx.Pipe(duplex=False)
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_child_main, name="ionm-acquisition", daemon=True,
                                 args=(self.cfg, child_conn, self._stop, self.backlog_s,
                                       self.frontend_factory))
        self._proc.start()
        child_conn.close()
        self._started_at = self.clock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _reap(self, grace_s: float) -> None:
        """Stop the current child: ask, keep draining its pipe, then terminate, then kill."""
        self._stop.set()
        deadline = time.monotonic() + grace_s
        while self._proc.is_alive() and time.monotonic() < deadline:
            try:  # keep reading so a child blocked in send() can finish
                while self._conn.poll(0.05):
                    self._conn.recv()
            except (EOFError, OSError):
                break
        self._proc.join(timeout=max(0.0, deadline - time.monotonic()))
        for end in (self._proc.terminate, self._proc.kill):
            if self._proc.is_alive():
                end()
                self._proc.join(timeout=1.0)
        self._conn.close()

    def stop(self) -> None:
        """Ask the child to stop, drain its last messages, and make sure it is gone."""
        if self._proc is None or self._stopping:
            return
        self._stopping = True
        self._reap(2.0)

    close = stop

    def __enter__(self) -> Acquisition:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ data
    def get_block(self, timeout_s: float | None = 0.1) -> SampleBlock | None:
        """Next block, or None when none arrived within timeout_s (None: wait 1 s at most)."""
        if self._proc is None or self._stopping:
            return None
        deadline = self.clock() + (1.0 if timeout_s is None else max(0.0, timeout_s))
        while True:
            left = deadline - self.clock()
            if self._conn.closed:  # child gone, restart pending: wait out the timeout, no spin
                time.sleep(max(0.0, left))
                self._update_state()
                return None
            try:
                if not self._conn.poll(max(0.0, left)):
                    self._update_state()
                    return None
                msg = self._conn.recv()
            except (EOFError, OSError):
                self._conn.close()  # the child is gone; _update_state restarts it
                self._mark_lost("acquisition process ended")
                self._update_state()
                return None
            if msg[0] == "block":
                return self._on_block(msg[1], msg[2])
            if msg[0] == "error":
                self.error = msg[1]
            elif msg[0] == "health":
                self._fe_health = msg[1]
            elif msg[0] == "info":
                self.channel_names, self.sample_rate_hz = msg[1], msg[2]
            if self.clock() >= deadline:
                self._update_state()
                return None

    def _on_block(self, b: SampleBlock, h: FrontEndHealth) -> SampleBlock:
        now = self.clock()
        if self._align:  # first block of a restarted child: continue the stream after a gap
            self._align = False
            elapsed = 0.0 if self._last_block_at is None else now - self._last_block_at
            resume = (self._expected or 0) + int(round(elapsed * self.sample_rate_hz))
            self._offset = resume - b.first_sample
        if self._offset:
            b = replace(b, first_sample=b.first_sample + self._offset)
        if self._expected is not None and b.first_sample > self._expected:
            self._last_gap = b.first_sample - self._expected
            self.missed_samples += self._last_gap
            self._last_gap_at = now
        self._expected = b.end_sample
        self.blocks += 1
        self.samples += b.n_samples
        self._last_block_at = now
        self._stalled = False
        self._lost = False
        self._failed_starts = 0
        self.error = ""
        corrupt = h.corrupt_frames + self._corrupt_base
        if corrupt > self._corrupt_seen:
            self._corrupt_seen = corrupt
            self._last_corrupt_at = now
        self._fe_health = h
        self._recent.append((now, b.lead_off.copy(), b.saturated.sum(axis=1), b.n_samples))
        while self._recent and now - self._recent[0][0] > self.window_s:
            self._recent.popleft()
        return b

    def _mark_lost(self, why: str) -> None:
        if not self._lost:
            self._lost = True
            self._lost_at = self.clock()
            self.error = self.error or why

    def _maybe_restart(self, now: float) -> None:
        if not (self.restart and self._lost and not self._stopping):
            return
        wait = self.BACKOFF_S[min(self._failed_starts, len(self.BACKOFF_S) - 1)]
        if now - self._lost_at < wait or self._proc.is_alive() and not self._conn.closed:
            return
        self._reap(0.2)
        self._corrupt_base = self._corrupt_seen
        self.restarts += 1
        self._failed_starts += 1  # until a block arrives from the new child
        self._align = True
        self._spawn()
        self._lost_at = now  # the next attempt waits its backoff from here

    def _update_state(self) -> None:
        if self._proc is None:
            return
        now = self.clock()
        if not self._stopping and not self._proc.is_alive():
            self._mark_lost(f"acquisition process died (exit code {self._proc.exitcode})")
        self._maybe_restart(now)
        ref = self._last_block_at
        # before the first block the child gets `startup_s` to import and open its front end
        silent = now - self._started_at - self.startup_s if ref is None else now - ref
        stalled = silent > self.stall_s and not self._stopping
        if stalled and not self._stalled:
            self.stalls += 1
        self._stalled = stalled
        self._lost_by_stall = stalled and silent > self.lost_s

    # ------------------------------------------------------------ health and conditions
    def health(self) -> FrontEndHealth:
        self._update_state()
        h = self._fe_health
        extra = dict(h.extra)
        extra["frontend_missed_samples"] = float(h.missed_samples)
        extra["frontend_stalls"] = float(h.stalls)
        return replace(h, samples=self.samples, missed_samples=self.missed_samples,
                       corrupt_frames=self._corrupt_seen, stalls=self.stalls,
                       reconnects=h.reconnects + self.restarts,
                       connected=self._alive_and_flowing(),
                       last_error=self.error or h.last_error, extra=extra)

    def _alive_and_flowing(self) -> bool:
        return (self._proc is not None and self._proc.is_alive() and not self._lost
                and not self._stalled and self._last_block_at is not None)

    def _silence_text(self, now: float) -> str:
        """Why no samples: for how long, and whether bytes arrive that never make a valid
        frame or packet (wrong port, baud rate, board mode or wiring)."""
        if self._last_block_at is not None:
            return f"no samples for {now - self._last_block_at:.1f} s"
        h = self._fe_health
        corrupt_bytes = int(h.extra.get("corrupt_bytes", 0))
        text = f"no samples since the front end started {now - self._started_at:.1f} s ago"
        if h.corrupt_frames or corrupt_bytes:
            text += (f": data arrives but no valid frame or packet ({h.corrupt_frames} corrupt "
                     f"frames, {corrupt_bytes} bytes discarded); check the port, baud rate, "
                     "board mode and wiring")
        return text

    def conditions(self, t_s: float) -> list[Condition]:
        """Technical conditions now: every active one, plus once each that just ended."""
        self._update_state()
        now = self.clock()
        found: dict[str, tuple[str, str, dict]] = {}
        silent = None if self._last_block_at is None else round(now - self._last_block_at, 3)
        quiet = self._silence_text(now)
        if self._lost or self._lost_by_stall:
            found["tech.frontend_lost"] = ("", self.error or quiet,
                                           {"error": self.error, "silent_s": silent})
        if self._stalled:
            found["tech.stall"] = ("", quiet, {"silent_s": silent, "stalls": self.stalls})
        if now - self._last_gap_at < 10.0:
            found["tech.missed_samples"] = ("", f"{self._last_gap} samples lost",
                                            {"missed_samples": self.missed_samples,
                                             "last_gap": self._last_gap})
        if now - self._last_corrupt_at < 10.0:
            found["tech.corrupt_frames"] = ("", f"{self._corrupt_seen} corrupt frames in total",
                                            {"corrupt_frames": self._corrupt_seen})
        recent = [r for r in self._recent if now - r[0] <= self.window_s]
        if recent and not self._lost:
            off = np.logical_or.reduce([r[1] for r in recent])
            sat = np.sum([r[2] for r in recent], axis=0) / max(1, sum(r[3] for r in recent))
            for i, ch in enumerate(self.channel_names):
                if i < len(off) and off[i]:
                    found[f"tech.lead_off:{ch}"] = (ch, f"electrode {ch} off", {"channel": ch})
                if i < len(sat) and sat[i] > 0.2:
                    found[f"tech.saturated:{ch}"] = (
                        ch, f"{ch} saturated {100 * sat[i]:.0f} % of the last {self.window_s:g} s",
                        {"channel": ch, "fraction": round(float(sat[i]), 3)})
        out = []
        for cid, (site, msg, ev) in found.items():
            prio, why = CONDITIONS[cid.split(":")[0]]
            c = Condition(cid, Kind.TECHNICAL, prio, True, t_s, site, f"{msg} ({why})", ev)
            self._active[cid] = c
            out.append(c)
        for cid in [c for c in self._active if c not in found]:
            old = self._active.pop(cid)
            out.append(replace(old, active=False, t_s=t_s, message=f"ended: {old.message}"))
        return out

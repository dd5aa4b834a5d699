"""The reader seam: the per-sample loop (DRDY wait, one SPI transfer per chip, a timestamp check)
runs away from decoding and disk and hands good frames over in batches.

`FrameReader` is the seam; `PythonFrameReader` runs the loop in a thread of this process (the
fallback when the compiled reader is absent). A conversion missing from a batch's `seq` is a gap;
`counts()` says why it is missing:
  overwritten    DRDY edges nobody read in time (exact, from the line sequence numbers)
  late           read, but the read ended after the next conversion's update began, so its bytes
                 may mix two conversions (status first, looking valid): dropped, never data
  ring_overflow  read fine but the consumer did not drain in time: dropped
Budget per sample and sources: docs/ads1299.md.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from appliance.frontend.ads1299.registers import F_CLK_HZ
from appliance.frontend.ads1299.spi import Drdy, SpiDevice

log = logging.getLogger(__name__)

# the chip updates its output register 4 tCLK before the next DRDY falls (SBAS499C, DRDY timing)
UPDATE_GUARD_NS = 4 * 1_000_000_000 // F_CLK_HZ + 1
RING_S = 2.0  # frames the reader holds for a consumer that is late
# a thread waiting for the GIL gets it after at most this long (CPython's default is 5 ms, i.e.
# 20 conversions at 4 kSPS): the reader thread wakes on every DRDY and must not wait that long
SWITCH_INTERVAL_S = 50e-6
RT_PRIORITY = 50  # SCHED_FIFO priority of the reader thread (1..99; the kernel's IRQ threads: 50)
# the thread that drains the reader: it holds the GIL while it decodes, and if a normal-priority
# process preempted it then, the reader would wait for the GIL (measured: worst edge-to-read-end
# 13 ms at normal priority, 0.9 ms at SCHED_FIFO 10, load 10 on 2 CPUs)
CONSUMER_RT_PRIORITY = 10


@dataclass(frozen=True)
class FrameBatch:
    raw: np.ndarray  # (n, n_chips * frame_bytes) uint8, good frames in read order
    seq: np.ndarray  # (n,) int64 conversion index since start (DRDY line sequence, 0-based)
    drdy_ns: np.ndarray  # (n,) int64 DRDY edge timestamps, CLOCK_MONOTONIC ns

    def __len__(self) -> int:
        return int(self.seq.shape[0])

    @classmethod
    def empty(cls, sample_bytes: int) -> FrameBatch:
        return cls(np.zeros((0, sample_bytes), np.uint8), np.zeros(0, np.int64),
                   np.zeros(0, np.int64))


class FrameReader(Protocol):
    # latest end of a read after its DRDY edge; the front end takes the chips' start skew off
    # it (chip 2, started first, updates that much before chip 1's edge). Set while stopped.
    deadline_ns: int

    def start(self) -> None: ...  # chips already in RDATAC + START

    def drain(self, max_frames: int, timeout_s: float) -> FrameBatch:
        """Up to max_frames good frames, >= 1 frame or empty on timeout (nothing came). A reader
        may return fewer than max_frames early; callers loop until they have enough, and take
        only an empty batch for a timeout."""
        ...

    def stop(self) -> None: ...

    def counts(self) -> dict[str, int]: ...  # at least: frames, overwritten, late, ring_overflow


def set_realtime(priority: int = RT_PRIORITY, tid: int = 0) -> bool:
    """SCHED_FIFO for a thread (0: the calling one) where allowed (root, CAP_SYS_NICE or
    LimitRTPRIO in the unit): the reader then wakes on DRDY ahead of everything at normal
    priority. The loop sleeps in every DRDY wait, so it cannot starve the machine (and the
    kernel's RT throttling keeps 5 % for others regardless)."""
    try:
        os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError):
        return False
    return True


def set_normal(tid: int = 0) -> None:
    """Back to SCHED_OTHER (undoes `set_realtime`)."""
    try:
        os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
    except (OSError, AttributeError):
        pass


def read_deadline_ns(sample_rate_hz: float) -> int:
    """Latest end of a read after its DRDY edge: the next conversion's update begins then."""
    return int(1e9 / sample_rate_hz) - UPDATE_GUARD_NS


class PythonFrameReader:
    """The per-sample loop in Python. `drdy` must give each edge's `sequence` and
    `timestamp_ns` (libgpiod v2 events do; see spi.py) in the clock of `drdy.clock_ns()`.

    threaded=True (hardware, faithful emulator): the loop runs in its own thread and fills a ring
    of `ring_frames`; threaded=False (the step-wise emulator, whose clock moves only when DRDY is
    waited on): the same loop runs inside `drain`, so tests stay deterministic.

    The sequence number and timestamp are those of the edge the read belongs to: the newest edge
    when the read starts; the read is good only if it ends before that conversion is replaced.
    """

    kind = "python"

    def __init__(self, spis: Sequence[SpiDevice], drdy: Drdy, frame_bytes: int,
                 sample_rate_hz: float, ring_frames: int | None = None,
                 read_order: Sequence[int] | None = None, threaded: bool = True,
                 record_latency: int = 0, read_speed_hz: int = 0,
                 cpu: int | None = None) -> None:
        self.spis = list(spis)
        self.drdy = drdy
        self.frame_bytes = frame_bytes
        self.sample_bytes = frame_bytes * len(self.spis)
        self.deadline_ns = read_deadline_ns(sample_rate_hz)
        self.capacity = ring_frames or max(4096, int(RING_S * sample_rate_hz))
        self.threaded = threaded
        self.read_speed_hz = read_speed_hz  # SCLK of the data reads (0: the devices' own)
        self.cpu = cpu  # pin the loop's thread (frontend.reader_cpu)
        # chips started earlier convert earlier, so their update comes first: read them first
        self.read_order = list(read_order) if read_order is not None else list(
            range(len(self.spis)))
        self._clock_ns = getattr(drdy, "clock_ns", time.monotonic_ns)
        self._zeros = [0] * frame_bytes
        self._parts: list[bytes] = [b""] * len(self.spis)
        self._ring: deque[tuple[bytes, int, int]] = deque()
        self._thread: threading.Thread | None = None
        self._switch_interval_s = sys.getswitchinterval()
        self._run = threading.Event()
        self._ready = threading.Event()  # set when the ring holds `_want` frames
        self._timed_out = False  # inline: a DRDY wait timed out after frames were read
        self._want = 1 << 62
        self._origin: int | None = None  # DRDY sequence of conversion 0
        self._last_seq = 0
        self._counts = {"frames": 0, "overwritten": 0, "late": 0, "ring_overflow": 0,
                        "realtime": 0}
        self.error: BaseException | None = None
        # for measurements: edge -> read end (ns) of the first `record_latency` reads
        self.latency_ns = np.zeros(record_latency, np.int64)
        self.n_latency = 0

    def start(self) -> None:
        if not self.threaded or self._thread is not None:
            return
        self.error = None
        self._switch_interval_s = sys.getswitchinterval()
        if self._switch_interval_s > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._run.set()
        self._thread = threading.Thread(target=self._loop, name="ads1299-reader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._run.clear()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
            sys.setswitchinterval(self._switch_interval_s)

    def counts(self) -> dict[str, int]:
        """frames + overwritten + late + ring_overflow == seen (conversions since the first)."""
        seen = 0 if self._origin is None else self._last_seq - self._origin + 1
        return {**self._counts, "seen": seen}

    def _loop(self) -> None:
        self._counts["realtime"] = int(set_realtime())
        if self.cpu is not None:
            try:  # this thread only (Linux: pid 0 is the calling thread)
                os.sched_setaffinity(0, {self.cpu})
            except OSError as e:
                log.warning("ADS1299 reader: cannot pin to CPU %d (%s)", self.cpu, e)
        try:
            while self._run.is_set():
                self._read_one(0.05)
        except BaseException as e:  # an SPI error ends the loop; the consumer sees a stall
            self.error = e
            raise

    def _read_one(self, wait_s: float) -> bool:
        """Wait for DRDY, read every chip, keep the frame if it was read in time."""
        drdy, spis, parts, zeros = self.drdy, self.spis, self._parts, self._zeros
        if not drdy.wait(wait_s):
            return False
        seq, edge_ns = drdy.sequence, drdy.timestamp_ns
        if self.read_speed_hz:
            for i in self.read_order:
                parts[i] = bytes(spis[i].xfer2(zeros, self.read_speed_hz))
        else:
            for i in self.read_order:
                parts[i] = bytes(spis[i].xfer2(zeros))
        end_ns = self._clock_ns()
        if self.n_latency < self.latency_ns.shape[0]:
            self.latency_ns[self.n_latency] = end_ns - edge_ns
            self.n_latency += 1
        counts = self._counts
        if self._origin is None:
            self._origin, self._last_seq = seq, seq - 1
        counts["overwritten"] += max(0, seq - self._last_seq - 1)
        self._last_seq = seq
        if end_ns - edge_ns > self.deadline_ns:
            counts["late"] += 1
        elif len(self._ring) >= self.capacity:
            counts["ring_overflow"] += 1
        else:
            self._ring.append((b"".join(parts), seq - self._origin, edge_ns))
            counts["frames"] += 1
            if len(self._ring) >= self._want:  # wake the consumer once per batch, not per frame
                self._ready.set()
        return True

    def drain(self, max_frames: int, timeout_s: float) -> FrameBatch:
        ring = self._ring
        if not self.threaded:
            if self._timed_out:  # the last drain's wait timed out after some frames: say so now
                self._timed_out = False
                return FrameBatch.empty(self.sample_bytes)
            while len(ring) < max_frames:
                if not self._read_one(timeout_s):
                    self._timed_out = bool(ring)
                    break
        elif len(ring) < max_frames:
            self._ready.clear()
            self._want = max_frames
            if len(ring) < max_frames:  # the reader may have passed the mark before _want
                self._ready.wait(timeout_s)
            self._want = 1 << 62
        n = min(len(ring), max_frames)
        if n == 0:
            return FrameBatch.empty(self.sample_bytes)
        items = [ring.popleft() for _ in range(n)]
        raw = np.frombuffer(b"".join(r for r, _, _ in items), np.uint8).reshape(
            n, self.sample_bytes)
        return FrameBatch(raw, np.fromiter((s for _, s, _ in items), np.int64, n),
                          np.fromiter((t for _, _, t in items), np.int64, n))

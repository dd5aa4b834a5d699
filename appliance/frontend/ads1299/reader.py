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

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from appliance.frontend.ads1299.registers import F_CLK_HZ
from appliance.frontend.ads1299.spi import Drdy, SpiDevice

# the chip updates its output register 4 tCLK before the next DRDY falls (SBAS499C, DRDY timing)
UPDATE_GUARD_NS = 4 * 1_000_000_000 // F_CLK_HZ + 1
RING_S = 2.0  # frames the reader holds for a consumer that is late


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
    def start(self) -> None: ...  # chips already in RDATAC + START

    def drain(self, max_frames: int, timeout_s: float) -> FrameBatch:
        """Up to max_frames good frames: returns as soon as max_frames are ready, else after
        timeout_s with what is ready (>= 1 frame, or empty: nothing came)."""
        ...

    def stop(self) -> None: ...

    def counts(self) -> dict[str, int]: ...  # at least: frames, overwritten, late, ring_overflow


def read_deadline_ns(sample_rate_hz: float) -> int:
    """Latest end of a read after its DRDY edge: the next conversion's update begins then."""
    return int(1e9 / sample_rate_hz) - UPDATE_GUARD_NS


class PythonFrameReader:
    """The per-sample loop in a thread. `drdy` must give each edge's `sequence` and
    `timestamp_ns` (libgpiod v2 events do; see spi.py) in the clock of `drdy.clock_ns()`.

    The sequence number and timestamp are those of the edge the read belongs to: the newest edge
    when the read starts; the read is good only if it ends before that conversion is replaced.
    """

    def __init__(self, spis: Sequence[SpiDevice], drdy: Drdy, frame_bytes: int,
                 sample_rate_hz: float, ring_frames: int | None = None,
                 read_order: Sequence[int] | None = None) -> None:
        self.spis = list(spis)
        self.drdy = drdy
        self.frame_bytes = frame_bytes
        self.sample_bytes = frame_bytes * len(self.spis)
        self.deadline_ns = read_deadline_ns(sample_rate_hz)
        self.capacity = ring_frames or max(4096, int(RING_S * sample_rate_hz))
        # chips started later convert later; their reads come first (see frontend.start)
        self.read_order = list(read_order) if read_order is not None else list(
            range(len(self.spis)))
        self._ring: deque[tuple[bytes, int, int]] = deque()
        self._thread: threading.Thread | None = None
        self._run = threading.Event()
        self._origin: int | None = None  # DRDY sequence of conversion 0
        self._last_seq: int | None = None
        self._counts = {"frames": 0, "overwritten": 0, "late": 0, "ring_overflow": 0}
        self.error: BaseException | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._run.set()
        self._thread = threading.Thread(target=self._loop, name="ads1299-reader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._run.clear()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def _loop(self) -> None:
        drdy, spis, order = self.drdy, self.spis, self.read_order
        clock_ns = getattr(drdy, "clock_ns", time.monotonic_ns)
        zeros = [0] * self.frame_bytes
        parts: list[bytes] = [b""] * len(spis)
        counts, ring, cap, deadline = self._counts, self._ring, self.capacity, self.deadline_ns
        try:
            while self._run.is_set():
                if not drdy.wait(0.05):
                    continue
                seq, edge_ns = drdy.sequence, drdy.timestamp_ns
                for i in order:
                    parts[i] = bytes(spis[i].xfer2(zeros))
                end_ns = clock_ns()
                if self._origin is None:
                    self._origin, self._last_seq = seq, seq - 1
                counts["overwritten"] += max(0, seq - self._last_seq - 1)  # type: ignore[operator]
                self._last_seq = seq
                if end_ns - edge_ns > deadline:
                    counts["late"] += 1
                    continue
                if len(ring) >= cap:
                    counts["ring_overflow"] += 1
                    continue
                ring.append((b"".join(parts), seq - self._origin, edge_ns))
                counts["frames"] += 1
        except BaseException as e:  # an SPI error ends the loop; the consumer sees a stall
            self.error = e
            raise

    def drain(self, max_frames: int, timeout_s: float) -> FrameBatch:
        ring = self._ring
        end = time.monotonic() + timeout_s
        while len(ring) < max_frames and time.monotonic() < end:
            time.sleep(min(0.001, max(0.0, end - time.monotonic())))
        n = min(len(ring), max_frames)
        if n == 0:
            return FrameBatch.empty(self.sample_bytes)
        items = [ring.popleft() for _ in range(n)]
        raw = np.frombuffer(b"".join(r for r, _, _ in items), np.uint8).reshape(
            n, self.sample_bytes)
        return FrameBatch(raw, np.fromiter((s for _, s, _ in items), np.int64, n),
                          np.fromiter((t for _, _, t in items), np.int64, n))

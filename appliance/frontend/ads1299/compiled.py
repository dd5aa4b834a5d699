"""The compiled ADS1299 reader (`_reader.c`) behind the `FrameReader` seam of reader.py.

A pthread (SCHED_FIFO where permitted, optionally pinned to a CPU) runs the per-sample loop
without the GIL: wait for the DRDY falling-edge event (GPIO character device uAPI v2), one SPI
transfer per chip, drop a read that ended after the next conversion's update, count overwritten
conversions from the edge sequence numbers, and put good frames in a single-producer /
single-consumer ring that `drain` empties in blocks. Backends: "kernel" (/dev/gpiochipN +
/dev/spidevB.D; chips must already stream, RDATAC + START) and "model" (a C model of the chip on
its own clock, for tests and `ionm bench acquisition`; frames follow `model_pattern`).

The extension is optional: where it could not be built, `compiled_available()` is False and
`compiled_unavailable_reason()` says why, and the Python reader (reader.py) runs instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from appliance.frontend.ads1299.reader import RING_S, UPDATE_GUARD_NS, FrameBatch

try:
    from appliance.frontend.ads1299 import _reader  # type: ignore[attr-defined]

    _REASON = ""
except ImportError as e:  # no compiler or headers at install time, or not Linux
    _reader = None
    _REASON = (
        f"the compiled ADS1299 reader is not built ({e}); the Python reader runs instead. "
        "Install a C compiler and the Python headers (apt install build-essential python3-dev) "
        "and reinstall (deploy/install.sh, or pip install -e .)."
    )

# SCHED_FIFO priority: below the kernel's IRQ threads (FIFO 50; gpiolib-cdev queues DRDY edge
# events from one, and a reader above it would delay the edges it waits for), above every
# normal task
DEFAULT_PRIORITY = 40


# _reader.c's LossEvent
LOSS_EVENT = np.dtype([("index", "<i8"), ("kind", "<i4"), ("n", "<i4"), ("wake_ns", "<i8"),
                       ("done_ns", "<i8"), ("read_ns", "<i8"), ("run_delay_ns", "<i8")])
LOSS_KINDS = {1: "overwritten", 2: "late", 3: "ring_overflow", 4: "spi_error"}


def compiled_available() -> bool:
    return _reader is not None


def compiled_unavailable_reason() -> str:
    """Empty when the compiled reader is available, else why not and how to get it."""
    return _REASON


def _require() -> None:
    if _reader is None:
        raise RuntimeError(_REASON)


class CompiledReader:
    """FrameReader over the compiled loop (one consumer thread drains). `counts()` adds
    spi_errors, wait_errors, `last_seq` (index of the newest conversion seen: every conversion
    0..last_seq is in exactly one of frames, overwritten, late, ring_overflow, spi_errors),
    `seen`, `coalesced` (overwritten conversions the kernel reported as one edge, found from
    the timestamps) and `late_stamps`.

    Kernel backend: `line_fd` shares a line request made elsewhere (libgpiod's, see
    `compiled_reader_for`), else the reader requests `drdy_line` on `gpiochip` itself.
    Model-only knobs: trigger_period/_width (GPIO1 schedule), stall_at_s/stall_ms (the thread
    sleeps once), coalesce_at_s/coalesce_n (n edges folded into the next event, stamped late),
    clock_error (the chip's period is (1 + clock_error) x nominal; the reader measures it),
    spin_us (spin instead of sleeping for the last µs before an edge).

    Latency evidence (why samples are lost): `latency()` (edge -> read done: p50/p99/max, count
    over `over_ns`), `loss_events()` (one record per loss: LOSS_EVENT dtype); `sched_trace`
    reads the thread's run-queue delay (/proc/thread-self/schedstat) after every read, off the
    deadline path, for `run_delay_ns`."""

    kind = "compiled"  # health and selftest say which reader ran (reader.py: "python")

    def __init__(self, n_chips: int, frame_bytes: int, sample_rate_hz: float, spi_speed_hz: int,
                 backend: str = "kernel", spi_paths: Sequence[str] = (),
                 gpiochip: str = "/dev/gpiochip0", drdy_line: int = 0,
                 ring_frames: int | None = None, priority: int = DEFAULT_PRIORITY,
                 cpu: int | None = None, reverse_read: bool = False,
                 trigger_period: int = 0, trigger_width: int = 1, stall_at_s: float = 0.0,
                 stall_ms: float = 0.0, spin_us: float = 0.0, coalesce_at_s: float = -1.0,
                 coalesce_n: int = 0, line_fd: int = -1, clock_error: float = 0.0,
                 over_ns: int = 250_000, sched_trace: bool = False) -> None:
        _require()
        self.sample_bytes = n_chips * frame_bytes
        self.sample_rate_hz = float(sample_rate_hz)
        self._period_ns = int(1e9 / sample_rate_hz)
        self._guard_ns = UPDATE_GUARD_NS
        self._r = _reader.Reader(
            backend=backend, n_chips=n_chips, frame_bytes=frame_bytes,
            rate_hz=float(sample_rate_hz), sclk_hz=float(spi_speed_hz),
            ring_frames=ring_frames or max(4096, int(RING_S * sample_rate_hz)),
            gpiochip=gpiochip, drdy_line=drdy_line, spi_paths=list(spi_paths) or None,
            priority=priority, cpu=-1 if cpu is None else cpu, guard_ns=UPDATE_GUARD_NS,
            trigger_period=trigger_period, trigger_width=trigger_width, stall_at_s=stall_at_s,
            stall_ms=stall_ms, spin_us=spin_us, reverse_read=reverse_read,
            coalesce_at_s=coalesce_at_s, coalesce_n=coalesce_n, line_fd=line_fd,
            clock_error=clock_error, over_ns=int(over_ns), sched_trace=bool(sched_trace),
        )

    @property
    def deadline_ns(self) -> int:
        """Latest end of a read after its DRDY edge (at the nominal period), as
        `PythonFrameReader.deadline_ns`; the front end takes the chips' start skew off it."""
        return self._period_ns - self._guard_ns

    @deadline_ns.setter
    def deadline_ns(self, ns: int) -> None:
        self._r.set_guard_ns(self._period_ns - int(ns))  # ValueError while running
        self._guard_ns = self._period_ns - int(ns)

    def start(self) -> None:
        self._r.start()

    def stop(self) -> None:
        """Ends the thread; numbering continues at the next start (chips reconfigured)."""
        self._r.stop()

    def close(self) -> None:
        self._r.close()

    def drain(self, max_frames: int, timeout_s: float) -> FrameBatch:
        raw, seq, ts = self._r.drain(max_frames, timeout_s)
        return FrameBatch(np.frombuffer(raw, np.uint8).reshape(-1, self.sample_bytes),
                          np.frombuffer(seq, np.int64), np.frombuffer(ts, np.int64))

    def counts(self) -> dict[str, int]:
        c = dict(self._r.counts())
        c["seen"] = c["last_seq"] + 1  # conversions since the first, as reader.py counts them
        return c

    def info(self) -> dict[str, object]:
        """backend, sched_fifo (granted?), pinned, sched (what was asked and got), error."""
        return dict(self._r.info())

    def cost_us(self) -> tuple[float, float]:
        """(p50, p99) µs of the per-sample loop: from the DRDY wait returning to the next wait
        (reads, timestamp check, ring write)."""
        return _percentiles_us(self._r.cost_hist())

    def wake_us(self) -> tuple[float, float]:
        """(p50, p99) µs from the DRDY edge's timestamp to the loop running."""
        return _percentiles_us(self._r.wake_hist())

    def latency(self) -> dict[str, float]:
        """From the DRDY edge to the read done (what the deadline checks): done_us_p50/_p99,
        done_us_max, `over` (reads done later than over_us after their edge), loss_events."""
        lat = self._r.latency()
        p50, p99 = _percentiles_us(self._r.done_hist())
        return {"done_us_p50": p50, "done_us_p99": p99, "done_us_max": lat["done_max_ns"] / 1e3,
                "over_us": lat["over_ns"] / 1e3, "over": lat["over"],
                "loss_events": lat["loss_events"]}

    def loss_events(self) -> np.ndarray:
        """The first 65536 loss events (LOSS_EVENT records; kind: LOSS_KINDS)."""
        return np.frombuffer(self._r.loss_events(), LOSS_EVENT)


def compiled_reader_for(fe: object) -> CompiledReader | None:
    """The compiled reader for an `Ads1299FrontEnd` on real hardware: its chips' spidevs, read
    in the front end's order (last chip first), and the DRDY line request of its `GpiodDrdy`
    (shared, so the libgpiod start-up check and the pin's error messages stay in spi.py).
    None where the extension is absent or the front end is emulated (the Python reader runs)."""
    req = getattr(getattr(fe, "drdy", None), "_req", None)  # spi.GpiodDrdy's line request
    chips = getattr(fe, "chips", [])
    paths = [getattr(c.spi, "path", None) for c in chips]
    if not compiled_available() or req is None or not chips or None in paths:
        return None
    return CompiledReader(
        len(chips), chips[0].frame_bytes, fe.sample_rate_hz,  # type: ignore[attr-defined]
        getattr(fe, "read_speed_hz", 0) or chips[0].spi.max_speed_hz, backend="kernel",
        spi_paths=paths, line_fd=int(req.fd), reverse_read=True,
        cpu=getattr(fe, "reader_cpu", None))


def _percentiles_us(hist: bytes) -> tuple[float, float]:
    h = np.frombuffer(hist, np.uint32)
    cum = np.cumsum(h, dtype=np.int64)
    if cum[-1] == 0:
        return float("nan"), float("nan")
    bin_us = _reader.HIST_BIN_NS / 1000
    return tuple(float((np.searchsorted(cum, q * cum[-1]) + 0.5) * bin_us)  # type: ignore[return-value]
                 for q in (0.5, 0.99))


# -- the C chip model behind the Python DRDY/SPI surfaces (for the Python reader as peer) -------
class ModelChip:
    """The C model (own clock, overwrites, mixed bytes, bus time) for Python readers: `drdy()` is
    a `Drdy` with sequence/timestamp_ns/clock_ns, `spi(i)` an `SpiDevice` for chip i."""

    def __init__(self, n_chips: int, frame_bytes: int, sample_rate_hz: float,
                 spi_speed_hz: int, trigger_period: int = 0, trigger_width: int = 1,
                 spin_us: float = 0.0) -> None:
        _require()
        self._m = _reader.Model(n_chips=n_chips, frame_bytes=frame_bytes,
                                rate_hz=float(sample_rate_hz), sclk_hz=float(spi_speed_hz),
                                trigger_period=trigger_period, trigger_width=trigger_width,
                                spin_us=spin_us)
        self.spi_speed_hz = spi_speed_hz

    def start(self) -> None:
        self._m.start()

    def drdy(self) -> _ModelDrdy:
        return _ModelDrdy(self._m)

    def spi(self, chip: int) -> _ModelSpi:
        return _ModelSpi(self._m, chip, self.spi_speed_hz)


class _ModelDrdy:
    def __init__(self, model: object) -> None:
        self._m = model
        self.sequence = 0
        self.timestamp_ns = 0

    def wait(self, timeout_s: float) -> bool:
        got = self._m.wait(timeout_s)  # type: ignore[attr-defined]
        if got is None:
            return False
        self.sequence, self.timestamp_ns = got
        return True

    @staticmethod
    def clock_ns() -> int:
        import time

        return time.monotonic_ns()

    def close(self) -> None:
        pass


class _ModelSpi:
    mode = 1

    def __init__(self, model: object, chip: int, speed_hz: int) -> None:
        self._m, self._chip, self.max_speed_hz = model, chip, speed_hz

    def xfer2(self, data: list[int], speed_hz: int = 0) -> list[int]:  # the model's SCLK
        return list(self._m.xfer(self._chip, len(data)))  # type: ignore[attr-defined]

    def readbytes(self, n: int) -> list[int]:
        return self.xfer2([0] * n)

    def close(self) -> None:
        pass


def model_pattern(seq: np.ndarray, n_chips: int, frame_bytes: int, trigger_period: int = 0,
                  trigger_width: int = 1) -> np.ndarray:
    """(n, n_chips * frame_bytes) uint8: the frames the C model serves for conversions `seq`
    (written independently of _reader.c's pattern_word/pattern_byte, which it must equal)."""
    k = np.asarray(seq, np.uint64)
    n_ch = (frame_bytes - 3) // 3
    out = np.empty((k.size, n_chips * frame_bytes), np.uint8)
    for chip in range(n_chips):
        o = chip * frame_bytes
        gpio = np.zeros(k.size, np.uint64)
        if chip == 0 and trigger_period > 0:
            gpio = ((k % np.uint64(trigger_period)) < np.uint64(trigger_width)).astype(np.uint64)
        out[:, o], out[:, o + 1], out[:, o + 2] = 0xC0, 0, gpio
        for ch in range(n_ch):
            j = np.uint64((chip * n_ch + ch + 1) * 40503 << 8)
            w = ((k * np.uint64(2654435761)) ^ j) & np.uint64(0xFFFFFF)
            b = o + 3 + 3 * ch
            out[:, b], out[:, b + 1], out[:, b + 2] = w >> np.uint64(16), (
                w >> np.uint64(8)) & np.uint64(0xFF), w & np.uint64(0xFF)
    return out

"""`Ads1299FrontEnd`: one or two ADS1299 chips (8 channels each, separate chip selects, read on
chip 1's DRDY) delivering `SampleBlock`s of ~`block_ms`.

Reading is one DRDY wait and one SPI transfer per chip per sample (the hardware hands out one
frame per conversion), done by a `FrameReader` (reader.py) in its own thread, away from decoding;
this class drains it in blocks and decodes, gap and corruption handling vectorised per block.
Missed samples come from DRDY edge sequence numbers (a conversion missing from the reader's
`seq`: overwritten, read too late, or not drained in time; `health.extra` says which); a frame
read too late or with a bad status nibble is counted corrupt and never decoded as data (it
splits the block: the next block's `first_sample` jumps); no DRDY edge for
`stall_s` (0.5 s) is a stall: `read_block` returns None and `health.stalls` increments once
per episode; after 1 s of silence the chips are re-initialised (every 2 s until it works,
`health.reconnects`), and silent time the DRDY count does not cover becomes a gap in
`first_sample`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from appliance.errors import ConfigError, FrontEndError
from appliance.frontend.ads1299.decode import Frames, decode_frames
from appliance.frontend.ads1299.driver import Ads1299Chip, ChipConfig
from appliance.frontend.ads1299.reader import (
    CONSUMER_RT_PRIORITY,
    FrameBatch,
    FrameReader,
    PythonFrameReader,
    read_deadline_ns,
    set_normal,
    set_realtime,
)
from appliance.frontend.ads1299.registers import N_CHIP_CHANNELS, Command
from appliance.frontend.ads1299.spi import Drdy, SpiDevice
from appliance.frontend.block import FrontEndHealth, SampleBlock

if TYPE_CHECKING:
    from appliance.config import Config
    from appliance.frontend.ads1299.emulator import EmulatedBoard

STALL_S = 0.5
RECOVER_AFTER_S = 1.0  # silent DRDY this long: re-initialise the chips ...
RECOVER_EVERY_S = 2.0  # ... and again this often while it stays silent
MAX_CHIPS = 2
MAX_START_SKEW_NS = 50_000  # chip 2 ahead of chip 1 by at most this after START (else retried)
START_ATTEMPTS = 5
log = logging.getLogger(__name__)


class Ads1299FrontEnd:
    """FrontEnd over 1-2 chips. `board` is the EmulatedBoard when emulated, else None."""

    def __init__(self, spis: list[SpiDevice], drdy: Drdy, channel_names: tuple[str, ...],
                 sample_rate_hz: int = 4000, gain: int = 24, block_ms: float = 16.0,
                 lead_off: bool = True, sleep: Callable[[float], None] = time.sleep,
                 device_names: tuple[str, ...] | None = None, stall_s: float = STALL_S,
                 board: EmulatedBoard | None = None, recover: bool = True,
                 reader: FrameReader | None = None, drdy_pin: int | None = None,
                 read_speed_hz: int = 0, reader_cpu: int | None = None) -> None:
        n_chips = math.ceil(len(channel_names) / N_CHIP_CHANNELS)
        if not 1 <= n_chips <= MAX_CHIPS or len(spis) < n_chips:
            raise ConfigError(
                f"frontend.channels: got {len(channel_names)} names, allowed: 1..16 for "
                f"ADS1299 ({len(spis)} SPI device(s) given, 8 channels each)."
            )
        names = device_names or tuple(f"spi chip {i + 1}" for i in range(n_chips))
        self.chips = [Ads1299Chip(spis[i], names[i], sleep) for i in range(n_chips)]
        self.drdy = drdy
        self.channel_names = tuple(channel_names)
        self.sample_rate_hz = float(sample_rate_hz)
        self.health = FrontEndHealth()
        self.board = board
        self.stall_s = stall_s
        self.block_samples = max(1, round(block_ms * sample_rate_hz / 1000))
        self._closed = False
        self._no_edge_s = 0.0
        self._stalled = False
        self._seq_origin: int | None = None
        self._next = 0  # sample index expected next
        self._last_seq: int | None = None
        self._shift = 0  # added to DRDY sequence numbers for silent (edgeless) time
        self._next_recovery_s = RECOVER_AFTER_S
        self.recover = recover
        self._seq_origin_new = False
        self._reader = reader
        self._reading = False
        self._consumer_tid: int | None = None
        self.start_skew_ns = 0  # how far chip 2's conversions may run ahead of chip 1's
        self.drdy_pin = drdy_pin
        self.read_speed_hz = read_speed_hz  # SCLK of the data reads; 0: the devices' own
        self.reader_cpu = reader_cpu
        self._rate_probe: tuple[int, int, int, int] | None = None  # seq/ns of first, last edge
        self._buf = bytearray()
        self._seqs: list[int] = []
        self._ready: deque[SampleBlock] = deque()
        n_ch = len(channel_names)
        self.configs = [
            ChipConfig.for_channels(min(N_CHIP_CHANNELS, n_ch - i * N_CHIP_CHANNELS),
                                    sample_rate_hz, gain, lead_off=lead_off,
                                    clk_out=(n_chips > 1 and i == 0))
            for i in range(n_chips)
        ]

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Config, emulated: bool = False) -> Ads1299FrontEnd:
        fe = cfg.frontend
        n_chips = math.ceil(len(fe.channels) / N_CHIP_CHANNELS)
        if n_chips > MAX_CHIPS:
            raise ConfigError(f"frontend.channels: got {len(fe.channels)} names, allowed: 1..16 "
                              "for ADS1299 (two chips of 8).")
        common = dict(sample_rate_hz=fe.sample_rate_hz, gain=fe.gain, block_ms=fe.block_ms,
                      read_speed_hz=fe.spi_read_speed_hz,
                      reader_cpu=fe.reader_cpu if fe.reader_cpu >= 0 else None)
        if emulated:
            from appliance.frontend.ads1299.emulator import EmulatedBoard
            from appliance.frontend.ads1299.sources import patient_source

            # faithful: the chip on its own clock, so the read loop meets the chip's timing; it
            # needs real time (the step-wise emulator serves `--fast` and realtime = false)
            board = EmulatedBoard(patient_source(cfg), fe.sample_rate_hz, n_chips=n_chips,
                                  seed=fe.seed, realtime=fe.realtime,
                                  faithful=fe.realtime and fe.faithful_emulator)
            for chip in board.chips:  # too fast a clock fails in emulation as on the bus
                chip.max_speed_hz = fe.spi_speed_hz
            spis: list[SpiDevice] = list(board.chips)
            return cls(spis, board.drdy(0), fe.channels, sleep=board.sleep, board=board,
                       device_names=tuple(f"emulated ADS1299 #{i + 1}" for i in range(n_chips)),
                       drdy_pin=fe.drdy_pin, **common)  # type: ignore[arg-type]
        from appliance.frontend.ads1299.spi import SpidevSpi, open_drdy

        spis = []
        try:
            for i in range(n_chips):
                spis.append(SpidevSpi(fe.spi_bus, fe.spi_device + i, fe.spi_speed_hz))
            drdy = open_drdy(fe.drdy_pin)
        except FrontEndError:
            for spi in spis:
                spi.close()
            raise
        names = tuple(f"spidev{fe.spi_bus}.{fe.spi_device + i}" for i in range(n_chips))
        return cls(spis, drdy, fe.channels, device_names=names, drdy_pin=fe.drdy_pin,
                   **common)  # type: ignore[arg-type]

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def reader(self) -> FrameReader:
        if self._reader is None:
            from appliance.frontend.ads1299.compiled import (
                compiled_reader_for,
                compiled_unavailable_reason,
            )

            self._reader = compiled_reader_for(self)  # on a Pi, where the C extension built
            if self._reader is None and self.board is None and compiled_unavailable_reason():
                log.warning("ADS1299: %s", compiled_unavailable_reason())
        if self._reader is None:
            # the step-wise emulator's clock moves only when DRDY is waited on: read inline
            threaded = not getattr(self.drdy, "stepwise", False)
            self._reader = PythonFrameReader(
                [c.spi for c in self.chips], self.drdy, self.chips[0].frame_bytes,
                self.sample_rate_hz, read_order=range(len(self.chips) - 1, -1, -1),
                threaded=threaded, read_speed_hz=self.read_speed_hz, cpu=self.reader_cpu)
        return self._reader

    def _pause_reader(self) -> None:
        if self._reading:
            self._reading = False
            self.reader.stop()
            if self._consumer_tid is not None:
                set_normal(self._consumer_tid)
                self._consumer_tid = None

    def _resume_reader(self) -> None:
        if not self._reading:
            self._reading = True
            self.reader.start()
            # the thread that starts the front end drains it: keep it from being preempted
            # while it holds the GIL the reader thread needs (undone by stop/close)
            if getattr(self.reader, "threaded", False) and set_realtime(CONSUMER_RT_PRIORITY):
                self._consumer_tid = threading.get_native_id()

    def start(self) -> None:
        """Power-up sequence on every chip (ID check first), then RDATAC + START on each (the
        chip whose DRDY is read last, so every other chip's conversion is ready at its edge),
        then the reader."""
        self._pause_reader()
        for chip, config in zip(self.chips, self.configs, strict=True):
            chip.power_up(config)
        sizes = {chip.n_channels for chip in self.chips}
        per_chip = min(sizes)
        if len(sizes) > 1 or len(self.channel_names) > per_chip * len(self.chips):
            raise FrontEndError(
                f"ADS1299: frontend.channels names {len(self.channel_names)} channels but the "
                + ", ".join(f"{c.name} has {c.n_channels}" for c in self.chips)
                + " (ADS1299-4/-6 variants have 4/6; two chips must be the same variant)."
            )
        self._start_together()
        self.health.connected = True
        self._resume_reader()

    def _start_together(self) -> None:
        """RDATAC on every chip, then START back to back, chip 1 (whose DRDY is read) last.
        With START commands (no shared START pin) each chip converts from its own command, so
        chip 2 runs ahead of chip 1 by up to the time between them: it is measured, retried
        while larger than MAX_START_SKEW_NS, and taken off the reader's deadline."""
        clock_ns = getattr(self.drdy, "clock_ns", time.monotonic_ns)
        for chip in self.chips:
            chip.command(Command.RDATAC)
        skew_ns = 0
        for attempt in range(START_ATTEMPTS):
            t0 = clock_ns()
            for chip in reversed(self.chips):
                chip.command(Command.START)
            skew_ns = clock_ns() - t0 if len(self.chips) > 1 else 0
            if skew_ns <= MAX_START_SKEW_NS or attempt == START_ATTEMPTS - 1:
                break
            for chip in self.chips:
                chip.command(Command.STOP)
        for chip in self.chips:
            chip.streaming = True
        self.start_skew_ns = skew_ns
        self.health.extra["start_skew_us"] = skew_ns / 1000
        if skew_ns > MAX_START_SKEW_NS:  # reads then end late (dropped, never data): say why
            self.health.last_error = (
                f"ADS1299: the chips' START commands were {skew_ns / 1000:.0f} µs apart after "
                f"{START_ATTEMPTS} attempts (limit {MAX_START_SKEW_NS / 1000:.0f} µs; the host "
                "was descheduled between them): frames read after chip 2's update are dropped")
            log.warning("%s", self.health.last_error)
        self.reader.deadline_ns = read_deadline_ns(self.sample_rate_hz) - skew_ns

    def reconfigure(self, configs: list[ChipConfig]) -> None:
        """While streaming: STOP, SDATAC, WREG..., RDATAC, START on each chip. Frames read
        before are delivered first; sample numbering continues (the pause is not a gap)."""
        running = self._reading
        self._pause_reader()
        self._emit()  # decode what was read with the gains it was read at
        was = [chip.streaming for chip in self.chips]
        for chip in self.chips:
            if chip.streaming:
                chip.stop()
        for chip, config in zip(self.chips, configs, strict=True):
            chip.write_config(config)
        self.configs = list(configs)
        if any(was):
            self._start_together()  # together again: the chips' conversions stay aligned
        if running:
            self._resume_reader()

    def set_gain(self, gain: int) -> None:
        self.reconfigure([replace(c, gains=(gain,) * N_CHIP_CHANNELS) for c in self.configs])

    def stop(self) -> None:
        self._pause_reader()
        for chip in self.chips:
            if chip.streaming:
                chip.stop()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.stop()
        finally:
            for chip in self.chips:
                chip.spi.close()
            self.drdy.close()
            self.health.connected = False

    def __enter__(self) -> Ads1299FrontEnd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------
    @property
    def gains(self) -> np.ndarray:
        n = self.chips[0].n_channels
        return np.concatenate([np.asarray(c.gains[:n], np.float64) for c in self.configs])

    def _read_frames(self, n: int, timeout_s: float | None) -> bool:
        """Append up to n frames to the buffer; False on a DRDY timeout (partial kept)."""
        wait_s = self.stall_s if timeout_s is None else min(self.stall_s, timeout_s)
        while len(self._seqs) < n:
            need = n - len(self._seqs)
            seen = self.reader.counts().get("seen", 0)
            batch = self.reader.drain(need, wait_s)
            counts = self._count_reader()
            if len(batch):
                self._append(batch)
                continue
            # empty: the reader's wait timed out
            if counts.get("seen", 0) > seen:
                # DRDY is alive, but no read ended in time: not a dead chip to re-initialise
                self.health.last_error = (
                    f"ADS1299 {self.chips[0].name}: DRDY is alive but no frame was read in "
                    f"time ({counts.get('late', 0)} read too late, "
                    f"{counts.get('overwritten', 0)} overwritten): a read takes longer than "
                    "a sample period; raise frontend.spi_read_speed_hz (data reads; "
                    "frontend.spi_speed_hz when it is 0) or lower the rate")
                return False
            self._on_no_edge(wait_s)
            return False
        return True

    def _append(self, batch: FrameBatch) -> None:
        seq = int(batch.seq[0])
        if self._no_edge_s and self._last_seq is not None:
            # DRDY was silent: if the edge count does not cover the silent time (the chip
            # stopped converting, e.g. reset by a brown-out), the sample index still must,
            # or epochs would be cut across the hole.
            silent = int(self._no_edge_s * self.sample_rate_hz)
            self._shift += max(0, silent - (seq - self._last_seq - 1))
        self._no_edge_s = 0.0
        self._stalled = False
        self._last_seq = int(batch.seq[-1])
        first = (int(batch.seq[0]), int(batch.drdy_ns[0]))
        if self._rate_probe is not None:
            first = self._rate_probe[:2]
        self._rate_probe = (*first, self._last_seq, int(batch.drdy_ns[-1]))
        self._buf += batch.raw.tobytes()
        self._seqs.extend((batch.seq + self._shift).tolist())

    def _count_reader(self) -> dict[str, int]:
        """The reader's counts in health: why conversions are missing (reader.py)."""
        counts = self.reader.counts()
        late = counts.get("late", 0)
        self.health.corrupt_frames += late - int(self.health.extra.get("late_reads", 0))
        self.health.extra.update(
            late_reads=float(late), overwritten=float(counts.get("overwritten", 0)),
            ring_overflow=float(counts.get("ring_overflow", 0)),
            reader_compiled=float(getattr(self.reader, "kind", "python") != "python"),
        )
        latency = getattr(self.reader, "latency", None)  # the compiled reader's: why it lost
        if latency is not None:
            lat = latency()
            self.health.extra.update(read_done_max_us=float(lat["done_us_max"]),
                                     reads_over_250us=float(lat["over"]))
        error = getattr(self.reader, "error", None)
        if error is not None:
            self.health.last_error = f"ADS1299 reader stopped: {error}"
        return counts

    def drdy_hint(self) -> str:
        """What to check when DRDY is silent: the pin it is read on, by its config key."""
        if self.drdy_pin is None:
            return ""
        return (f" on frontend.drdy_pin = {self.drdy_pin} (BCM{self.drdy_pin}): check the DRDY "
                "wire and that frontend.drdy_pin names the pin it is connected to")

    def measured_rate_hz(self) -> float | None:
        """Conversion rate from the DRDY edge timestamps of the frames read last."""
        if self._rate_probe is None:
            return None
        s0, t0, s1, t1 = self._rate_probe
        return (s1 - s0) * 1e9 / (t1 - t0) if t1 > t0 and s1 > s0 else None

    def _on_no_edge(self, waited_s: float) -> None:
        self._no_edge_s += waited_s
        if self._no_edge_s < self.stall_s - 1e-9:
            return
        if not self._stalled:
            self._stalled = True
            self._next_recovery_s = RECOVER_AFTER_S
            self.health.stalls += 1
            self.health.last_error = (
                f"ADS1299 {self.chips[0].name}: no DRDY for {self._no_edge_s:.2f} s"
                + self.drdy_hint()
            )
        elif self.recover and self._no_edge_s >= self._next_recovery_s:
            self._next_recovery_s = self._no_edge_s + RECOVER_EVERY_S
            self._recover()

    def _recover(self) -> None:
        """A chip that lost power or was reset sits in RDATAC with default registers and no
        conversions: run the whole start-up again (ID check included)."""
        self._emit()  # frames read before the stall go out first
        try:
            self.start()
        except FrontEndError as e:
            self.health.connected = False
            self.health.last_error = str(e)
            log.warning("ADS1299 recovery failed: %s", e)
            return
        self.health.reconnects += 1
        log.warning("ADS1299 re-initialised after %.1f s without DRDY", self._no_edge_s)

    def read_frames(self, n: int, timeout_s: float | None = None) -> Frames | None:
        """n decoded frames as they came (for the self test: raw counts and P/N lead-off);
        None on a DRDY timeout. Gaps and corrupt frames are counted in `health`;
        `measured_rate_hz()` then gives the conversion rate over these frames."""
        self._rate_probe = None
        if not self._read_frames(n, timeout_s):
            return None
        frames, _ = self._take()
        return frames

    def _take(self) -> tuple[Frames, np.ndarray]:
        frames = decode_frames(bytes(self._buf), self.chips[0].n_channels, self.gains,
                               len(self.chips))
        seqs = np.asarray(self._seqs, np.int64)
        self._buf.clear()
        self._seqs.clear()
        if self._seq_origin is None:
            self._seq_origin = int(seqs[0])
            self._seq_origin_new = True
        index = seqs - self._seq_origin  # sample index since the stream started
        last = index[0] - 1 if self._seq_origin_new else self._next - 1
        self._seq_origin_new = False
        prev = np.concatenate([[last], index])
        self.health.missed_samples += int(np.sum(np.maximum(np.diff(prev) - 1, 0)))
        self.health.corrupt_frames += frames.n_corrupt
        self.health.samples += int(np.count_nonzero(frames.valid))
        self._next = int(index[-1]) + 1
        return frames, index

    def read_block(self, timeout_s: float | None = None) -> SampleBlock | None:
        if not self._ready and self._read_frames(self.block_samples, timeout_s):
            self._emit()
        return self._ready.popleft() if self._ready else None

    def _emit(self) -> None:
        """Decode the buffered frames into blocks: runs of consecutive, valid samples (a gap or
        a corrupt frame starts a new block; corrupt frames are never delivered)."""
        if not self._seqs:
            return
        frames, index = self._take()
        t_s = time.monotonic()
        n_ch = len(self.channel_names)
        good = frames.valid
        brk = np.flatnonzero((np.diff(index) != 1) | (good[1:] != good[:-1])) + 1
        for lo, hi in zip(np.r_[0, brk], np.r_[brk, len(index)], strict=True):
            if not good[lo]:
                continue
            off = frames.lead_off_p[:n_ch, lo:hi] | frames.lead_off_n[:n_ch, lo:hi]
            self._ready.append(SampleBlock(
                data_uv=frames.data_uv[:n_ch, lo:hi].copy(),
                trigger=frames.trigger[lo:hi].copy(),
                saturated=frames.saturated[:n_ch, lo:hi].copy(),
                lead_off=off.any(axis=1),
                first_sample=int(index[lo]),
                sample_rate_hz=self.sample_rate_hz,
                t_monotonic_s=t_s,
            ))
        self.health.extra["last_drdy_sequence"] = float(self.drdy.sequence)

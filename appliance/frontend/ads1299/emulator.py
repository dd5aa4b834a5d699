"""A register-level ADS1299 emulator behind the same SPI and DRDY surfaces as the hardware.

`EmulatedBoard` holds what chips on one shield share: an emulated clock (integer tCLK ticks of
the 2.048 MHz oscillator), the analog input (a signal source) and the chips, each with its own
chip select (`board.spi(i)`) and DRDY line (`board.drdy(i)`). Time only moves when the reader
waits on DRDY or calls `board.sleep(s)`, so tests never sleep in real time; with
`realtime=True` the clock is also held back to the wall clock (for demos).

Faithful to the datasheet facts in shared/spec/ads1299.md: powers up in RDATAC; RREG/WREG
ignored in RDATAC (the opcode, its count byte and any WREG data are swallowed); system commands
in both modes; RESET restores defaults and ignores bytes for 18 tCLK; read-only ID/LOFF_STATP/N;
DRDY period from CONFIG1; each channel's MUX, gain and clipping; lead-off status only with
CONFIG4.PD_LOFF_COMP=1; GPIO inputs in the status word; MISO misaligned by a bit if the host is
not in SPI mode 1; command bytes after the opcode lost when SCLK > 4.096 MHz (no 4 tCLK gap).

Not emulated: the digital filter's settling and step response (data are ideal samples of the
input), the 20 MHz SCLK limit, bias drive and
BIAS_MEAS (read as noise), single-shot mode, DAISY_IN (chips use separate chip selects).
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.frontend.ads1299.decode import encode_frames, frame_bytes
from appliance.frontend.ads1299.registers import (
    CONFIG4_PD_LOFF_COMP,
    F_CLK_HZ,
    ID_ADS1299,
    ID_CHANNELS,
    N_REGISTERS,
    READ_ONLY,
    RESET_DEFAULTS,
    RESET_TCLK,
    TEST_AMPLITUDE_UV,
    Command,
    Mux,
    Reg,
    parse_chnset,
    rate_from_config1,
    uv_per_count,
)

N_CH = 8
CACHE_FRAMES = 256
TEMP_UV_AT_25C = 145_300.0
TEMP_UV_PER_C = 490.0
AVDD_V, AVSS_V, DVDD_V = 5.0, 0.0, 3.3
# 8 SCLK per byte must last >= 4 tCLK for multi-byte commands sent back to back (spidev does)
MAX_BACK_TO_BACK_SCLK_HZ = 2 * F_CLK_HZ  # 4.096 MHz
SPIN_BELOW_NS = 20_000  # shorter bus times are spun (a sleep's wake-up alone takes ~30-70 µs)
UPDATE_TCLK = 4  # the output register takes a new conversion 4 tCLK before its DRDY falls
LEAD_OFF_RAIL_UV = 5e6  # an open input charged by the lead-off current sits at a rail

Source = Callable[[int], Any] | Any  # f(n) / .generate(n) -> uv (n_ch, n) [, trigger (n,)]


@dataclass
class Faults:
    """Fault injection for tests and `ionm selftest --fault`."""

    gain_error: np.ndarray = field(default_factory=lambda: np.ones(N_CH))  # per channel factor
    stuck: np.ndarray = field(default_factory=lambda: np.zeros(N_CH, bool))  # reads 0 always
    drdy_stalled: bool = False  # DRDY stops toggling (lost clock, dead chip)
    corrupt_status: bool = False  # status nibble garbled in every frame
    corrupt_rate: float = 0.0  # fraction of frames, at random, with a garbled status nibble


class Ads1299Emulator:
    """One ADS1299 chip: the spidev surface (xfer2, readbytes, mode, max_speed_hz, close)."""

    def __init__(self, board: EmulatedBoard, index: int, chip_id: int = ID_ADS1299,
                 seed: int = 1) -> None:
        self.board = board
        self.index = index
        self.chip_id = chip_id
        self.mode = 1
        self.max_speed_hz = 2_000_000
        self._sclk_hz = self.max_speed_hz  # of the transfer under way (xfer2's speed_hz)
        self.faults = Faults()
        self.lead_off_p = np.zeros(N_CH, bool)  # electrode really off (set by tests/scenarios)
        self.lead_off_n = np.zeros(N_CH, bool)
        self.rng = np.random.default_rng(seed + 1000 * index)
        self.transactions = 0
        self.mixed_reads = 0  # faithful mode: reads that overlapped an update (bytes mixed)
        self.closed = False
        self._power_up()

    # -- state -----------------------------------------------------------------------------
    def _power_up(self) -> None:
        self.regs = np.array([RESET_DEFAULTS[Reg(a)] for a in range(N_REGISTERS)], np.uint8)
        self.regs[Reg.ID] = self.chip_id
        self.rdatac = True
        self.running = False
        self.standby = False
        self._t_start = 0
        self._edges_before = 0
        self._ignore_until = 0
        self._cache_first = -1
        self._cache = np.zeros((0, frame_bytes(N_CH)), np.uint8)
        self._out: list[int] = []
        self._out_conv = -2
        self._parse: list[int] = []  # bytes of a multi-byte command in progress

    @property
    def n_channels(self) -> int:
        """Channels in a frame, as the ID says (ADS1299-4/-6 send 4/6)."""
        return ID_CHANNELS.get(self.chip_id & 0x1F, N_CH)

    @property
    def period_tclk(self) -> int:
        rate = rate_from_config1(int(self.regs[Reg.CONFIG1])) or 250
        return F_CLK_HZ // rate

    @property
    def sample_rate_hz(self) -> int:
        return F_CLK_HZ // self.period_tclk

    @property
    def converting(self) -> bool:
        return self.running and not self.standby and not self.faults.drdy_stalled

    def latest_conversion(self, now: int) -> int:
        """Index (since START) of the newest finished conversion; -1 if none."""
        if not (self.running and not self.standby):
            return -1
        return (now - self._t_start) // self.period_tclk - 1

    def conversion_time(self, k: int) -> int:
        return self._t_start + (k + 1) * self.period_tclk

    def edge_number(self, k: int) -> int:
        return self._edges_before + k + 1

    def inject(self, **faults: object) -> None:
        """Set `Faults` fields (e.g. stuck=..., corrupt_rate=0.01) from now on."""
        for name, value in faults.items():
            if not hasattr(self.faults, name):
                raise AttributeError(f"emulated ADS1299: no fault named {name!r}")
            setattr(self.faults, name, value)
        self.invalidate()

    def invalidate(self) -> None:
        """Forget precomputed frames (registers, lead-off or faults changed)."""
        self._cache_first = -1
        self._cache = self._cache[:0]
        self._out_conv = -2

    def _restart_conversions(self, running: bool) -> None:
        now = self.board.now
        done = self.latest_conversion(now) + 1
        if done > 0 and not self.faults.drdy_stalled:
            self._edges_before += done
        self.running = running
        self._t_start = now
        self.invalidate()

    # -- SPI surface -----------------------------------------------------------------------
    def xfer2(self, data: list[int], speed_hz: int = 0) -> list[int]:
        """One transfer at speed_hz (0: max_speed_hz), as spidev's per-transfer speed."""
        if self.closed:
            raise OSError(f"emulated ADS1299 #{self.index + 1}: SPI device is closed")
        self.transactions += 1
        board = self.board
        t_in_ns = time.monotonic_ns()
        t0 = board.now
        self._sclk_hz = speed_hz or self.max_speed_hz
        self._load_output()
        if self.rdatac and not self._parse and not any(data):  # fast path: a data read
            n = len(data)
            out = self._out[:n] + [0] * max(0, n - len(self._out))
            del self._out[:n]
            if board.faithful:
                self._mix_update(out, t0)
        else:
            out = [self._byte(b) for b in data]
        if board.faithful:  # the bus is busy for 8 SCLK per byte; a chip computes for free
            board.pause_ns(time.monotonic_ns() - t_in_ns, board.ns(t0))
            board.spin_until_ns(board.ns(t0) + len(data) * 8 * 1_000_000_000 // self._sclk_hz)
        self._parse = []  # CS high resets the serial interface (ends a partial command)
        if self.mode != 1:  # wrong clock phase: the host samples MISO one bit late
            v = int.from_bytes(bytes(out), "big") >> 1
            out = list(v.to_bytes(len(out), "big"))
        return out

    def readbytes(self, n: int) -> list[int]:
        return self.xfer2([0] * n)

    def _mix_update(self, out: list[int], t0: int) -> None:
        """Faithful mode: the output register takes the next conversion UPDATE_TCLK before its
        DRDY; bytes of a read still shifting out then come from the new frame (status first,
        so the frame looks valid)."""
        if not self.converting or self._out_conv < 0:
            return
        k = self._out_conv
        update = self.conversion_time(k + 1) - UPDATE_TCLK
        ticks_per_byte = 8 * F_CLK_HZ / self._sclk_hz
        first_new = max(0, int((update - t0) // ticks_per_byte))
        if first_new >= len(out):
            return
        new = list(self.frame(k + 1))
        n = len(out)
        out[first_new:] = (new[first_new:n] + [0] * n)[:n - first_new]
        self._out_conv, self._out = k + 1, new[n:]
        self.mixed_reads += 1

    def close(self) -> None:
        self.closed = True

    def _load_output(self) -> None:
        """On a new conversion the output shift register is loaded with its frame (RDATAC)."""
        if not self.rdatac:
            return
        k = self.latest_conversion(self.board.now)
        if k != self._out_conv:
            self._out_conv = k
            self._out = list(self.frame(k)) if k >= 0 else []

    def _next_out(self) -> int:
        return self._out.pop(0) if self._out else 0

    def _byte(self, b: int) -> int:
        miso = self._next_out()
        if self.board.now < self._ignore_until:  # RESET still executing
            return miso
        p = self._parse
        if not p:
            if b & 0xE0 in (Command.RREG, Command.WREG):
                p.append(b)
            else:
                self._command(b)
            return miso
        if self._sclk_hz > MAX_BACK_TO_BACK_SCLK_HZ:
            b = 0x00  # the decoder needs 4 tCLK per byte: a byte right behind another is lost
        p.append(b)
        op, addr, count = p[0] & 0xE0, p[0] & 0x1F, p[1] + 1
        if len(p) == 2:
            if op == Command.RREG:
                self._parse = []  # the host now clocks out `count` bytes with 0x00 (NOPs)
                if not self.rdatac:  # in RDATAC the chip ignores RREG
                    self._out = [self.read_reg(addr + i) for i in range(count)]
            return miso
        if not self.rdatac:  # WREG data byte; in RDATAC it is swallowed
            self.write_reg(addr + len(p) - 3, b)
        if len(p) == 2 + count:
            self._parse = []
        return miso

    def power_cycle(self) -> None:
        """A brown-out: registers to defaults, RDATAC, conversions stopped (fault injection)."""
        was = self._edges_before + max(0, self.latest_conversion(self.board.now) + 1)
        self._power_up()
        self._edges_before = was  # the host's DRDY edge counter keeps counting

    def _command(self, b: int) -> None:
        self.board.mark_state()
        if b == Command.RESET:
            self.power_cycle()
            self._ignore_until = self.board.now + RESET_TCLK
        elif b == Command.START:
            self._restart_conversions(True)
        elif b == Command.STOP:
            self._restart_conversions(False)
        elif b == Command.STANDBY:
            self._restart_conversions(False)
            self.standby = True
        elif b == Command.WAKEUP:
            self.standby = False
        elif b == Command.SDATAC:
            self.rdatac = False
            self._out = []
        elif b == Command.RDATAC:
            self.rdatac = True
            self._out_conv = -2
        elif b == Command.RDATA and not self.rdatac:
            k = self.latest_conversion(self.board.now)
            self._out = list(self.frame(k)) if k >= 0 else []
        # anything else: not an opcode the chip acts on

    # -- registers -------------------------------------------------------------------------
    def read_reg(self, addr: int) -> int:
        if addr >= N_REGISTERS:
            return 0
        if addr in (Reg.LOFF_STATP, Reg.LOFF_STATN):
            p, n = self._loff_status()
            return p if addr == Reg.LOFF_STATP else n
        if addr == Reg.GPIO:
            return self._gpio_reg()
        return int(self.regs[addr])

    def write_reg(self, addr: int, value: int) -> None:
        if addr >= N_REGISTERS or addr in READ_ONLY:
            return
        self.regs[addr] = value & 0xFF
        self.board.mark_state()
        if addr == Reg.CONFIG1 and self.running:  # writing CONFIG1 resets the digital filter
            self._restart_conversions(True)
        self.invalidate()

    def _loff_status(self, source_off: np.ndarray | None = None) -> tuple[int, int]:
        """LOFF_STATP/N: electrodes marked off (and, for P, off in the signal source), only
        for channels with LOFF_SENSP/N set and the comparators powered (CONFIG4)."""
        if not self.regs[Reg.CONFIG4] & CONFIG4_PD_LOFF_COMP:
            return 0, 0
        weights = 1 << np.arange(N_CH)
        off_p = self.lead_off_p if source_off is None else self.lead_off_p | source_off
        p = int(np.sum(weights[off_p])) & int(self.regs[Reg.LOFF_SENSP])
        n = int(np.sum(weights[self.lead_off_n])) & int(self.regs[Reg.LOFF_SENSN])
        return p, n

    def _gpio_reg(self, trigger: int = 0) -> int:
        reg = int(self.regs[Reg.GPIO])
        inputs = reg & 0x0F
        data = ((reg >> 4) & ~inputs) | (trigger & inputs)
        return (data << 4) | inputs

    # -- conversions -----------------------------------------------------------------------
    def frame(self, k: int) -> bytes:
        """The 27-byte frame of conversion k (since START)."""
        if not self._cache_first <= k < self._cache_first + len(self._cache):
            self._cache_first = k
            self._cache = self._frames(np.arange(k, k + CACHE_FRAMES))
        return self._cache[k - self._cache_first].tobytes()

    def _frames(self, ks: np.ndarray) -> np.ndarray:
        t = self._t_start + (ks + 1) * self.period_tclk
        uv, trig = self.board.analog(self.index, t)
        n = len(ks)
        volts_uv = np.zeros((N_CH, n))
        gains = np.ones(N_CH)
        powered = np.ones(N_CH, bool)
        cfg2 = int(self.regs[Reg.CONFIG2])
        for ch in range(N_CH):
            pd, gain, _srb2, mux = parse_chnset(int(self.regs[Reg.CH1SET + ch]))
            powered[ch] = not pd and gain is not None
            gains[ch] = gain or 1
            if mux == Mux.NORMAL:
                volts_uv[ch] = uv[ch]
            elif mux == Mux.TEST:
                volts_uv[ch] = _test_signal_uv(cfg2, t)
            elif mux == Mux.TEMPERATURE:
                volts_uv[ch] = TEMP_UV_AT_25C + TEMP_UV_PER_C * (self.board.temperature_c - 25)
            elif mux == Mux.MVDD:  # ADS129x family values as recalled; not checked against
                # SBAS499C here (the self test does not use them)
                volts_uv[ch] = 1e6 * (DVDD_V / 4 if ch in (2, 3) else 0.5 * (AVDD_V + AVSS_V))
        volts_uv += self.rng.normal(0.0, self.board.noise_uv_rms, volts_uv.shape)
        src_off = self.board.source_lead_off(self.index, t)
        statp, statn = self._loff_status(src_off)
        sens_p = self.regs[Reg.LOFF_SENSP] >> np.arange(N_CH) & 1
        sens_n = self.regs[Reg.LOFF_SENSN] >> np.arange(N_CH) & 1
        muxes = np.array([self.regs[Reg.CH1SET + c] & 7 for c in range(N_CH)])
        normal = muxes == Mux.NORMAL
        volts_uv[normal & self.lead_off_p & (sens_p == 1)] = LEAD_OFF_RAIL_UV
        volts_uv[normal & self.lead_off_n & (sens_n == 1)] = -LEAD_OFF_RAIL_UV
        counts = np.rint(volts_uv * (gains * self.faults.gain_error / uv_per_count(1))[:, None])
        counts[~powered | self.faults.stuck] = 0
        reg = int(self.regs[Reg.GPIO])
        inputs = reg & 0x0F
        gpio = ((reg >> 4) & ~inputs & 0x0F) | (trig.astype(np.int64) & inputs)
        out = encode_frames(counts[:self.n_channels], statp, statn, gpio)
        if self.faults.corrupt_status:
            out[:, 0] ^= 0x50
        elif self.faults.corrupt_rate:
            out[self.rng.random(n) < self.faults.corrupt_rate, 0] ^= 0x50
        return out


def _test_signal_uv(config2: int, t_tclk: np.ndarray) -> np.ndarray:
    if not config2 & 0x10:  # INT_CAL=0: test signal driven externally (nothing here)
        return np.zeros(t_tclk.shape)
    amp = TEST_AMPLITUDE_UV * (2 if config2 & 0x04 else 1)
    freq = config2 & 0x03
    if freq in (2, 3):  # 11 = DC, which is -(VREFP - VREFN)/2400; 10 is "not used": as DC
        return np.full(t_tclk.shape, -amp)
    half_period = 2**20 if freq == 0 else 2**19  # fCLK/2^21 or fCLK/2^20 square
    return np.where((t_tclk // half_period) % 2 == 0, amp, -amp)


_thread_state = threading.local()
PR_SET_TIMERSLACK = 29


def precise_sleep(seconds: float) -> None:
    """time.sleep without the kernel's default 50 µs timer slack (set to 1 ns for the calling
    thread once): a DRDY interrupt or an SPI completion wakes a real reader that promptly."""
    if not getattr(_thread_state, "slack_set", False):
        _thread_state.slack_set = True
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
        except (OSError, AttributeError):  # not Linux: the default slack stays
            pass
    time.sleep(seconds)


class EmulatedDrdy:
    """DRDY of one emulated chip. `wait` advances the emulated clock to the next conversion
    (or by `timeout_s` if none comes); if the reader is late, it reports the latest edge and
    `sequence` jumps, as libgpiod's line sequence numbers do."""

    def __init__(self, chip: Ads1299Emulator) -> None:
        self.chip = chip
        self.sequence = 0
        self.timestamp_ns = 0  # of the latest edge, in the clock of `clock_ns()`
        self.waits = 0
        self._seen_edge = 0
        self._miss = 0

    def miss_next(self, n: int) -> None:
        """Make the reader late: the next wait lets n conversions pass unread."""
        self._miss += n

    def clock_ns(self) -> int:
        return self.chip.board.clock_ns()

    @property
    def stepwise(self) -> bool:
        """True when time moves only as the reader waits: a reader must then run inline."""
        return not self.chip.board.faithful

    def wait(self, timeout_s: float) -> bool:
        chip, board = self.chip, self.chip.board
        self.waits += 1
        if board.faithful:
            return self._wait_real(timeout_s)
        deadline = board.now + int(round(timeout_s * F_CLK_HZ))
        self._miss += board.take_dropouts()
        stall_end = board.stall_end()
        if stall_end is not None:  # a scenario stall: no edges until it ends
            if stall_end > deadline:
                board.advance(deadline - board.now)
                return False
            board.advance(stall_end - board.now)
        if self._miss and chip.converting:  # skip to the (n + 1)-th conversion after the last seen
            target = self._seen_edge - chip._edges_before + self._miss
            board.advance(chip.conversion_time(target) - board.now)
            self._miss = 0
        k = chip.latest_conversion(board.now)
        if chip.converting and k >= 0 and chip.edge_number(k) > self._seen_edge:
            return self._edge(k)
        if chip.converting:
            nxt = max(k + 1, self._seen_edge - chip._edges_before)
            t_next = chip.conversion_time(nxt)
            if t_next <= deadline:
                board.advance(t_next - board.now)
                return self._edge(nxt)
        board.advance(deadline - board.now)
        return False

    def _wait_real(self, timeout_s: float) -> bool:
        """Faithful mode: sleep (GIL released, as in poll()) until the chip's next edge; report
        the newest edge, as a reader taking the last of libgpiod's queued events sees it."""
        chip, board = self.chip, self.chip.board
        t_in_ns = time.monotonic_ns()  # the stand-in's own compute is kept off the chip clock
        deadline_ns = board.clock_ns() + int(timeout_s * 1e9)
        late = board.take_dropouts() + self._miss
        if late:  # a scripted late reader: these conversions pass unread
            self._miss = 0
            board.pause_ns(time.monotonic_ns() - t_in_ns, self.timestamp_ns)
            precise_sleep(late * chip.period_tclk / F_CLK_HZ)
            t_in_ns = time.monotonic_ns()
        while True:
            now = board.now
            stall_end = board.stall_end()
            k = chip.latest_conversion(now) if chip.converting and stall_end is None else -1
            if k >= 0 and chip.edge_number(k) > self._seen_edge:
                self._edge(k)
                board.pause_ns(time.monotonic_ns() - t_in_ns, self.timestamp_ns)
                return True
            now_ns = board.clock_ns()
            if now_ns >= deadline_ns:
                return False
            if stall_end is not None:
                wake_ns = board.ns(min(stall_end, 2**62))
            elif chip.converting:
                wake_ns = board.ns(chip.conversion_time(chip.latest_conversion(now) + 1))
            else:
                wake_ns = deadline_ns
            board.pause_ns(time.monotonic_ns() - t_in_ns, board.ns(now))
            precise_sleep(max(0, min(wake_ns, deadline_ns) - board.clock_ns()) / 1e9)
            t_in_ns = time.monotonic_ns()

    def _edge(self, k: int) -> bool:
        self._seen_edge = self.chip.edge_number(k)
        self.sequence = self._seen_edge
        self.timestamp_ns = self.chip.board.ns(self.chip.conversion_time(k))
        return True

    def close(self) -> None:
        pass


class EmulatedBoard:
    """Clock, analog input and chips of one emulated shield (1 or 2 chips, 8 channels each).

    source: `.generate(n)` or a callable `f(n)` returning uv (n_src, n) [and trigger (n,)]
    µV at the electrodes, sampled at `source_rate_hz`. Row j feeds chip j // 8, channel j % 8;
    trigger bits 0..3 drive GPIO1..4 of every chip (pins configured as inputs).
    """

    def __init__(self, source: Source | None = None, source_rate_hz: float = 4000.0,
                 n_chips: int = 1, chip_ids: tuple[int, ...] | None = None,
                 noise_uv_rms: float = 1.0, temperature_c: float = 35.0, seed: int = 1,
                 realtime: bool = False, faithful: bool = False) -> None:
        self.source = source
        self.period_src = max(1, int(round(F_CLK_HZ / source_rate_hz)))
        self.noise_uv_rms = noise_uv_rms
        self.temperature_c = temperature_c
        self.realtime = realtime
        self.faithful = faithful
        self._now = 0  # tCLK ticks (emulated clock)
        self._t0_wall = time.monotonic()
        self._t0_ns = time.monotonic_ns()
        self._paused_ns = 0  # faithful mode: the emulator's own compute time, off the chip clock
        self._state_ns = 0  # clock_ns() of the latest command that scheduled chip events
        ids = chip_ids or (ID_ADS1299,) * n_chips
        self.chips = [Ads1299Emulator(self, i, ids[i], seed) for i in range(n_chips)]
        self.drdys = [EmulatedDrdy(c) for c in self.chips]
        self._buf_uv = np.zeros((0, 0))
        self._buf_trig = np.zeros(0, np.uint16)
        self._buf_first = 0
        # a simulated Patient's scenario may script front-end faults: stalls and dropouts
        sc = getattr(source, "scenario", None)
        of_type = getattr(sc, "of_type", None)
        self._stalls = [(int(e.at_s * F_CLK_HZ), int((e.at_s + e.duration_s) * F_CLK_HZ)
                         if e.duration_s else None) for _, e in of_type("stall")] if of_type else []
        self._dropouts = [(int(e.at_s * F_CLK_HZ), e.samples)
                          for _, e in of_type("dropout")] if of_type else []

    def stall_end(self) -> int | float | None:
        """End (tCLK) of the scenario stall in force now; inf if it never ends; None if none."""
        for t0, t1 in self._stalls:
            if t0 <= self.now and (t1 is None or self.now < t1):
                return float("inf") if t1 is None else t1
        return None

    def take_dropouts(self) -> int:
        """Conversions a scenario dropout makes the reader miss, once its time has come."""
        n = 0
        while self._dropouts and self._dropouts[0][0] <= self.now:
            n += self._dropouts.pop(0)[1]
        return n

    def spi(self, i: int = 0) -> Ads1299Emulator:
        return self.chips[i]

    def drdy(self, i: int = 0) -> EmulatedDrdy:
        return self.drdys[i]

    @property
    def now(self) -> int:
        """tCLK ticks since the board was made: emulated, or (faithful) from the real clock."""
        if self.faithful:
            return (self.clock_ns() - self._t0_ns) * F_CLK_HZ // 1_000_000_000
        return self._now

    @property
    def now_s(self) -> float:
        return self.now / F_CLK_HZ

    def clock_ns(self) -> int:
        """The clock DRDY timestamps are in: CLOCK_MONOTONIC less the emulator's own compute
        time when faithful (a real chip needs none), else the emulated clock."""
        if self.faithful:
            return time.monotonic_ns() - self._paused_ns
        return self.ns(self._now)

    def ns(self, ticks: int | float) -> int:
        """A time in tCLK ticks on the `clock_ns()` scale, rounded up (so that `now` read at
        that instant has reached the tick)."""
        return self._t0_ns - (-int(ticks) * 1_000_000_000 // F_CLK_HZ)

    def pause_ns(self, ns: int, floor_ns: int = 0) -> None:
        """Take `ns` of the emulator's own compute off the chip clock, never turning it back
        before `floor_ns` (an edge already reported, a read already begun)."""
        if self.faithful:
            floor_ns = max(floor_ns, self._state_ns)
            self._paused_ns += max(0, min(ns, self.clock_ns() - floor_ns))

    def mark_state(self) -> None:
        """A chip scheduled something by the clock (RESET's busy time, START): the clock must
        never be turned back before this instant."""
        self._state_ns = self.clock_ns()

    def spin_until_ns(self, t_ns: int) -> None:
        """Hold the caller until `clock_ns()` reaches t_ns, releasing the GIL as an ioctl does."""
        wait_ns = t_ns - self.clock_ns()
        if wait_ns > SPIN_BELOW_NS:
            precise_sleep(wait_ns / 1e9)
        while self.clock_ns() < t_ns:  # a sleep this short would overshoot it many times
            pass

    def advance(self, ticks: int) -> None:
        if self.faithful:  # the chip's clock runs by itself: wait for it
            target_ns = self.ns(self.now + max(0, int(ticks)))
            precise_sleep(max(0, target_ns - self.clock_ns()) / 1e9)
            return
        self._now += max(0, int(ticks))
        if self.realtime:
            ahead_s = self._t0_wall + self.now_s - time.monotonic()
            if ahead_s > 0.002:
                time.sleep(ahead_s)

    def sleep(self, seconds: float) -> None:
        self.advance(int(round(seconds * F_CLK_HZ)))

    def set_lead_off(self, channel: int, off: bool = True, side: str = "P") -> None:
        """Mark an electrode (board-wide 0-based channel, side 'P' or 'N') off or back on."""
        chip = self.chips[channel // N_CH]
        (chip.lead_off_p if side.upper() == "P" else chip.lead_off_n)[channel % N_CH] = off
        chip.invalidate()

    def analog(self, chip: int, t_tclk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Input µV (8, n) of a chip's channels and trigger bits (n,) at conversion times."""
        idx = t_tclk // self.period_src - 1
        self._generate_until(int(idx[-1]) + 1)
        rel = np.clip(idx - self._buf_first, 0, None)
        uv = np.zeros((N_CH, len(idx)))
        rows = self._buf_uv[chip * N_CH:(chip + 1) * N_CH]
        if rows.size:
            uv[:rows.shape[0]] = rows[:, rel]
        trig = self._buf_trig[rel]
        # keep what a chip may still ask for: the span of the latest request
        drop = int(idx[0]) - self._buf_first - 4 * CACHE_FRAMES
        if drop > 0:
            self._buf_uv = self._buf_uv[:, drop:]
            self._buf_trig = self._buf_trig[drop:]
            self._buf_first += drop
        return uv, trig

    def source_lead_off(self, chip: int, t_tclk: np.ndarray) -> np.ndarray:
        """(8,) bool: electrodes the source reports off during these conversions (a simulated
        `Patient` has `lead_off_span(t0_s, t1_s)`; other sources report none)."""
        out = np.zeros(N_CH, bool)
        span = getattr(self.source, "lead_off_span", None)
        if span is None:
            return out
        t0_s, t1_s = t_tclk[0] / F_CLK_HZ, (t_tclk[-1] + 1) / F_CLK_HZ
        off = np.asarray(span(t0_s, t1_s), bool)[chip * N_CH:(chip + 1) * N_CH]
        out[:off.shape[0]] = off
        return out

    def _generate_until(self, end: int) -> None:
        have = self._buf_first + self._buf_trig.shape[0]
        n = end - have
        if n <= 0:
            return
        n = max(n, CACHE_FRAMES)
        uv, trig = self._pull(n)
        if self._buf_uv.size == 0:
            self._buf_uv = np.zeros((uv.shape[0], 0))
        self._buf_uv = np.concatenate([self._buf_uv, uv], axis=1)
        self._buf_trig = np.concatenate([self._buf_trig, trig.astype(np.uint16)])

    def _pull(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self.source is None:
            return np.zeros((0, n)), np.zeros(n, np.uint16)
        gen = getattr(self.source, "generate", self.source)
        r = gen(n)
        uv, trig = r if isinstance(r, tuple) else (r, np.zeros(n, np.uint16))
        return np.atleast_2d(np.asarray(uv, np.float64)), np.asarray(trig).reshape(n)

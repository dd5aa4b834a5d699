"""`CytonFrontEnd`: an OpenBCI Cyton over its serial dongle as a `FrontEnd` of SampleBlocks.

Board mode digital, so D11, D12, D13, D17, D18 arrive with every sample as trigger bits 0..4.
Reconnects by port path when the port disappears and comes back (USB unplug): meanwhile
`read_block` returns None and `health.connected` is False.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import serial

from appliance.errors import ConfigError, FrontEndError
from appliance.frontend.block import FrontEndHealth, SampleBlock
from appliance.frontend.cyton import protocol as proto
from appliance.frontend.cyton.driver import CytonLink

_FULL_SCALE = ((1 << 23) - 1, -(1 << 23))
_READ_TIMEOUT_S = 0.02


class CytonFrontEnd:
    """Cyton on `port`: 250 Hz, up to 8 channels (the first len(channel_names) ADC channels;
    the rest are powered down), every channel at `gain`.

    block_samples       samples per SampleBlock (blocks are shorter at a sample gap)
    reply_timeout_s     how long to wait for a `$$$` reply (handshake, settings)
    idle_flush_s        quiet time after which the last buffered packet is released (longer than
                        the FTDI latency timer, 16 ms when low-latency mode is refused)
    silence_restart_s   no bytes at all for this long while streaming -> re-handshake
    reconnect_every_s   how often to look for a vanished port again
    """

    sample_rate_hz = proto.SAMPLE_RATE_HZ

    def __init__(
        self,
        port: str,
        channel_names: tuple[str, ...] | list[str],
        gain: int = 24,
        block_samples: int = 4,
        reply_timeout_s: float = 3.0,
        idle_flush_s: float = 0.05,
        silence_restart_s: float = 2.0,
        reconnect_every_s: float = 0.5,
    ) -> None:
        if not 1 <= len(channel_names) <= proto.N_CHANNELS:
            raise ConfigError(
                f"frontend.channels: got {len(channel_names)} names, allowed: 1 to "
                f"{proto.N_CHANNELS} for a Cyton (daisy boards are not supported)."
            )
        if gain not in proto.CODE_BY_GAIN:
            raise ConfigError(
                f"frontend.gain: got {gain!r}, allowed: {sorted(proto.CODE_BY_GAIN)}."
            )
        self.port = port
        self.channel_names = tuple(channel_names)
        self.gain = gain
        self.uv_per_count = proto.uv_per_count(gain)
        self.block_samples = max(1, int(block_samples))
        self.reply_timeout_s = reply_timeout_s
        self.idle_flush_s = idle_flush_s
        self.silence_restart_s = silence_restart_s
        self.reconnect_every_s = reconnect_every_s
        self.health = FrontEndHealth()
        self.firmware = ""
        self._link: CytonLink | None = None
        self._parser = proto.PacketParser()
        self._running = False
        self._pend_counts: list[np.ndarray] = []
        self._pend_trig: list[np.ndarray] = []
        self._pend_idx: list[np.ndarray] = []
        self._last_idx = -1  # absolute index of the last sample received
        self._last_seq: int | None = None
        self._base_idx = 0  # absolute index of sample number 0 of the current stream
        self._t_last_byte = 0.0
        self._t_last_sample = 0.0
        self._t_lost = 0.0
        self._t_next_try = 0.0
        self._lost_before = 0  # parser.lost_packets already accounted for

    @classmethod
    def from_config(cls, cfg: Any, **kw: Any) -> CytonFrontEnd:
        fe = cfg.frontend
        if not fe.port:
            raise ConfigError(
                "frontend.port: got '', allowed: the Cyton dongle's serial port "
                "(e.g. '/dev/ttyUSB0', or a path printed by `ionm emulate cyton`)."
            )
        if fe.sample_rate_hz != proto.SAMPLE_RATE_HZ:
            raise ConfigError(
                f"frontend.sample_rate_hz: got {fe.sample_rate_hz}, allowed: 250 for "
                "frontend.kind = 'cyton' (the Cyton dongle streams 250 Hz)."
            )
        block = round(fe.block_ms * proto.SAMPLE_RATE_HZ / 1000.0)
        return cls(fe.port, fe.channels, gain=fe.gain, block_samples=block, **kw)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Open, handshake, configure and start streaming. FrontEndError if the board is not
        there (the first connection must succeed; later losses are reconnected)."""
        self._running = True
        self._connect()

    def stop(self) -> None:
        self._running = False
        if self._link is not None:
            try:
                self._link.stop()
            except (serial.SerialException, OSError):
                pass

    def close(self) -> None:
        self.stop()
        if self._link is not None:
            self._link.close()
            self._link = None
        self.health.connected = False

    def __enter__(self) -> CytonFrontEnd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> None:
        link = CytonLink(self.port, self.reply_timeout_s)
        try:
            link.handshake()
            for ch in range(1, proto.N_CHANNELS + 1):
                link.set_channel(ch, self.gain, power_down=ch > len(self.channel_names))
            link.board_mode_digital()
            link.start()
        except (FrontEndError, serial.SerialException, OSError):
            link.close()
            raise
        self._link = link
        self.firmware = link.firmware
        self._parser.reset()
        self._last_seq = None
        # Sample numbers restart at 0 with `b`; after an outage estimate the gap from the clock.
        gap = 0
        if self._last_idx >= 0 and self._t_lost:
            gap = int(round((time.monotonic() - self._t_lost) * self.sample_rate_hz))
        self._base_idx = self._last_idx + 1 + gap
        self.health.missed_samples += gap
        self._t_last_byte = time.monotonic()
        self.health.connected = True
        self.health.last_error = ""

    def _lose(self, why: str) -> None:
        self._add(self._parser.flush())  # a whole in-sync packet that arrived before the loss
        if self._link is not None:
            self._link.close()
            self._link = None
        self.health.connected = False
        self.health.last_error = why
        self._t_lost = self._t_last_sample or time.monotonic()
        self._t_next_try = time.monotonic()

    def _try_reconnect(self) -> bool:
        now = time.monotonic()
        if now < self._t_next_try:
            return False
        self._t_next_try = now + self.reconnect_every_s
        if not os.path.exists(self.port):
            return False
        try:
            self._connect()
        except (FrontEndError, serial.SerialException, OSError) as e:
            self.health.last_error = str(e)
            return False
        self.health.reconnects += 1
        return True

    # ---- data ------------------------------------------------------------------------------
    def read_block(self, timeout_s: float | None = None) -> SampleBlock | None:
        """Next block of consecutive samples; None on timeout or while the board is gone."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            block = self._pop_block(self.block_samples)
            if block is not None:
                return block
            now = time.monotonic()
            left = 0.1 if deadline is None else deadline - now
            if left <= 0:
                return self._pop_block(1)  # whatever is pending (a short block) or None
            if self._link is None:
                if not self._running or not self._try_reconnect():
                    time.sleep(min(left, self.reconnect_every_s / 5))
                    if deadline is not None and time.monotonic() >= deadline:
                        return self._pop_block(1)  # samples received before the loss
                continue
            try:
                data = self._link.read(_READ_TIMEOUT_S)  # may overrun timeout_s by this
            except (serial.SerialException, OSError) as e:
                self._lose(f"Cyton on {self.port!r}: port lost ({e}); reconnecting")
                continue
            now = time.monotonic()
            if data:
                self._t_last_byte = now
                self._add(self._parser.feed(data))
            elif now - self._t_last_byte >= self.idle_flush_s:
                self._add(self._parser.flush())
                if now - self._t_last_byte >= self.silence_restart_s:
                    self._lose(f"Cyton on {self.port!r}: no data for {self.silence_restart_s} s")

    def _add(self, pk: proto.Packets) -> None:
        p = self._parser
        self.health.corrupt_frames = p.resyncs
        self.health.extra.update(
            corrupt_bytes=float(p.corrupt_bytes),
            bad_footer=float(p.bad_footer),
            lost_packets=float(p.lost_packets),
        )
        if not len(pk):
            return
        seq = pk.sample_number.astype(np.int64)
        if self._last_seq is None:  # first packet of this stream: sample number counts from `b`
            steps = ((np.diff(seq, prepend=seq[0] - 1) - 1) & 0xFF) + 1
            steps[0] = seq[0]
            idx = self._base_idx + np.cumsum(steps)
            self.health.missed_samples += int(seq[0])
        else:
            steps = ((np.diff(seq, prepend=self._last_seq) - 1) & 0xFF) + 1
            idx = self._last_idx + np.cumsum(steps)
        self.health.missed_samples += p.lost_packets - self._lost_before
        self._lost_before = p.lost_packets
        self._last_seq = int(seq[-1])
        self._last_idx = int(idx[-1])
        self._t_last_sample = time.monotonic()
        self._pend_counts.append(pk.counts[:, : len(self.channel_names)])
        self._pend_trig.append(proto.digital_trigger(pk.aux))
        self._pend_idx.append(idx)

    def _pop_block(self, min_samples: int) -> SampleBlock | None:
        if not self._pend_idx:
            return None
        idx = np.concatenate(self._pend_idx)
        # a block holds consecutive samples only: cut at the first gap
        run = idx.shape[0]
        gaps = np.flatnonzero(np.diff(idx) != 1)
        if gaps.size:
            run = int(gaps[0]) + 1
        n = min(run, self.block_samples)
        if n < min_samples and run == idx.shape[0]:
            return None
        counts = np.concatenate(self._pend_counts)
        trig = np.concatenate(self._pend_trig)
        self._pend_counts, self._pend_trig, self._pend_idx = [counts[n:]], [trig[n:]], [idx[n:]]
        if not idx[n:].size:
            self._pend_counts, self._pend_trig, self._pend_idx = [], [], []
        c = counts[:n].T
        self.health.samples += n
        return SampleBlock(
            data_uv=c * self.uv_per_count,
            trigger=trig[:n],
            saturated=(c == _FULL_SCALE[0]) | (c == _FULL_SCALE[1]),
            lead_off=np.zeros(c.shape[0], bool),
            first_sample=int(idx[0]),
            sample_rate_hz=self.sample_rate_hz,
            t_monotonic_s=self._t_last_sample,
        )

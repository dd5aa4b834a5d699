"""Vectorised ADS1299 data-frame decoding (and its inverse, used by the emulator).

A frame per chip is 3 status bytes + 3 bytes per channel (27 bytes for 8 channels). With two
chips on separate chip selects the reader concatenates chip 1's frame and chip 2's frame, so a
sample is `n_chips * frame_bytes` bytes. Everything below works on whole arrays of frames; there
is no per-frame Python loop.

Integrity: the only check the chip offers is the status word's top nibble (0b1100). A frame that
fails it is counted corrupt and its values are never used. A bit flip inside channel data cannot
be detected (the ADS1299 has no CRC); such a sample decodes to a different, plausible value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.errors import FrameError
from appliance.frontend.ads1299.registers import (
    FULL_SCALE_NEG,
    FULL_SCALE_POS,
    STATUS_NIBBLE,
    uv_per_count,
)

RawFrames = bytes | bytearray | memoryview | np.ndarray
# first status byte -> frame is valid (top nibble 0b1100); a table lookup is one numpy call
_STATUS_OK = (np.arange(256) >> 4) == STATUS_NIBBLE


def frame_bytes(n_channels: int) -> int:
    """Bytes in one chip's frame: 27 for 8 channels, 21 for 6, 15 for 4."""
    return 3 + 3 * n_channels


@dataclass(frozen=True)
class Frames:
    """Decoded frames.

    valid       (n_frames,) bool: status nibble was 0xC on every chip
    Channel arrays are (n_ch, n_frames) transposed views of (n_frames, n_ch) buffers.
    counts      (n_ch, n_frames) int32 signed ADC counts (0 where not valid)
    data_uv     (n_ch, n_frames) float64 µV (0 where not valid)
    saturated   (n_ch, n_frames) bool: count at +full scale 0x7FFFFF or -full scale 0x800000
    lead_off_p  (n_ch, n_frames) bool: LOFF_STATP bit of the channel's P electrode
    lead_off_n  (n_ch, n_frames) bool: LOFF_STATN bit of the channel's N electrode
    gpio        (n_chips, n_frames) uint8: GPIO[4:1] input bits of each chip's status word
    """

    valid: np.ndarray
    counts: np.ndarray
    data_uv: np.ndarray
    saturated: np.ndarray
    lead_off_p: np.ndarray
    lead_off_n: np.ndarray
    gpio: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.valid.shape[0])

    @property
    def n_corrupt(self) -> int:
        return int(self.n_frames - np.count_nonzero(self.valid))

    @property
    def trigger(self) -> np.ndarray:
        """(n_frames,) uint16 trigger bits: chip 1's GPIO1..4 -> bits 0..3 (contracts.md)."""
        return self.gpio[0].astype(np.uint16)


def as_frame_array(raw: RawFrames, sample_bytes: int) -> np.ndarray:
    """Bytes (n * sample_bytes) or an (n, sample_bytes) uint8 array -> (n, sample_bytes) uint8."""
    arr = np.asarray(raw, dtype=np.uint8) if isinstance(raw, np.ndarray) else np.frombuffer(
        raw, dtype=np.uint8)
    if arr.ndim == 2:
        if arr.shape[1] != sample_bytes:
            raise FrameError(
                f"ADS1299 frames: got rows of {arr.shape[1]} bytes, expected {sample_bytes}."
            )
        return arr
    if arr.ndim != 1 or arr.size % sample_bytes:
        raise FrameError(
            f"ADS1299 frames: got {arr.size} bytes, not a whole number of {sample_bytes}-byte "
            "frames (use StreamDecoder for a byte stream split at arbitrary points)."
        )
    return arr.reshape(-1, sample_bytes)


def decode_frames(raw: RawFrames, n_channels: int = 8, gains: int | np.ndarray = 24,
                  n_chips: int = 1) -> Frames:
    """Decode whole frames. `n_channels` is per chip (4, 6 or 8); `gains` is one PGA gain factor
    or one per channel (n_chips * n_channels,). Output channels are chip 1's then chip 2's."""
    fb = frame_bytes(n_channels)
    sb = fb * n_chips
    n_ch = n_channels * n_chips
    if isinstance(raw, bytes | bytearray | memoryview):
        raw = bytes(raw)
        if len(raw) % sb:
            as_frame_array(raw, sb)  # raises, naming the length
        # one zero byte of padding lets the last value be read as 4 bytes (see below)
        buf = np.frombuffer(raw + b"\0", np.uint8)
    else:
        frames = as_frame_array(raw, sb)
        buf = np.zeros(frames.size + 1, np.uint8)
        buf[:-1] = frames.reshape(-1)
    n = (buf.size - 1) // sb
    f3 = buf[:-1].reshape(n, n_chips, fb)
    ok = _STATUS_OK.take(f3[:, :, 0])  # (n, n_chips)
    valid = ok[:, 0] if n_chips == 1 else np.count_nonzero(ok, axis=1) == n_chips

    # Each 24-bit value is read as the big-endian int32 starting at its first byte (so it also
    # holds the next byte), then shifted right by 8: one strided view, one cast, one shift, and
    # the arithmetic shift sign-extends.
    if n:
        be = np.ndarray((n, n_chips, n_channels), dtype=">i4", buffer=buf, offset=3,
                        strides=(sb, fb, 3))
        counts = be.astype(np.int32).reshape(n, n_ch)
        counts >>= 8
    else:
        counts = np.zeros((0, n_ch), np.int32)

    # status bits, MSB first: 1100 | STATP[7:0] | STATN[7:0] | GPIO[7:4]; STATP bit c (at
    # position 11 - c) belongs to channel c
    bits = np.unpackbits(f3[:, :, :3], axis=2).view(bool)
    gpio = f3[:, :, 2] & 0x0F
    if np.count_nonzero(valid) < n:  # a corrupt frame is never data
        bad = ~valid
        counts[bad] = 0
        bits[bad] = False
        gpio[bad] = 0
    lead_p = bits[:, :, 11:11 - n_channels:-1].reshape(n, n_ch)
    lead_n = bits[:, :, 19:19 - n_channels:-1].reshape(n, n_ch)
    saturated = (counts == FULL_SCALE_POS) | (counts == FULL_SCALE_NEG)
    data_uv = counts * _scale(gains, n_ch)
    # (n, n_ch) -> (n_ch, n) views: no copy here; slicing a block copies once downstream
    return Frames(valid, counts.T, data_uv.T, saturated.T, lead_p.T, lead_n.T,
                  np.ascontiguousarray(gpio.T))


def _scale(gains: int | np.ndarray, n_ch: int) -> float | np.ndarray:
    if isinstance(gains, int | float):
        if gains <= 0:
            raise FrameError(f"ADS1299 decode: gains must be positive, got {gains}.")
        return uv_per_count(1) / gains  # a scalar broadcasts
    g = np.broadcast_to(np.asarray(gains, dtype=np.float64), (n_ch,))
    if np.any(g <= 0):
        raise FrameError(f"ADS1299 decode: gains must be positive, got {g.tolist()}.")
    return uv_per_count(1) / g


def encode_frames(counts: np.ndarray, statp: np.ndarray | int = 0, statn: np.ndarray | int = 0,
                  gpio: np.ndarray | int = 0) -> np.ndarray:
    """One chip's frames from counts (n_channels, n) -> (n, 3 + 3 n_channels) uint8.
    Counts are clipped to full scale, as the ADC does. statp/statn/gpio per frame or scalar."""
    c = np.clip(np.asarray(counts, dtype=np.int64), FULL_SCALE_NEG, FULL_SCALE_POS)
    n_ch, n = c.shape
    out = np.empty((n, 3 + 3 * n_ch), dtype=np.uint8)
    word = (0xC << 20) | (np.broadcast_to(np.asarray(statp, np.int64) & 0xFF, (n,)) << 12) | (
        np.broadcast_to(np.asarray(statn, np.int64) & 0xFF, (n,)) << 4) | (
        np.broadcast_to(np.asarray(gpio, np.int64) & 0x0F, (n,)))
    out[:, 0] = word >> 16
    out[:, 1] = (word >> 8) & 0xFF
    out[:, 2] = word & 0xFF
    u = (c & 0xFFFFFF).T  # two's complement in 24 bits, (n, n_ch)
    out[:, 3::3] = u >> 16
    out[:, 4::3] = (u >> 8) & 0xFF
    out[:, 5::3] = u & 0xFF
    return out


class StreamDecoder:
    """Decodes a byte stream cut at arbitrary points: keeps the partial frame for the next feed.

    For SPI the reader hands whole frames (one per DRDY), so this is for byte streams that were
    stored or forwarded in chunks. There is no resynchronisation inside a stream: frame
    boundaries are positional, as they are on the SPI bus.
    """

    def __init__(self, n_channels: int = 8, gains: int | np.ndarray = 24, n_chips: int = 1):
        self.n_channels = n_channels
        self.gains = gains
        self.n_chips = n_chips
        self.sample_bytes = frame_bytes(n_channels) * n_chips
        self._rest = b""
        self.frames = 0
        self.corrupt = 0

    def feed(self, chunk: bytes) -> Frames:
        buf = self._rest + bytes(chunk)
        usable = len(buf) - len(buf) % self.sample_bytes
        self._rest = buf[usable:]
        out = decode_frames(buf[:usable], self.n_channels, self.gains, self.n_chips)
        self.frames += out.n_frames
        self.corrupt += out.n_corrupt
        return out

    @property
    def pending_bytes(self) -> int:
        return len(self._rest)

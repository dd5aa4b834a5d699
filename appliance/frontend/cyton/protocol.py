"""OpenBCI Cyton serial packets: encode (for the emulator) and a streaming, vectorised parser.

Packet (33 bytes): 0xA0 · sample number · 8 x int24 MSB first · 6 aux bytes · footer 0xC0..0xC6.

The protocol has no checksum, so framing is the only evidence a packet is whole. The parser
accepts a 33-byte window as a packet only under this rule (R):

  * it starts with 0xA0 and ends with a footer in 0xC0..0xC6, and
  * the byte right after it is 0xA0 (the next packet's header), and
  * either it starts exactly where the previously accepted packet ended ("in sync"), or, when
    re-synchronising after garbage, the next 33 bytes are themselves a well-framed packet whose
    sample number is this one's + 1 (mod 256).

Decisions are made only once every byte they depend on has arrived, so the result does not
depend on how the stream is split into reads. The last packet of a stream has no successor; the
caller releases it with `flush()` when the line has gone quiet (only if it is in sync).

What this guarantees (and what no Cyton parser can):
  * no input crashes the parser; every byte is either in an accepted packet, counted in
    `corrupt_bytes`, or still buffered (at most 65 bytes once a feed returns);
  * every accepted packet is a verbatim 33-byte window of the input that satisfies rule R;
  * a packet whose header or footer byte is damaged is never accepted at that position, nor is
    a window that starts inside random garbage unless the garbage reproduces the framing: in
    sync, 0xA0 ... 0xC0-0xC6 0xA0 (about 1 in 10^4 random 33-byte bursts, 1 in 10^7 longer
    ones); re-synchronising, also the next packet's framing and sample number (about 4 in 10^7);
  * a flipped bit inside the 31 payload bytes of a well-framed packet is NOT detectable:
    the packet is accepted with the wrong value. Only a checksum could catch that, and the
    Cyton sends none;
  * a good packet directly followed by garbage is dropped (its successor's header is missing,
    so it cannot be told from a packet whose tail was lost); it shows as a lost packet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HEADER = 0xA0
FOOTER_MIN = 0xC0
FOOTER_MAX = 0xC6
FOOTER_ACCEL = 0xC0
FOOTER_RAW_AUX = 0xC1
PACKET_BYTES = 33
N_CHANNELS = 8
SAMPLE_RATE_HZ = 250.0

# ADS1299 gain code used in the `x C P G I B S2 S1 X` command -> PGA gain.
GAIN_BY_CODE = {0: 1, 1: 2, 2: 4, 3: 6, 4: 8, 5: 12, 6: 24}
CODE_BY_GAIN = {g: c for c, g in GAIN_BY_CODE.items()}

# Board mode digital (/3): pin -> trigger bit (contracts.md), and where the pin sits in aux.
DIGITAL_PINS = ("D11", "D12", "D13", "D17", "D18")
DIGITAL_AUX_BYTE = (0, 1, 2, 3, 5)  # aux0 = D11<<8|D12, aux1 = D13<<8|D17, aux2 = D18

_COUNT_MAX = (1 << 23) - 1
_COUNT_MIN = -(1 << 23)


def uv_per_count(gain: int) -> float:
    """µV per ADC count: 4.5 V / gain / (2^23 - 1) (OpenBCI's and BrainFlow's scale)."""
    return 4.5 / gain / _COUNT_MAX * 1e6


@dataclass(frozen=True)
class Packets:
    """Accepted packets of one feed, in stream order.

    sample_number (k,) uint8 · counts (k, 8) int32 · aux (k, 6) uint8 · footer (k,) uint8 ·
    offset (k,) int64: byte offset of each packet's header in the whole stream (for diagnostics).
    """

    sample_number: np.ndarray
    counts: np.ndarray
    aux: np.ndarray
    footer: np.ndarray
    offset: np.ndarray

    def __len__(self) -> int:
        return int(self.sample_number.shape[0])

    @staticmethod
    def empty() -> Packets:
        return _decode(np.zeros((0, PACKET_BYTES), np.uint8), np.zeros(0, np.int64))


def encode(
    sample_number: np.ndarray,
    counts: np.ndarray,
    aux: np.ndarray | None = None,
    footer: int | np.ndarray = FOOTER_ACCEL,
) -> bytes:
    """Packets as bytes. sample_number (k,), counts (k, 8) int (clipped to 24 bits),
    aux (k, 6) uint8 or None (zeros), footer scalar or (k,)."""
    counts = np.clip(np.asarray(counts, np.int64), _COUNT_MIN, _COUNT_MAX)
    k = counts.shape[0]
    if counts.shape != (k, N_CHANNELS):
        raise ValueError(f"counts must be (k, {N_CHANNELS}), got {counts.shape}")
    out = np.empty((k, PACKET_BYTES), np.uint8)
    out[:, 0] = HEADER
    out[:, 1] = np.asarray(sample_number, np.int64) & 0xFF
    u = counts & 0xFFFFFF
    out[:, 2:26:3] = u >> 16
    out[:, 3:26:3] = (u >> 8) & 0xFF
    out[:, 4:26:3] = u & 0xFF
    out[:, 26:32] = 0 if aux is None else np.asarray(aux, np.uint8)
    out[:, 32] = footer
    return out.tobytes()


def digital_aux(trigger: np.ndarray) -> np.ndarray:
    """Trigger bits 0..4 (k,) -> aux bytes (k, 6) as the board sends them in digital mode."""
    trigger = np.asarray(trigger, np.uint16)
    aux = np.zeros((trigger.shape[0], 6), np.uint8)
    for bit, byte in enumerate(DIGITAL_AUX_BYTE):
        aux[:, byte] = (trigger >> bit) & 1
    return aux


def digital_trigger(aux: np.ndarray) -> np.ndarray:
    """Aux bytes (k, 6) of digital-mode packets -> trigger bits (k,) uint16 (D11 -> bit 0 ...)."""
    trig = np.zeros(aux.shape[0], np.uint16)
    for bit, byte in enumerate(DIGITAL_AUX_BYTE):
        trig |= (aux[:, byte] != 0).astype(np.uint16) << bit
    return trig


def _decode(rows: np.ndarray, offset: np.ndarray) -> Packets:
    """rows (k, 33) uint8 of well-framed packets -> Packets (vectorised 24-bit sign extension)."""
    b = rows[:, 2:26].astype(np.int32).reshape(-1, N_CHANNELS, 3)
    counts = (b[:, :, 0] << 16) | (b[:, :, 1] << 8) | b[:, :, 2]
    counts -= (counts & 0x800000) << 1
    return Packets(
        sample_number=rows[:, 1].copy(),
        counts=counts,
        aux=rows[:, 26:32].copy(),
        footer=rows[:, 32].copy(),
        offset=offset,
    )


def _framed(a: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Bool per start: header and footer of a 33-byte window are right (indices must exist)."""
    foot = a[starts + 32]
    return (a[starts] == HEADER) & (foot >= FOOTER_MIN) & (foot <= FOOTER_MAX)


class PacketParser:
    """Streaming Cyton packet parser. `feed(bytes) -> Packets`; counters as attributes.

    packets        accepted packets
    lost_packets   sample-number gaps between accepted packets (mod 256; a gap of 256 or more
                   packets cannot be seen from the numbers alone)
    corrupt_bytes  bytes discarded (garbage, and packets that failed rule R)
    bad_footer     in-sync packets rejected because the footer was outside 0xC0..0xC6
    resyncs        times sync was lost and searched for again
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._base = 0  # stream offset of _buf[0]
        self._in_sync = False
        self._last_seq: int | None = None
        self.packets = 0
        self.lost_packets = 0
        self.corrupt_bytes = 0
        self.bad_footer = 0
        self.resyncs = 0

    def reset(self) -> None:
        """Forget buffered bytes and sync (e.g. after the port was reopened); keep counters."""
        self.corrupt_bytes += len(self._buf)
        self._base += len(self._buf)
        self._buf.clear()
        self._in_sync = False
        self._last_seq = None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> Packets:
        self._buf += data
        a = np.frombuffer(bytes(self._buf), np.uint8)
        n = a.shape[0]
        pos = 0
        chunks: list[np.ndarray] = []
        while True:
            if self._in_sync:
                m = (n - pos - 1) // PACKET_BYTES  # windows whose successor's header has arrived
                if m <= 0:
                    break
                starts = pos + PACKET_BYTES * np.arange(m)
                ok = _framed(a, starts) & (a[starts + PACKET_BYTES] == HEADER)
                k = m if ok.all() else int(np.argmin(ok))
                chunks.append(starts[:k])
                pos += PACKET_BYTES * k
                if k == m:
                    break
                if a[pos] == HEADER and not FOOTER_MIN <= a[pos + 32] <= FOOTER_MAX:
                    self.bad_footer += 1
                self._in_sync = False
                self.resyncs += 1
            else:
                last = n - 2 * PACKET_BYTES  # last start whose successor is complete
                if last < pos:
                    break
                cand = pos + np.flatnonzero(a[pos : last + 1] == HEADER)
                if cand.size:
                    nxt = cand + PACKET_BYTES
                    ok = (
                        _framed(a, cand)
                        & _framed(a, nxt)
                        & (a[nxt + 1] == ((a[cand + 1].astype(np.int32) + 1) & 0xFF))
                    )
                    hit = np.flatnonzero(ok)
                else:
                    hit = cand
                if hit.size:
                    q = int(cand[hit[0]])
                    self.corrupt_bytes += q - pos
                    pos = q
                    self._in_sync = True
                    continue
                self.corrupt_bytes += last + 1 - pos
                pos = last + 1
                break
        return self._take(a, pos, chunks)

    def flush(self) -> Packets:
        """Release a final in-sync packet that has no successor yet (call when the line is idle)."""
        a = np.frombuffer(bytes(self._buf), np.uint8)
        if self._in_sync and a.shape[0] >= PACKET_BYTES and _framed(a, np.zeros(1, np.int64))[0]:
            return self._take(a, PACKET_BYTES, [np.zeros(1, np.int64)])
        return self._take(a, 0, [])

    def _take(self, a: np.ndarray, pos: int, chunks: list[np.ndarray]) -> Packets:
        chunks = [c for c in chunks if c.size]
        if len(chunks) == 1:  # the usual case, one in-sync run: a reshaped view, no gather
            s0, k = int(chunks[0][0]), chunks[0].size
            rows = a[s0 : s0 + PACKET_BYTES * k].reshape(k, PACKET_BYTES)
            starts = chunks[0]
        else:
            starts = np.concatenate(chunks) if chunks else np.zeros(0, np.int64)
            rows = a[starts[:, None] + np.arange(PACKET_BYTES)]
        pk = _decode(rows, starts.astype(np.int64) + self._base)
        del self._buf[:pos]
        self._base += pos
        k = len(pk)
        if k:
            seq = pk.sample_number.astype(np.int32)
            prev = int(seq[0]) - 1 if self._last_seq is None else self._last_seq
            self.lost_packets += (int(seq[0]) - prev - 1) & 0xFF
            if k > 1:
                self.lost_packets += int(((seq[1:] - seq[:-1] - 1) & 0xFF).sum())
            self._last_seq = int(seq[-1])
            self.packets += k
        return pk

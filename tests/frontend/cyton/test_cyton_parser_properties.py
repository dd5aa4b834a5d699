"""Property tests of the Cyton packet parser on random garbage, splits, bit flips and drops.

What is guaranteed (see appliance/frontend/cyton/protocol.py), and checked here:
1. No input crashes it; every byte is accepted, counted corrupt, or still buffered; the result
   does not depend on how the stream is split into reads; the accepted windows are exactly
   those of rule R (an independent byte-by-byte restatement of the rule below).
2. With payload bytes that never equal 0xA0: a window of undamaged, contiguous bytes is accepted
   only at a true packet boundary (never a misaligned "packet" made of two real ones), and the
   middle packet of any three undamaged contiguous packets is always accepted.
Not guaranteed (no CRC in the protocol): a payload bit flip inside a well-framed packet is
accepted with the wrong value; garbage that reproduces the framing can pass.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from appliance.frontend.cyton import protocol as proto

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_offsets(s: bytes) -> list[int]:
    """Rule R, byte by byte: in sync, a framed window followed by a header is a packet; out of
    sync, a framed window followed by a framed window with the next sample number is one."""

    def framed(i: int) -> bool:
        return i + 33 <= len(s) and s[i] == 0xA0 and 0xC0 <= s[i + 32] <= 0xC6

    out, i, in_sync = [], 0, False
    while True:
        if in_sync:
            if i + 34 > len(s):
                return out
            if framed(i) and s[i + 33] == 0xA0:
                out.append(i)
                i += 33
                continue
            in_sync = False
        if i + 66 > len(s):
            return out
        if framed(i) and framed(i + 33) and s[i + 34] == (s[i + 1] + 1) % 256:
            in_sync = True
        else:
            i += 1


def run(stream: bytes, cuts: list[int], flush: bool = False) -> tuple[proto.PacketParser, list]:
    p = proto.PacketParser()
    edges = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    got = [p.feed(stream[a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    got.append(p.feed(b""))
    if flush:
        got.append(p.flush())
    return p, got


def packet_bytes(seq: int, payload: bytes, footer: int) -> bytes:
    return bytes([0xA0, seq & 0xFF]) + payload + bytes([footer])


def packet_run(seq0: int, payload: bytes, footer: int) -> bytes:
    """len(payload) // 30 packets with consecutive sample numbers."""
    n = len(payload) // 30
    return b"".join(packet_bytes(seq0 + j, payload[30 * j : 30 * j + 30], footer) for j in range(n))


runs = st.integers(2, 5).flatmap(
    lambda k: st.builds(
        packet_run,
        st.integers(0, 255),
        st.binary(min_size=30 * k, max_size=30 * k),
        st.integers(0xC0, 0xC6),
    )
)
pieces = st.one_of(
    st.binary(max_size=70),
    runs,
    runs,
    runs,
    st.builds(
        packet_bytes,
        st.integers(0, 255),
        st.binary(min_size=30, max_size=30),
        st.integers(0xBE, 0xC8),
    ),
    st.sampled_from([b"\xa0", b"\xc0", b"\xa0\x00", b"$$$"]),
)


@SETTINGS
@given(st.lists(pieces, max_size=25), st.lists(st.integers(0, 10_000), max_size=12))
def test_any_bytes_any_split_equals_rule_r(parts, cuts):
    stream = b"".join(parts)
    p, got = run(stream, cuts)
    offsets = np.concatenate([g.offset for g in got]).tolist()
    event(f"packets accepted: {min(len(offsets), 3)}{'+' if len(offsets) >= 3 else ''}")
    assert offsets == reference_offsets(stream)
    assert p.corrupt_bytes + 33 * len(offsets) + p.buffered == len(stream)
    assert p.buffered <= 65
    for g in got:  # decoded values are the window's bytes
        for k, off in enumerate(g.offset.tolist()):
            assert (
                proto.encode(
                    [g.sample_number[k]], g.counts[k : k + 1], g.aux[k : k + 1], g.footer[k]
                )
                == stream[off : off + 33]
            )
    seqs = np.concatenate([g.sample_number for g in got]).astype(int)
    assert p.lost_packets == int(((np.diff(seqs) - 1) % 256).sum()) if seqs.size else True


@st.composite
def damaged(draw):
    """Consecutive packets (payload without 0xA0) with garbage inserted, bits flipped and bytes
    dropped. Returns the stream and, per byte, its origin (packet, byte) or None if garbage,
    and whether it was flipped."""
    n = draw(st.integers(3, 20))
    seq0 = draw(st.integers(0, 255))
    payload = draw(st.binary(min_size=30 * n, max_size=30 * n)).replace(b"\xa0", b"\xa1")
    footers = draw(st.lists(st.integers(0xC0, 0xC6), min_size=n, max_size=n))
    data, origin = bytearray(), []
    for j in range(n):
        data += packet_bytes(seq0 + j, payload[30 * j : 30 * j + 30], footers[j])
        origin += [(j, b) for b in range(33)]
    flipped = [False] * len(data)
    ops = st.tuples(
        st.sampled_from(["insert", "flip", "drop"]),
        st.integers(0, 10_000),
        st.one_of(st.binary(max_size=70), pieces),
        st.integers(0, 7),
    )
    for kind, pos, garbage, bit in draw(st.lists(ops, max_size=5)):
        i = pos % (len(data) + 1)
        if kind == "insert":
            data[i:i] = garbage
            origin[i:i] = [None] * len(garbage)
            flipped[i:i] = [False] * len(garbage)
        elif i < len(data) and kind == "flip":
            data[i] ^= 1 << bit
            flipped[i] = True
        elif i < len(data):
            del data[i], origin[i], flipped[i]
    return bytes(data), origin, flipped, n


@SETTINGS
@given(damaged(), st.lists(st.integers(0, 10_000), max_size=8))
def test_damage_never_yields_a_misaligned_clean_packet_and_loses_no_clean_middle(d, cuts):
    stream, origin, flipped, n = d
    p, got = run(stream, cuts, flush=True)
    accepted = set(np.concatenate([g.offset for g in got]).tolist())
    event(f"lost packets > 0: {p.lost_packets > 0}; corrupt bytes > 0: {p.corrupt_bytes > 0}")

    def clean_run(start: int, length: int) -> bool:
        """bytes [start, start+length) are undamaged and contiguous in the original stream"""
        win = origin[start : start + length]
        if len(win) < length or any(o is None for o in win) or any(flipped[start : start + length]):
            return False
        glob = [j * 33 + b for j, b in win]
        return glob == list(range(glob[0], glob[0] + length))

    for off in accepted:
        if clean_run(off, 33):
            assert origin[off][1] == 0, f"misaligned clean window at {off} accepted"
    starts = {o[0]: i for i, o in enumerate(origin) if o is not None and o[1] == 0}
    for j in range(1, n - 1):
        i = starts.get(j - 1)
        if i is not None and clean_run(i, 99) and not flipped[i]:
            assert i + 33 in accepted, f"clean packet {j} between clean neighbours was dropped"

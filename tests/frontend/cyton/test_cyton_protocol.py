"""Cyton packet bytes: encoding against hand-built packets, decoding, digital-mode aux bytes,
and the parser's resync, split, lost-packet and bad-footer handling on concrete streams."""

from __future__ import annotations

import numpy as np

from appliance.frontend.cyton import protocol as proto


def _hand_packet(seq: int, values: list[int], aux: bytes = bytes(6), footer: int = 0xC0) -> bytes:
    body = b"".join((v & 0xFFFFFF).to_bytes(3, "big") for v in values)
    return bytes([0xA0, seq]) + body + aux + bytes([footer])


VALUES = [0, 1, -1, 0x7FFFFF, -0x800000, 123456, -654321, 0x10203]


def test_encode_matches_hand_built_bytes():
    aux = bytes([1, 2, 3, 4, 5, 6])
    got = proto.encode([7], [VALUES], np.frombuffer(aux, np.uint8)[None], 0xC1)
    assert got == _hand_packet(7, VALUES, aux, 0xC1)
    assert len(got) == proto.PACKET_BYTES


def test_decode_sign_extension_and_scale():
    p = proto.PacketParser()
    pk = p.feed(_hand_packet(255, VALUES) + _hand_packet(0, VALUES[::-1]) + b"\xa0")
    assert list(pk.sample_number) == [255, 0]
    assert pk.counts.dtype == np.int32
    assert pk.counts[0].tolist() == VALUES and pk.counts[1].tolist() == VALUES[::-1]
    assert p.lost_packets == 0  # 255 -> 0 wraps, no gap
    assert abs(proto.uv_per_count(24) - 0.0223517) < 1e-7
    assert proto.uv_per_count(1) == 4.5 / ((1 << 23) - 1) * 1e6


def test_digital_mode_aux_layout_and_trigger_bits():
    # D11, D12, D13, D17, D18 high one at a time -> trigger bits 0..4
    trig = np.array([1, 2, 4, 8, 16, 31, 0], np.uint16)
    aux = proto.digital_aux(trig)
    # aux0 = D11<<8 | D12, aux1 = D13<<8 | D17, aux2 = D18 (big-endian 16-bit words)
    words = aux.reshape(-1, 3, 2).astype(np.uint16)
    words = (words[:, :, 0] << 8) | words[:, :, 1]
    assert words[:, 0].tolist() == [0x100, 0x001, 0, 0, 0, 0x101, 0]
    assert words[:, 1].tolist() == [0, 0, 0x100, 0x001, 0, 0x101, 0]
    assert words[:, 2].tolist() == [0, 0, 0, 0, 1, 1, 0]
    assert proto.digital_trigger(aux).tolist() == trig.tolist()


def _stream(n: int, start: int = 0, seed: int = 0) -> tuple[bytes, np.ndarray]:
    counts = np.random.default_rng(seed).integers(-(1 << 23), 1 << 23, (n, 8))
    return proto.encode(np.arange(start, start + n), counts), counts


def test_split_packets_one_byte_at_a_time():
    data, counts = _stream(20)
    p = proto.PacketParser()
    got = [p.feed(data[i : i + 1]) for i in range(len(data))] + [p.flush()]
    assert np.array_equal(np.concatenate([g.counts for g in got]), counts)
    assert p.corrupt_bytes == 0 and p.lost_packets == 0


def test_last_packet_waits_for_its_successor_or_flush():
    data, _ = _stream(3)
    p = proto.PacketParser()
    assert len(p.feed(data)) == 2 and p.buffered == 33
    assert len(p.flush()) == 1 and p.buffered == 0


def test_garbage_between_packets_resyncs_and_counts():
    data, counts = _stream(40)
    garbage = b"\x01\xc0\xa0\xa0garbage\xc3" * 5
    stream = data[: 33 * 10] + garbage + data[33 * 10 :]
    p = proto.PacketParser()
    pk = p.feed(stream)
    pk2 = p.flush()
    seq = np.concatenate([pk.sample_number, pk2.sample_number])
    # packet 9 is followed by garbage instead of a header: dropped and counted as lost
    assert seq.tolist() == [*range(9), *range(10, 40)]
    assert p.lost_packets == 1
    assert p.corrupt_bytes == 33 + len(garbage)
    assert p.resyncs == 1


def test_a_header_inside_garbage_is_not_taken_for_a_packet():
    data, _ = _stream(10, start=50)
    # a well-framed fake packet in the garbage, followed by a real packet whose sample number
    # does not follow the fake's: rejected when resyncing (and when garbage ends the sync)
    fake = _hand_packet(7, [0x7FFFFF] * 8)
    p = proto.PacketParser()
    pk = p.feed(b"\x00\x13" + fake + data)
    assert 7 not in pk.sample_number.tolist()
    assert pk.sample_number.tolist() == list(range(50, 59))
    assert p.corrupt_bytes == 2 + 33


def test_lost_packets_counted_from_sample_number_gaps():
    data, _ = _stream(300)
    keep = [i for i in range(300) if i not in (5, 6, 7, 100)]
    stream = b"".join(data[33 * i : 33 * i + 33] for i in keep)
    p = proto.PacketParser()
    p.feed(stream)
    p.flush()
    assert p.lost_packets == 4 and p.corrupt_bytes == 0 and p.packets == len(keep)


def test_footer_outside_c0_c6_is_rejected_and_counted():
    data, _ = _stream(10)
    bad = bytearray(data)
    bad[33 * 4 + 32] = 0xC7
    p = proto.PacketParser()
    pk = p.feed(bytes(bad))
    assert 4 not in pk.sample_number.tolist()
    assert p.bad_footer == 1
    # packet 3 is still followed by a header (4's); 4 is dropped; the stream resyncs at 5
    assert pk.sample_number.tolist() == [0, 1, 2, 3, 5, 6, 7, 8]
    assert p.corrupt_bytes == 33
    for footer in range(0xC0, 0xC7):  # every footer type in range is a packet
        ok = proto.PacketParser()
        raw = proto.encode([0, 1], np.zeros((2, 8)), footer=footer) + b"\xa0"
        assert len(ok.feed(raw)) == 2, hex(footer)


def test_reset_forgets_partial_bytes():
    data, _ = _stream(5)
    p = proto.PacketParser()
    assert len(p.feed(data[:50])) == 0  # before sync: needs a packet and its successor
    p.reset()
    pk = p.feed(data[66:])
    assert len(pk) + len(p.flush()) == 3 and p.corrupt_bytes == 50

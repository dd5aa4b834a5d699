"""Cyton parsing speed: `python -m appliance.frontend.cyton.bench [--quick]`.

parse_realtime_factor     seconds of 250 Hz Cyton stream parsed per second of one core, fed in
                          16 ms reads (4 packets) as the driver reads, with 1 packet in 1000
                          followed by garbage
parse_vs_naive_ratio      our vectorised parser vs a per-packet Python loop (scan for 0xA0, take
                          32 bytes, check the footer, int.from_bytes per channel -- BrainFlow's
                          approach, without our confirmation rule) measured in the same run.
                          Below 1 at 4-packet reads: numpy's per-call overhead dominates there
parse_1s_reads_*          the same with 1 s (250-packet) reads, where vectorising pays
pty_realtime_factor       end to end over a real pty: emulator (same process, as fast as the
                          reader reads) -> pyserial -> CytonFrontEnd blocks, per second of wall time
"""

from __future__ import annotations

import sys
import time

import numpy as np

from appliance.bench.timing import best_of
from appliance.frontend.cyton import protocol as proto


def _stream(seconds: float, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    n = int(seconds * proto.SAMPLE_RATE_HZ)
    raw = proto.encode(np.arange(n), rng.integers(-(1 << 23), 1 << 23, (n, 8)))
    parts, step = [], 1000 * proto.PACKET_BYTES
    for i in range(0, len(raw), step):
        parts += [raw[i : i + step], b"\x00garbage\x00"]
    return b"".join(parts)


def naive_parse(raw: bytes) -> list[list[int]]:
    """The per-packet loop one writes first; the peer we measure against."""
    out, i, n = [], 0, len(raw)
    while i + 33 <= n:
        if raw[i] != 0xA0:
            i += 1
            continue
        p = raw[i : i + 33]
        if 0xC0 <= p[32] <= 0xC6:
            out.append(
                [int.from_bytes(p[2 + 3 * c : 5 + 3 * c], "big", signed=True) for c in range(8)]
            )
            i += 33
        else:
            i += 1
    return out


def _parse_reads(reads: list[bytes]) -> int:
    p = proto.PacketParser()
    return sum(len(p.feed(r)) for r in reads)


def _pty_end_to_end(seconds: float) -> float:
    from appliance.frontend.cyton.emulator import CytonEmulator
    from appliance.frontend.cyton.frontend import CytonFrontEnd
    from appliance.frontend.cyton.sources import CountsSource

    n = int(seconds * proto.SAMPLE_RATE_HZ)
    counts = np.random.default_rng(2).integers(-(1 << 23), 1 << 23, (n, 8))
    with CytonEmulator(CountsSource(counts), realtime=False) as emu:
        fe = CytonFrontEnd(emu.link, [f"ch{i}" for i in range(8)], reply_timeout_s=2.0)
        fe.start()
        t0, got = time.perf_counter(), 0
        while got < n:
            b = fe.read_block(1.0)
            if b is None:
                break
            got += b.n_samples
        dt = time.perf_counter() - t0
        fe.close()
    return (got / proto.SAMPLE_RATE_HZ) / dt


def run(quick: bool = False) -> dict[str, float | str]:
    seconds = 60.0 if quick else 600.0
    raw = _stream(seconds)
    read = 4 * proto.PACKET_BYTES
    reads = [raw[i : i + read] for i in range(0, len(raw), read)]
    t_ours = best_of(lambda: _parse_reads(reads), 3)
    big = 250 * proto.PACKET_BYTES  # 1 s per read: catching up after the reader was held up
    big_reads = [raw[i : i + big] for i in range(0, len(raw), big)]
    t_big = best_of(lambda: _parse_reads(big_reads), 3)
    naive_raw = raw[: len(raw) // 10]
    t_naive = best_of(lambda: naive_parse(naive_raw), 2)
    ours_pps = seconds * proto.SAMPLE_RATE_HZ / t_ours
    naive_pps = (len(naive_raw) / proto.PACKET_BYTES) / t_naive
    return {
        "cyton_parse_realtime_factor": round(seconds / t_ours, 1),
        "cyton_parse_packets_per_s": round(ours_pps),
        "cyton_naive_packets_per_s": round(naive_pps),
        "cyton_parse_vs_naive_ratio": round(ours_pps / naive_pps, 2),
        "cyton_parse_1s_reads_realtime_factor": round(seconds / t_big, 1),
        "cyton_parse_1s_reads_vs_naive_ratio": round(seconds * 250 / t_big / naive_pps, 2),
        "cyton_pty_realtime_factor": round(_pty_end_to_end(8.0 if quick else 40.0), 1),
        "cyton_workload": f"250 Hz x {seconds:g} s in 16 ms reads, garbage every 1000 packets",
    }


if __name__ == "__main__":
    for k, v in run(quick="--quick" in sys.argv).items():
        print(f"  {k:<32} {v}")

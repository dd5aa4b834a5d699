"""`ionm bench decode`: ADS1299 frame decoding speed, 8 channels at 16 kSPS.

decode_realtime_factor   seconds of 16 kSPS data decoded per second of one core (goal >= 300)
decode_vs_naive_ratio    our vectorised decode vs a straightforward per-frame Python decode
                         (int.from_bytes per channel) measured in the same run
emulated_frontend_realtime_factor_4k
                         the whole Ads1299FrontEnd read path (DRDY wait, one SPI transfer per
                         sample, decode, blocks) on the register-level emulator, 8 ch at 4 kSPS:
                         how much faster than real time the emulated demo/tests can run
"""

from __future__ import annotations

import time

import numpy as np

from appliance.bench.timing import best_of
from appliance.frontend.ads1299.decode import decode_frames, encode_frames

RATE_HZ = 16_000
N_CH = 8


def _frames(seconds: float, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE_HZ)
    counts = rng.integers(-2**23, 2**23, (N_CH, n))
    raw = encode_frames(counts, statp=rng.integers(0, 256, n), gpio=rng.integers(0, 16, n))
    raw[rng.integers(0, n, n // 1000), 0] = 0x5A  # a few corrupt frames, as on a noisy bus
    return raw.tobytes()


def naive_decode(raw: bytes, gain: float = 24.0) -> list[list[float] | None]:
    """The per-frame loop one writes first; the peer we measure against."""
    lsb = 4.5e6 / gain / 2**23
    out: list[list[float] | None] = []
    for i in range(0, len(raw), 27):
        f = raw[i:i + 27]
        if f[0] >> 4 != 0xC:
            out.append(None)
            continue
        out.append([int.from_bytes(f[3 + 3 * c:6 + 3 * c], "big", signed=True) * lsb
                    for c in range(N_CH)])
    return out


def _emulated_frontend_factor(seconds: float) -> float:
    from appliance.frontend.ads1299.emulator import EmulatedBoard
    from appliance.frontend.ads1299.frontend import Ads1299FrontEnd

    board = EmulatedBoard(None, 4000)
    fe = Ads1299FrontEnd(list(board.chips), board.drdy(0), tuple(f"c{i}" for i in range(8)),
                         4000, sleep=board.sleep, board=board)
    fe.start()
    n_blocks = int(seconds * 4000 / fe.block_samples)
    t0 = time.perf_counter()
    for _ in range(n_blocks):
        fe.read_block()
    return n_blocks * fe.block_samples / 4000 / (time.perf_counter() - t0)


def run(quick: bool = False) -> dict[str, float | str]:
    seconds = 2.0 if quick else 10.0
    raw = _frames(seconds)
    # block-sized calls, as the front end decodes (16 ms blocks = 256 frames)
    block = 256 * 27
    blocks = [raw[i:i + block] for i in range(0, len(raw), block)]
    t_blocks = best_of(lambda: [decode_frames(b, N_CH, 24.0) for b in blocks], 3 if quick else 5)
    t_whole = best_of(lambda: decode_frames(raw, N_CH, 24.0), 3 if quick else 5)
    naive_raw = raw[: len(raw) // 4 if quick else len(raw) // 2]
    t_naive = best_of(lambda: naive_decode(naive_raw), 1 if quick else 2)
    naive_rate = (len(naive_raw) / 27) / t_naive
    n_frames = len(raw) / 27
    return {
        "decode_realtime_factor": round(seconds / t_blocks, 1),
        "decode_realtime_factor_one_call": round(seconds / t_whole, 1),
        "decode_frames_per_s": round(n_frames / t_blocks),
        "decode_naive_frames_per_s": round(naive_rate),
        "decode_vs_naive_ratio": round((n_frames / t_blocks) / naive_rate, 1),
        "decode_workload": f"{N_CH} ch x {RATE_HZ} SPS x {seconds:g} s, 16 ms blocks",
        "emulated_frontend_realtime_factor_4k": round(_emulated_frontend_factor(
            0.5 if quick else 2.0), 1),
    }

"""Property test of the front end under random bus trouble: whatever happens, every sample is
accounted for exactly once (delivered, missed or corrupt), blocks never overlap or run
backwards, and every delivered value is the one the source produced at that moment."""

from __future__ import annotations

import os

import numpy as np
from ads1299_helpers import Ramp
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.frontend.ads1299.emulator import EmulatedBoard
from appliance.frontend.ads1299.frontend import Ads1299FrontEnd

events = st.lists(st.one_of(
    st.tuples(st.just("read"), st.integers(1, 4)),
    st.tuples(st.just("miss"), st.integers(1, 30)),
    st.tuples(st.just("late_s"), st.floats(0.0, 0.05)),
    st.tuples(st.just("corrupt_rate"), st.sampled_from([0.0, 0.05, 0.5, 1.0])),
    st.tuples(st.just("stall_s"), st.floats(0.05, 1.2)),
), min_size=1, max_size=12)


@settings(max_examples=int(os.environ.get("ADS1299_PROP_EXAMPLES", 40)), deadline=None)
@given(events)
def test_every_sample_accounted_for_once(script):
    ramp = Ramp(8)
    board = EmulatedBoard(ramp, 1000, noise_uv_rms=0.0)
    fe = Ads1299FrontEnd(list(board.chips), board.drdy(0), tuple("abcdefgh"), 1000,
                         block_ms=8, sleep=board.sleep, board=board)
    fe.start()
    chip, drdy = board.chips[0], board.drdy(0)
    blocks = []
    phase = None
    for kind, arg in script + [("corrupt_rate", 0.0), ("read", 3)]:
        if kind == "read":
            for _ in range(arg):
                b = fe.read_block(timeout_s=0.1)
                if b is not None:
                    blocks.append(b)
        elif kind == "miss":
            drdy.miss_next(arg)
        elif kind == "late_s":
            board.sleep(arg)
        elif kind == "corrupt_rate":
            chip.inject(corrupt_rate=arg)
        elif kind == "stall_s":
            chip.inject(drdy_stalled=True)
            for _ in range(int(arg / 0.1)):
                b = fe.read_block(timeout_s=0.1)  # only blocks decoded before the stall
                if b is not None:
                    blocks.append(b)
            chip.inject(drdy_stalled=False)
    assert blocks, "the final clean reads always deliver"
    starts = [b.first_sample for b in blocks]
    ends = [b.end_sample for b in blocks]
    assert all(e > s for s, e in zip(starts, ends, strict=True))
    assert all(s >= e for e, s in zip(ends, starts[1:], strict=False))  # no overlap, in order
    h = fe.health
    every = blocks + list(fe._ready)  # blocks decoded but not yet asked for count too
    assert h.samples == sum(b.n_samples for b in every)
    assert every[-1].end_sample == h.samples + h.missed_samples + h.corrupt_frames
    for b in blocks:  # the values are the source's, in order (the ramp repeats every 100)
        if phase is None:
            phase = Ramp.phase(b.data_uv) - b.first_sample
        if h.reconnects == 0 and not any(k == "stall_s" for k, _ in script):
            src = phase + np.arange(b.first_sample, b.end_sample)
            assert np.allclose(b.data_uv, ramp.expected(src), atol=0.03)
        else:  # after a re-init the chip's timing restarts: check contiguity inside the block
            src = Ramp.phase(b.data_uv) + np.arange(b.n_samples)
            assert np.allclose(b.data_uv, ramp.expected(src), atol=0.03)

import numpy as np
import pytest

from appliance.dsp.events import EdgeDetector


def test_edges_are_absolute_and_held_level_is_not_an_edge():
    det = EdgeDetector(mask=0b10)
    a = np.array([0, 2, 2, 0, 0, 2, 2, 2], dtype=np.uint16)  # edges at 1 and 5, high at end
    b = np.array([2, 2, 0, 3, 1, 0], dtype=np.uint16)  # continues high; edge at 3 (bit 1)
    assert det.push(a, 1000).tolist() == [1001, 1005]
    assert det.push(b, 1008).tolist() == [1011]
    # other bits (bit 0 in the value 1) never make an edge
    assert det.push(np.array([1, 0, 1], dtype=np.uint16), 1014).tolist() == []


def test_edges_over_random_blocks_equal_offline(rng, splits):
    trig = (rng.random(50_000) < 0.01).astype(np.uint16) * 4
    trig = np.maximum(trig, np.roll(trig, 1))  # two-sample pulses, some straddle blocks
    high = trig != 0
    offline = np.flatnonzero(high & ~np.r_[False, high[:-1]])
    det = EdgeDetector(4)
    got = [det.push(trig[a:b], a) for a, b in splits(rng, len(trig), 700)]
    out = np.concatenate(got)
    assert out.dtype == np.int64
    assert np.array_equal(out, offline)


def test_empty_block_keeps_dtype_and_state():
    det = EdgeDetector(1)
    det.push(np.array([1], dtype=np.uint16), 0)
    empty = det.push(np.array([], dtype=np.uint16), 1)
    assert empty.dtype == np.int64 and empty.size == 0
    assert det.push(np.array([1, 0, 1], dtype=np.uint16), 1).tolist() == [3]


def test_bad_mask_is_named():
    with pytest.raises(ValueError, match="mask"):
        EdgeDetector(0)

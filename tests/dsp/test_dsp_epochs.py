import numpy as np
import pytest

from appliance.dsp.epochs import Epocher, baseline_correct, times_ms


def _offline(x, events, pre, post, pad):
    return np.stack([x[:, e - pre - pad:e + post + pad] for e in events])


@pytest.mark.parametrize("pad,max_block", [(0, 500), (37, 500), (37, 40), (5, 3000)])
def test_sweeps_over_random_blocks_equal_offline_cut(rng, splits, pad, max_block):
    pre, post = 40, 200
    x = rng.normal(size=(3, 30_000))
    events = np.sort(rng.choice(np.arange(5, 29_990), size=120, replace=False))
    ep = Epocher(pre, post, 3, pad_samples=pad)
    sweeps, got = [], []
    for a, b in splits(rng, x.shape[1], max_block):
        ev = events[(events >= a) & (events < b)]
        s, e = ep.push(x[:, a:b], a, ev)
        assert s.shape == (len(e), 3, pre + post + 2 * pad) and e.dtype == np.int64
        sweeps.append(s)
        got.append(e)
    got = np.concatenate(got)
    # events too near the start or the end cannot give a whole sweep
    ok = (events - pre - pad >= 0) & (events + post + pad <= x.shape[1])
    assert np.array_equal(got, events[ok])
    assert np.array_equal(np.concatenate(sweeps), _offline(x, events[ok], pre, post, pad))
    assert ep.dropped == int(((events - pre - pad) < 0).sum())
    assert len(ep._pending) == int((ok == 0).sum()) - ep.dropped


def test_event_whose_pre_interval_is_in_the_previous_block():
    ep = Epocher(3, 2, 1)
    x = np.arange(20.0)[None]
    s1, e1 = ep.push(x[:, :10], 0, [])
    s2, e2 = ep.push(x[:, 10:], 10, [11])  # pre samples 8, 9, 10 straddle the boundary
    assert s1.shape == (0, 1, 5) and s1.dtype == np.float64
    assert e2.tolist() == [11] and s2[0, 0].tolist() == [8, 9, 10, 11, 12]


def test_gap_in_stream_drops_sweeps_that_need_lost_samples():
    ep = Epocher(2, 4, 1)
    x = np.arange(100.0)[None]
    s, e = ep.push(x[:, :10], 0, [8])  # sweep 6..11 waits for more samples
    assert len(e) == 0
    s, e = ep.push(x[:, 20:30], 20, [25])  # samples 10..19 lost: 8 cannot be finished
    assert e.tolist() == [25] and ep.dropped == 1


def test_bool_mask_epochs():
    ep = Epocher(1, 2, 2, dtype=bool)
    m = np.zeros((2, 10), dtype=bool)
    m[1, 5] = True
    s, _ = ep.push(m, 0, [5])
    assert s.dtype == bool and s[0].tolist() == [[False] * 3, [False, True, False]]


def test_baseline_and_times():
    t = times_ms(4, 8, 4000.0)
    assert t.shape == (12,) and t[4] == 0.0 and t[0] == pytest.approx(-1.0)
    x = np.arange(24.0).reshape(2, 12)
    y = baseline_correct(x, 0, 4)
    assert np.allclose(y[:, :4].mean(axis=-1), 0.0)
    assert np.allclose(y[:, 4:] - x[:, 4:], -1.5 - x[:, :1])
    with pytest.raises(ValueError, match="n_times=12"):
        baseline_correct(x, 0, 13)

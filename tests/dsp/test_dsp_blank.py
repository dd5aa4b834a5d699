"""Stimulus blanking (appliance/dsp/blank.py): the fixed hold, and its adaptive extension over an
artefact tail that outlasts it, block boundaries included; EMG is not held past half a cycle."""

from __future__ import annotations

import numpy as np

from appliance.dsp.blank import HoldBlanker

FS = 4000


def _tail(n: int, at: int, amp_uv: float = -2500.0) -> np.ndarray:
    """An artefact whose slow component (tau 4 ms) leaves ~190 µV at 8 ms."""
    k = np.arange(n - at) / FS
    x = np.zeros(n)
    x[at:] = amp_uv * (np.exp(-k / 0.0015) - 0.6 * np.exp(-k / 0.004))
    return x


def _run(x: np.ndarray, trig: np.ndarray, block: int, **kw) -> tuple[np.ndarray, HoldBlanker]:
    b = HoldBlanker(32, 1, **kw)  # 8 ms fixed blank
    out = [b.process(x[:, i:i + block], trig[i:i + block]) for i in range(0, x.shape[1], block)]
    return np.concatenate(out, axis=1), b


def test_extension_holds_a_decaying_tail_until_it_is_small():
    n, at = 400, 100
    x = np.stack([_tail(n, at) + 10.0, np.full(n, 10.0)])  # a tail on channel 0 only
    trig = np.zeros(n, np.uint16)
    trig[at] = 1
    fixed, _ = _run(x, trig, n)
    assert abs(fixed[0, at + 32] - 10.0) > 150  # the fixed 8 ms leave ~190 µV
    y, b = _run(x, trig, n, n_extend=60, residual_uv=30.0)
    held = np.flatnonzero(y[0] != x[0])
    assert held[0] == at and 55 <= held[-1] - at <= 75, held[-1] - at  # ~15.6 ms: tail < 30 µV
    assert np.all(np.abs(y[0, at + 80:] - 10.0) < 30.0)
    assert np.array_equal(y[1], x[1])  # nothing to hold on the quiet channel
    # the same in 16-sample blocks (blank and extension cross block edges)
    for block in (16, 37):
        yb, bb = _run(x, trig, block, n_extend=60, residual_uv=30.0)
        np.testing.assert_array_equal(yb, y)
        assert bb.extended_samples == b.extended_samples > 0


def test_extension_lets_emg_through_within_half_a_cycle():
    n, at = 400, 100
    t = np.arange(n) / FS
    x = (300.0 * np.sin(2 * np.pi * 100.0 * t))[None, :]  # a 100 Hz A-train across the pulse
    trig = np.zeros(n, np.uint16)
    trig[at] = 1
    y, _ = _run(x, trig, 64, n_extend=60, residual_uv=30.0)
    held = np.flatnonzero(y[0] != x[0])
    assert held[-1] - at <= 32 + 40  # at most one 10 ms cycle past the fixed blank

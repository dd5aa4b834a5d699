import numpy as np
import pytest

from appliance.dsp.reject import Rejector

FS = 16_000.0
C, T = 3, 800


def _clean(rng, k):
    return rng.normal(0, 2.0, size=(k, C, T))


def test_counts_by_reason_on_constructed_sweeps(rng):
    rej = Rejector(FS, amplitude_uv=100.0, flat_std_uv=0.05, cautery_hz=1500, cautery_factor=5)
    x = _clean(rng, 20)
    x[2, 1, 300:310] += 400.0                       # amplitude on one channel
    x[5, 0] = 0.01 * rng.normal(size=T)             # flat
    x[7, 2, 100:600] += 60 * rng.normal(size=500)   # cautery: broadband burst (also too big,
                                                    # but the first reason in order counts)
    sat = np.zeros(x.shape, dtype=bool)
    sat[11, 2, 50] = True                           # saturated sample
    sat[2, 1, 305] = True                           # also saturated: first reason wins
    keep, reasons = rej.check(x, sat)
    assert keep.dtype == bool and keep.shape == (20,)
    assert reasons == {"saturated": 2, "flat": 1, "cautery": 1, "amplitude": 0}
    assert sorted(np.flatnonzero(~keep).tolist()) == [2, 5, 7, 11]
    assert rej.counts == reasons and rej.checked == 20 and rej.rejected == 4


def test_amplitude_threshold_per_channel_and_absolute_mode(rng):
    x = _clean(rng, 4)
    x[1, 0, 10] += 60.0
    x[2, 2, 10] += 60.0
    per_ch = Rejector(FS, amplitude_uv=np.array([50.0, 50.0, 500.0]))
    keep, reasons = per_ch.check(x)
    assert keep.tolist() == [True, False, True, True] and reasons["amplitude"] == 1
    absolute = Rejector(FS, amplitude_uv=40.0, mode="absolute", rail_uv=None)
    keep, _ = absolute.check(x + 35.0)  # absolute level counts, not peak-to-peak
    assert not keep.any()


def test_cautery_learns_the_running_median_across_batches(rng):
    rej = Rejector(FS, amplitude_uv=1e4)
    for _ in range(3):
        keep, reasons = rej.check(_clean(rng, 5))
        assert keep.all()
    burst = _clean(rng, 1)
    burst[0, 0] += 20 * rng.normal(size=T)  # tenfold broadband power on one channel
    keep, reasons = rej.check(burst)
    assert not keep[0] and reasons["cautery"] == 1
    # slow, large movement artefact is not cautery (low frequency)
    slow = _clean(rng, 1) + 80 * np.sin(np.linspace(0, np.pi, T))
    assert rej.check(slow)[0][0]


@pytest.mark.parametrize("fs_hz,cautery_hz", [(FS, None), (500.0, 1500.0), (FS, 2000.0)])
def test_cautery_by_second_difference_or_high_pass(rng, fs_hz, cautery_hz):
    # at 500 SPS 1.5 kHz is above Nyquist: the second difference stands in
    rej = Rejector(fs_hz, amplitude_uv=1e4, cautery_hz=cautery_hz)
    rej.check(_clean(rng, 10))
    burst = _clean(rng, 1)
    burst[0, 1] += 30 * rng.normal(size=T)
    assert rej.check(burst)[1]["cautery"] == 1


def test_empty_batch_and_bad_mode():
    rej = Rejector(FS)
    keep, reasons = rej.check(np.empty((0, C, T)))
    assert keep.shape == (0,) and keep.dtype == bool and sum(reasons.values()) == 0
    with pytest.raises(ValueError, match="mode"):
        Rejector(FS, mode="rms")


def test_cautery_batch_cannot_raise_its_own_bar_and_a_lasting_rise_is_not_a_lockout(rng):
    rej = Rejector(FS, amplitude_uv=1e4, history=32)
    rej.check(_clean(rng, 16))
    noisy = _clean(rng, 10) + 20 * rng.normal(size=(10, C, T))  # 10 sweeps of cautery at once
    keep, reasons = rej.check(noisy)
    assert reasons["cautery"] == 10
    kept = []
    for _ in range(40):  # the broadband noise stays: after ~history/2 sweeps it is the norm
        kept.append(bool(rej.check(_clean(rng, 1) + 20 * rng.normal(size=(1, C, T)))[0][0]))
    assert not kept[0] and all(kept[-20:])

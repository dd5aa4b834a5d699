import numpy as np
import pytest
from scipy import signal

from appliance.dsp import filters
from appliance.dsp.filters import FilterSpec, StreamingFilter, zero_phase_sweeps

FS = 16_000.0


def test_streaming_filter_over_random_blocks_equals_whole_signal(rng, splits):
    sos = filters.cascade(filters.bandpass_sos(30, 1000, FS),
                          filters.notch_sos(50, FS, harmonics=3))
    x = rng.normal(0, 20, size=(4, 40_000)) + 300.0  # with a DC offset, as electrodes have
    whole = signal.sosfilt(sos, x, axis=-1)
    f = StreamingFilter(sos, 4)
    y = np.concatenate([f.process(x[:, a:b]) for a, b in splits(rng, x.shape[1], 997)], axis=1)
    assert np.max(np.abs(y - whole)) < 1e-10


def test_steady_start_removes_the_step_transient(rng):
    sos = filters.bandpass_sos(30, 1000, FS)
    x = rng.normal(0, 1, size=(2, 4000)) + np.array([[5000.0], [-3000.0]])
    zero = StreamingFilter(sos, 2).process(x)
    steady = StreamingFilter(sos, 2, start="steady").process(x)
    zi = signal.sosfilt_zi(sos)[:, None, :] * x[None, :, 0, None]
    ref = signal.sosfilt(sos, x, axis=-1, zi=zi)[0]
    assert np.max(np.abs(steady - ref)) < 1e-10
    assert np.abs(zero[:, :200]).max() > 100 * np.abs(steady[:, :200]).max()


def test_empty_block_and_wrong_shape():
    f = StreamingFilter(filters.bandpass_sos(30, 1000, FS), 3)
    out = f.process(np.empty((3, 0)))
    assert out.shape == (3, 0) and out.dtype == np.float64
    with pytest.raises(ValueError, match="n_channels=3"):
        f.process(np.zeros((2, 10)))


def test_zero_phase_sweeps_equal_sosfiltfilt_of_padded_segment(rng):
    sos = filters.bandpass_sos(30, 1000, FS)
    pad = 400
    sweeps = rng.normal(size=(7, 3, 800 + 2 * pad))
    got = zero_phase_sweeps(sweeps, sos, pad)
    ref = signal.sosfiltfilt(sos, sweeps, axis=-1)[..., pad:-pad]
    assert got.shape == (7, 3, 800)
    assert np.max(np.abs(got - ref)) < 1e-12
    assert zero_phase_sweeps(np.empty((0, 3, 1600)), sos, pad).shape == (0, 3, 800)
    # cascaded band-pass + notches, and sweeps shorter than scipy's own edge padding
    sos = filters.cascade(sos, filters.notch_sos(50, FS, harmonics=3))
    np.testing.assert_allclose(zero_phase_sweeps(sweeps, sos, pad),
                               signal.sosfiltfilt(sos, sweeps, axis=-1)[..., pad:-pad], atol=1e-12)
    short = sweeps[..., :20]
    np.testing.assert_allclose(zero_phase_sweeps(short, sos, 0),
                               signal.sosfiltfilt(sos, short, axis=-1, padlen=19), atol=1e-12)


def test_two_periods_of_padding_make_sweeps_equal_whole_signal_zero_phase(rng):
    # With 2 periods of the 30 Hz edge as real-data padding, the sweep-wise result equals
    # forward-backward filtering of the whole recording: the cut does not show.
    sos = filters.bandpass_sos(30, 1000, FS)
    x = np.cumsum(rng.normal(size=60_000)) * 0.05 + rng.normal(0, 5, size=60_000)
    whole = signal.sosfiltfilt(sos, x)
    pad, n = int(2 / 30 * FS), 960
    starts = rng.integers(pad, len(x) - n - pad - 20_000, size=50) + 10_000
    sweeps = np.stack([x[s - pad:s + n + pad] for s in starts])
    got = zero_phase_sweeps(sweeps, sos, pad)
    ref = np.stack([whole[s:s + n] for s in starts])
    assert np.sqrt(np.mean((got - ref) ** 2)) < 1e-3 * ref.std()
    short = zero_phase_sweeps(sweeps[:, pad - 160:-(pad - 160)], sos, 160)  # 10 ms pad
    assert np.sqrt(np.mean((short - ref) ** 2)) > 0.1 * ref.std()


def test_zero_phase_from_forward_stream_equals_whole_signal_forward_backward(rng, splits):
    sos = filters.cascade(filters.bandpass_sos(30, 1000, FS))
    x = np.cumsum(rng.normal(size=(2, 60_000)), axis=-1) * 0.05 + rng.normal(0, 5, (2, 60_000))
    fwd = signal.sosfilt(sos, x, axis=-1)
    whole = signal.sosfilt(sos, fwd[:, ::-1], axis=-1)[:, ::-1]  # far from the ends: filtfilt
    stream = StreamingFilter(sos, 2)
    streamed = np.concatenate([stream.process(x[:, a:b]) for a, b in splits(rng, 60_000, 900)],
                              axis=1)
    pad, n = int(2 / 30 * FS), 960
    starts = rng.integers(10_000, 40_000, size=30)
    sweeps = np.stack([streamed[:, s - pad:s + n + pad] for s in starts])
    got = filters.zero_phase_from_forward(sweeps, sos, pad)
    ref = np.stack([whole[:, s:s + n] for s in starts])
    assert got.shape == (30, 2, n)
    assert np.sqrt(np.mean((got - ref) ** 2)) < 1e-3 * ref.std()
    # and it agrees with cutting raw sweeps and filtering them forward-backward
    raw = np.stack([x[:, s - pad:s + n + pad] for s in starts])
    both = zero_phase_sweeps(raw, sos, pad)
    assert np.sqrt(np.mean((got - both) ** 2)) < 2e-3 * ref.std()


def test_zero_phase_keeps_latency_causal_delays_it_by_the_group_delay(wave):
    # A 20 ms component whose energy sits near 200-300 Hz (width 0.5 ms), as N20 does.
    sos = filters.bandpass_sos(30, 1000, FS)
    t_ms = np.arange(-50, 100, 1e3 / FS)
    x = wave(t_ms, 20.0, -2.0, 0.5)[None, None]
    zero = zero_phase_sweeps(x, sos, 0)[0, 0]
    causal = signal.sosfilt(sos, x, axis=-1)[0, 0]
    from_fwd = filters.zero_phase_from_forward(causal[None, None], sos, 0)[0, 0]
    assert abs(t_ms[np.argmin(from_fwd)] - 20.0) <= 1e3 / FS
    lat_zero = t_ms[np.argmin(zero)]
    lat_causal = t_ms[np.argmin(causal)]
    assert abs(lat_zero - 20.0) <= 1e3 / FS
    gd = filters.group_delay_ms(sos, FS, 300.0)
    assert 0.2 < gd < 0.5
    # The peak moves by about the group delay of the band where its energy is (measured
    # 0.19 ms; docs/dsp.md): tenths of a millisecond, the size of a BAEP criterion.
    assert 0.1 < lat_causal - 20.0 < gd + 0.05


def test_group_delay_keeps_shape():
    sos = filters.bandpass_sos(100, 3000, FS)
    assert np.shape(filters.group_delay_ms(sos, FS, 500.0)) == ()
    gd = filters.group_delay_ms(sos, FS, np.array([300.0, 1000.0]))
    assert gd.shape == (2,) and gd[0] > gd[1] > 0
    notch = filters.group_delay_ms(filters.notch_sos(50, FS), FS, np.array([50.0, 300.0]))
    assert np.isnan(notch[0]) and 0 < notch[1] < 0.1


def test_notch_harmonics_stop_below_nyquist_and_attenuate():
    sos = filters.notch_sos(50, 500.0, harmonics=10)
    assert sos.shape == (4, 6)  # 50, 100, 150, 200 Hz; 250 Hz is Nyquist
    _, h = signal.sosfreqz(sos, worN=[50.0, 100.0, 75.0], fs=500.0)
    assert abs(h[0]) < 1e-3 and abs(h[1]) < 1e-3 and abs(h[2]) > 0.9


def test_bad_band_names_the_values():
    with pytest.raises(ValueError, match="hi_hz=9000"):
        filters.bandpass_sos(30, 9000, FS)


def test_filter_spec_json_and_design():
    spec = FilterSpec(band_hz=(30, 1000), phase="zero", notch_hz=50)
    assert spec.to_json() == {"phase": "zero", "band_hz": [30.0, 1000.0], "notch_hz": 50.0}
    assert spec.sos(FS).shape == (2 + 3, 6)
    assert FilterSpec((30, 1000), "causal").to_json()["notch_hz"] is None
    with pytest.raises(ValueError, match="phase"):
        FilterSpec((30, 1000), "acausal")

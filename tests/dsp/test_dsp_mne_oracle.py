"""Oracle: our streaming pipeline's ensemble average equals MNE-Python's Epochs.average()."""

import mne
import numpy as np
import pytest

from appliance.dsp import filters
from appliance.dsp.averagers import CumulativeAverager
from appliance.dsp.epochs import Epocher, baseline_correct
from appliance.dsp.events import EdgeDetector

mne.set_log_level("ERROR")
FS = 4000.0


def _recording(rng, wave, n_ch=3, seconds=30.0):
    n = int(seconds * FS)
    x = rng.normal(0, 5.0, size=(n_ch, n)) + 40 * np.sin(2 * np.pi * 50 * np.arange(n) / FS)
    trig = np.zeros(n, dtype=np.uint16)
    stims = np.arange(int(0.005 * FS), n, int(FS / 4.7))  # first one too early for a baseline
    trig[stims] = 1
    trig[stims + 1] = 1  # two-sample pulse
    t_ms = np.arange(int(0.1 * FS)) * 1e3 / FS
    for s in stims:
        m = min(len(t_ms), n - s)
        x[0, s:s + m] += wave(t_ms, 20.0, -2.0, 1.5)[:m]
    return x, trig


@pytest.mark.parametrize("phase", ["unfiltered", "causal"])
def test_average_equals_mne_epochs_average(rng, splits, wave, phase):
    x, trig = _recording(rng, wave)
    n_ch = x.shape[0]
    pre, post = 40, 200  # -10 .. +50 ms at 4 kHz

    # Ours: stream of random blocks -> filter -> edges -> epochs -> baseline -> average.
    sos = filters.bandpass_sos(30, 1000, FS)
    filt = filters.StreamingFilter(sos, n_ch)
    det, ep = EdgeDetector(1), Epocher(pre, post, n_ch)
    avg = CumulativeAverager(n_ch, pre + post)
    for a, b in splits(rng, x.shape[1], 1500):
        block = filt.process(x[:, a:b]) if phase == "causal" else x[:, a:b]
        sweeps, _ = ep.push(block, a, det.push(trig[a:b], a))
        avg.add(baseline_correct(sweeps, 0, pre))

    # MNE: RawArray of the whole signal (in volts), filtered by MNE's own IIR design.
    info = mne.create_info([f"EEG{i}" for i in range(n_ch)], FS, "eeg")
    raw = mne.io.RawArray(x * 1e-6, info)
    if phase == "causal":
        raw.filter(30, 1000, method="iir", phase="forward",
                   iir_params=dict(order=2, ftype="butter", output="sos"))
    onsets = np.flatnonzero(np.diff(trig.astype(int), prepend=0) > 0)
    events = np.c_[onsets, np.zeros_like(onsets), np.ones_like(onsets)]
    epochs = mne.Epochs(raw, events, tmin=-pre / FS, tmax=(post - 1) / FS,
                        baseline=(None, -1 / FS), preload=True, reject=None, flat=None)
    evoked = epochs.average()

    assert ep.dropped == 1 and len(epochs) == avg.n_sweeps > 100
    assert evoked.data.shape == avg.average.shape
    np.testing.assert_allclose(avg.average, evoked.data * 1e6, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("how", ["padded_sweeps", "from_forward"])
def test_zero_phase_average_agrees_with_mne_zero_phase_iir(rng, splits, wave, how):
    # MNE filters the whole recording forward-backward; we filter each padded sweep (or run
    # the backward pass on sweeps of a streamed forward pass). Away from the recording's ends
    # the two are the same filter, so the averages agree to the padding's transient.
    x, trig = _recording(rng, wave)
    n_ch, pre, post, pad = x.shape[0], 40, 200, int(2 / 30 * FS)
    sos = filters.bandpass_sos(30, 1000, FS)
    stream = filters.StreamingFilter(sos, n_ch)
    det, ep = EdgeDetector(1), Epocher(pre, post, n_ch, pad)
    avg = CumulativeAverager(n_ch, pre + post)
    events = []
    for a, b in splits(rng, x.shape[1], 1500):
        block = stream.process(x[:, a:b]) if how == "from_forward" else x[:, a:b]
        sweeps, ev = ep.push(block, a, det.push(trig[a:b], a))
        if how == "from_forward":
            y = filters.zero_phase_from_forward(sweeps, sos, pad)
        else:
            y = filters.zero_phase_sweeps(sweeps, sos, pad)
        avg.add(baseline_correct(y, 0, pre))
        events.append(ev)
    events = np.concatenate(events)

    raw = mne.io.RawArray(x * 1e-6, mne.create_info(n_ch, FS, "eeg"))
    raw.filter(30, 1000, method="iir", phase="zero",
               iir_params=dict(order=2, ftype="butter", output="sos"))
    mne_events = np.c_[events, np.zeros_like(events), np.ones_like(events)]
    evoked = mne.Epochs(raw, mne_events, tmin=-pre / FS, tmax=(post - 1) / FS,
                        baseline=(None, -1 / FS), preload=True).average()
    assert len(events) > 100 and evoked.nave == avg.n_sweeps
    ref = evoked.data * 1e6
    err = np.sqrt(np.mean((avg.average - ref) ** 2))
    assert err < 1e-4 * np.abs(ref[0]).max()  # measured 2e-5 (padded), 4e-6 (from forward)

"""EMG audio through the WAV backend: the A-train is audible on its channel, cautery is silent,
volume and channel selection take effect, bad commands are refused with the value named."""

from __future__ import annotations

import wave

import numpy as np
import pytest
from continuous_helpers import make_cfg

from appliance.analysis.monitor import Monitor
from appliance.errors import CommandError
from appliance.frontend.block import SampleBlock
from appliance.frontend.simulated.patient import Patient
from appliance.frontend.simulated.scenario import from_dict
from appliance.outputs.audio import EmgAudio, WavBackend

CH = ["Orb-oc L", "Orb-or L"]
FS = 4000
EVENTS = [{"type": "a_train", "at_s": 1.0, "channel": CH[0], "duration_s": 0.5,
           "amplitude_uv": 150.0},
          {"type": "cautery", "at_s": 2.0, "duration_s": 1.0}]


def _play(tmp_path, name, channels=(), volume=0.5):
    cfg = make_cfg(CH, FS, {"emg_free": {"channels": CH}})
    mon = Monitor(cfg)
    p = Patient(CH, FS, [], from_dict({"name": "a", "event": EVENTS}), seed=2)
    audio = EmgAudio(WavBackend(tmp_path / name, FS), CH, channels, volume)
    n = 64
    for k in range(int(3.5 * FS) // n):
        uv, trig = p.generate(n)
        mon.push(SampleBlock(uv, trig, np.zeros(uv.shape, bool), np.zeros(2, bool), k * n,
                             float(FS), 0.0))
        chunk = mon.continuous.emg.take_audio()
        if chunk is not None:
            audio.push(*chunk)
    audio.close()
    with wave.open(str(tmp_path / name)) as w:
        assert w.getframerate() == FS and w.getnchannels() == 1
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)
    return pcm, audio


def _rms(pcm, a_s, b_s):
    seg = pcm[int(a_s * FS): int(b_s * FS)]
    return float(np.sqrt(np.mean(seg * seg)))


def test_a_train_audible_and_cautery_silent(tmp_path):
    pcm, audio = _play(tmp_path, "all.wav")
    assert audio.chunks_dropped == 0 and pcm.size == audio.samples_written >= 3.3 * FS
    quiet, train = _rms(pcm, 0.3, 0.9), _rms(pcm, 1.1, 1.4)
    # 150 µV A-train on one of two mixed channels at 500 µV full scale, volume 0.5: ~1700 counts
    assert train > 1000 and train > 5 * quiet
    assert quiet > 50  # the background EMG is heard too: the team listens to the muscle tone
    assert np.all(pcm[int(2.06 * FS): int(2.95 * FS)] == 0)  # cautery: muted, not roaring
    assert audio.samples_muted >= 0.9 * FS


def test_volume_and_channel_selection(tmp_path):
    loud, _ = _play(tmp_path, "loud.wav", volume=1.0)
    other, _ = _play(tmp_path, "other.wav", channels=[CH[1]], volume=1.0)
    silent, _ = _play(tmp_path, "silent.wav", volume=0.0)
    assert _rms(other, 1.1, 1.4) < 0.2 * _rms(loud, 1.1, 1.4)  # the A-train is on CH[0]
    assert not silent.any()


def test_bad_audio_commands_name_the_value(tmp_path):
    audio = EmgAudio(WavBackend(tmp_path / "x.wav", FS), CH)
    with pytest.raises(CommandError, match="got 1.5"):
        audio.set_volume(1.5)
    with pytest.raises(CommandError, match="'Nasal R'"):
        audio.set_channels(["Nasal R"])
    audio.close()

"""Free-running EMG to a loudspeaker: the surgical team listens to the muscles.

`EmgAudio(backend, channel_names, ...)`: `push(y_uv (n_ch, n), muted)` mixes the selected
channels (their mean), scales `full_scale_uv` to full scale x `volume`, writes silence while
`muted` (cautery: its roar would drown everything) and hands the chunk to a worker thread that
writes it to the backend. The main loop never waits on the sound card: the queue is bounded and
a full queue drops (and counts) the chunk. Volume and channel selection change at run time
(`set_volume`, `set_channels`; errors name the bad value).

Backends: `WavBackend` (a WAV file: tests, recordings of what was heard) and
`SoundDeviceBackend` (PortAudio through the `sounddevice` library, optional on the Pi:
`pip install sounddevice`, ALSA resamples the 4 kSPS stream for the card).
"""

from __future__ import annotations

import queue
import threading
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from appliance.errors import CommandError, ConfigError


class AudioBackend(Protocol):
    def write(self, samples: np.ndarray) -> None: ...  # int16 mono

    def close(self) -> None: ...


class WavBackend:
    """Mono 16-bit WAV at `rate_hz`."""

    def __init__(self, path: str | Path, rate_hz: float) -> None:
        self.path = Path(path)
        self._w = wave.open(str(self.path), "wb")  # noqa: SIM115 (closed in close())
        self._w.setnchannels(1)
        self._w.setsampwidth(2)
        self._w.setframerate(int(round(rate_hz)))

    def write(self, samples: np.ndarray) -> None:
        self._w.writeframes(samples.astype("<i2").tobytes())

    def close(self) -> None:
        self._w.close()


class SoundDeviceBackend:
    """The default output device through sounddevice (PortAudio)."""

    def __init__(self, rate_hz: float, device: str | int | None = None) -> None:
        try:
            import sounddevice  # type: ignore[import-not-found]
        except ImportError as e:
            raise ConfigError("analysis.emg_free.audio: 'sounddevice' is not installed "
                              "(pip install sounddevice); use audio = \"wav\" or \"off\".") from e
        self._stream = sounddevice.OutputStream(samplerate=rate_hz, channels=1, dtype="int16",
                                                device=device)
        self._stream.start()

    def write(self, samples: np.ndarray) -> None:
        self._stream.write(samples.reshape(-1, 1))

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()


class EmgAudio:
    def __init__(self, backend: AudioBackend, channel_names: Sequence[str],
                 channels: Sequence[str] = (), volume: float = 0.5,
                 full_scale_uv: float = 500.0, max_chunks: int = 64) -> None:
        self.backend = backend
        self.names = tuple(channel_names)
        self.full_scale_uv = float(full_scale_uv)
        self.set_channels(channels)
        self.set_volume(volume)
        self.samples_written = 0
        self.samples_muted = 0
        self.chunks_dropped = 0
        self._q: queue.Queue[np.ndarray | None] = queue.Queue(max_chunks)
        self._thread = threading.Thread(target=self._run, name="ionm-audio", daemon=True)
        self._thread.start()

    def set_volume(self, volume: float) -> None:
        v = float(volume)
        if not 0.0 <= v <= 1.0:
            raise CommandError(f"audio volume: got {volume!r}, allowed: 0 to 1.")
        self.volume = v

    def set_channels(self, channels: Sequence[str]) -> None:
        bad = [c for c in channels if c not in self.names]
        if bad:
            raise CommandError(f"audio channels: got {bad[0]!r}, allowed: one of "
                               f"{list(self.names)}.")
        chosen = list(channels) or list(self.names)
        self.rows = [self.names.index(c) for c in chosen]
        self.channels = tuple(chosen)

    def push(self, y_uv: np.ndarray, muted: bool) -> None:
        n = y_uv.shape[1]
        if n == 0:
            return
        if muted:
            pcm = np.zeros(n, dtype=np.int16)
            self.samples_muted += n
        else:
            mix = y_uv[self.rows].mean(axis=0) * (self.volume * 32767.0 / self.full_scale_uv)
            pcm = np.clip(np.round(mix), -32768, 32767).astype(np.int16)
        try:
            self._q.put_nowait(pcm)
        except queue.Full:
            self.chunks_dropped += 1

    def _run(self) -> None:
        while True:
            pcm = self._q.get()
            if pcm is None:
                return
            self.backend.write(pcm)
            self.samples_written += pcm.size

    def close(self, timeout_s: float = 2.0) -> None:
        """Write what is queued, then close the backend."""
        self._q.put(None)
        self._thread.join(timeout_s)
        self.backend.close()


def from_settings(emg, fs_hz: float) -> EmgAudio | None:
    """The EMG audio `[analysis.emg_free]` asks for, or None (off, or no EMG channels)."""
    if emg.audio == "off" or not emg.channels:
        return None
    backend: AudioBackend = (WavBackend(emg.audio_wav_path, fs_hz) if emg.audio == "wav"
                             else SoundDeviceBackend(fs_hz))
    return EmgAudio(backend, emg.channels, emg.audio_channels, emg.audio_volume,
                    emg.audio_full_scale_uv)

"""The continuous modalities beside the stimulus-locked sites: processed EEG, free-running and
triggered EMG. They see every block as it arrives (not the monitor's 250 ms batches): an A-train
must reach the lamps within 300 ms. Each is built only when its channel list is non-empty."""

from __future__ import annotations

from appliance.analysis.eeg import EegPipeline
from appliance.analysis.emg_free import EmgFreePipeline
from appliance.analysis.emg_triggered import TriggeredEmgPipeline
from appliance.errors import ConfigError
from appliance.frontend.block import SampleBlock

# output types of the continuous modalities (MQTT: appliance/outputs/mqtt/topics.py)
CONTINUOUS_TYPES = ("eeg_trend", "eeg_raw", "emg_trend", "emg_event", "temg_response",
                    "temg_threshold")


def _rows(names: tuple[str, ...], channels: tuple[str, ...], key: str) -> list[int]:
    missing = [c for c in channels if c not in names]
    if missing:
        raise ConfigError(f"analysis.{key}: channel {missing[0]!r} is not in the stream's "
                          f"channels {list(names)}.")
    return [names.index(c) for c in channels]


class Continuous:
    """`push(block) -> outputs` for every enabled continuous modality. Not thread-safe."""

    def __init__(self, analysis, channel_names: tuple[str, ...], fs_hz: float) -> None:
        self.eeg = None
        self.emg = None
        self.temg = None
        if analysis.eeg.channels:
            self.eeg = EegPipeline(analysis.eeg, _rows(channel_names, analysis.eeg.channels,
                                                       "eeg"), fs_hz)
        if analysis.emg_free.channels:
            self.emg = EmgFreePipeline(analysis.emg_free, _rows(
                channel_names, analysis.emg_free.channels, "emg_free"), fs_hz)
        if analysis.emg_triggered.channels:
            t = analysis.emg_triggered
            self.temg = TriggeredEmgPipeline(t, _rows(channel_names, t.channels,
                                                      "emg_triggered"), fs_hz)
        self.fs_hz = fs_hz
        self._expected: int | None = None

    @property
    def enabled(self) -> bool:
        return any(p is not None for p in (self.eeg, self.emg, self.temg))

    def push(self, block: SampleBlock) -> list:
        gap = self._expected is not None and block.first_sample != self._expected
        self._expected = block.end_sample
        t_s = block.end_sample / self.fs_hz
        out: list = []
        for p in (self.eeg, self.emg, self.temg):
            if p is None:
                continue
            if gap:
                p.reset()
            out += p.push(block.data_uv, block.first_sample, t_s) if p is self.eeg else \
                p.push(block, t_s)
        return out

    def flush(self) -> list:
        """End of a finite source: EMG still gathering to its batch is analysed."""
        return self.emg.flush() if self.emg is not None else []

    def active_ids(self) -> list[str]:
        return [cid for p in (self.eeg, self.emg, self.temg) if p is not None
                for cid in p.active]

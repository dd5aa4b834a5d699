"""The continuous (un-triggered) modalities: `[analysis.eeg]`, `[analysis.emg_free]` and
`[analysis.emg_triggered]`. Each is off while its channel lists are empty. Defaults and their
sources: docs/clinical-defaults.md (EEG, EMG sections)."""

from dataclasses import dataclass

from appliance.errors import ConfigError
from appliance.validate import field


@dataclass(frozen=True)
class EegSettings:
    left: tuple[str, ...] = field([], help="left-hemisphere EEG channels (e.g. C3-Fz)")
    right: tuple[str, ...] = field([], help="right-hemisphere EEG channels (e.g. C4-Fz)")
    epoch_s: float = field(2.0, min=0.5, max=30.0, help="one band-power update per epoch")
    welch_s: float = field(4.0, min=1.0, max=60.0, help="Welch estimate over this much EEG")
    segment_s: float = field(2.0, min=0.25, max=30.0, help="Welch segment (Hann, 50 % overlap)")
    baseline_s: float = field(60.0, min=4.0, max=3600.0, help="auto baseline: median over this")
    fast_loss: float = field(
        0.5, min=0.05, max=0.95, help="fast (alpha+beta) power loss fraction that alarms"
    )
    confirm_epochs: int = field(
        2, min=1, max=30,
        help="a loss is judged on the geometric mean of this many epochs' fast ratios"
    )
    asymmetry_epochs: int = field(
        4, min=1, max=30,
        help="the sides are compared over this many epochs (the same epochs for both)"
    )
    asymmetry_max: float = field(
        0.5, min=0.05, max=1.0,
        help="one-sided only if that side's fast ratio is below this x the other side's"
    )
    clear_margin: float = field(
        0.1, min=0.0, max=0.5,
        help="hysteresis: an active EEG condition clears only this far past its criterion"
    )
    clear_epochs: int = field(
        3, min=1, max=30, help="... for this many consecutive epochs"
    )
    suppression_uv: float = field(5.0, min=0.5, max=100.0, help="suppression: |EEG| below this")
    suppression_s: float = field(0.5, min=0.1, max=5.0, help="... for at least this long")
    bsr_window_s: float = field(60.0, min=2.0, max=600.0, help="burst-suppression ratio window")
    raw_rate_hz: float = field(125.0, min=25.0, max=500.0, help="decimated raw EEG for display")
    artefact_uv: float = field(
        300.0, min=20.0, max=1e5, help="|EEG| beyond this in the Welch window: not judged"
    )

    @property
    def channels(self) -> tuple[str, ...]:
        return self.left + self.right

    def check(self, path: str) -> None:
        both = set(self.left) & set(self.right)
        if both:
            raise ConfigError(f"{path}.right: channel {sorted(both)[0]!r} is also in left.")
        if self.segment_s > self.welch_s:
            raise ConfigError(f"{path}.segment_s: got {self.segment_s}, allowed: <= welch_s "
                              f"({self.welch_s}).")
        if bool(self.left) != bool(self.right):
            raise ConfigError(f"{path}.left/right: give channels for both hemispheres (the "
                              "one-sided criterion compares them) or for neither.")


@dataclass(frozen=True)
class EmgFreeSettings:
    channels: tuple[str, ...] = field([], help="free-running EMG channels (e.g. Orb-oc L)")
    band_hz: tuple[float, ...] = field([30.0, 1000.0], min=0.1, max=8000.0, min_items=2,
                                      max_items=2, help="[low, high] band-pass Hz")
    window_ms: float = field(10.0, min=2.0, max=50.0, help="activity is judged per window")
    threshold_factor: float = field(
        3.0, min=1.5, max=50.0, help="active: window RMS above this x the background RMS"
    )
    floor_uv: float = field(15.0, min=1.0, max=1e4, help="... and above this RMS µV")
    a_train_min_ms: float = field(50.0, min=20.0, max=1000.0,
                                  help="sinusoidal activity this long is an A-train")
    a_train_hz: tuple[float, ...] = field([60.0, 250.0], min=1.0, max=2000.0, min_items=2,
                                         max_items=2, help="A-train frequency range Hz")
    a_train_concentration: float = field(
        0.85, min=0.1, max=1.0, help="fraction of power within +/-1 bin of the peak (sinusoid)"
    )
    spike_max_ms: float = field(20.0, min=2.0, max=200.0, help="shorter activity is a spike")
    train_time_warning_s: float = field(0.5, min=0.0, max=600.0,
                                        help="train time per channel -> medium (Prell 2007)")
    train_time_alarm_s: float = field(10.0, min=0.1, max=600.0,
                                      help="train time per channel -> high (Prell 2007)")
    burst_hold_s: float = field(2.0, min=0.1, max=60.0, help="burst condition stays this long")
    blank_ms: float = field(8.0, min=0.0, max=200.0, help="blanked after each stimulus trigger")
    blank_extend_ms: float = field(
        15.0, min=0.0, max=50.0,
        help="... and up to this much longer while an artefact tail still decays (0 = off)"
    )
    blank_residual_uv: float = field(
        30.0, min=5.0, max=1e4,
        help="a tail: displaced from the held value by more than this, with unchanged polarity"
    )
    trigger_mask: int = field(0xFFFF, min=0, max=0xFFFF, help="trigger bits that blank")
    cautery_uv: float = field(400.0, min=10.0, max=1e6, help="window RMS over this = cautery")
    cautery_fraction: float = field(
        0.5, min=0.1, max=1.0, help="... on at least this fraction of channels"
    )
    cautery_hf_hz: float = field(500.0, min=50.0, max=4000.0,
                                 help="cautery is broadband: power share above this ...")
    cautery_hf_share: float = field(0.15, min=0.0, max=1.0,
                                    help="... at least this on a channel over cautery_uv")
    cautery_hold_ms: float = field(250.0, min=0.0, max=5000.0, help="suppressed after cautery")
    trend_s: float = field(1.0, min=0.1, max=60.0, help="activity trend period")
    batch_ms: float = field(48.0, min=0.0, max=150.0, help="blocks analysed together (latency)")
    snippet_ms: float = field(50.0, min=5.0, max=500.0, help="raw snippet before/after an event")
    audio: str = field("off", choices=("off", "sounddevice", "wav"),
                       help="EMG to a loudspeaker (sounddevice) or a WAV file")
    audio_wav_path: str = field("", help="audio = 'wav': the file written")
    audio_channels: tuple[str, ...] = field([], help="channels mixed to audio; empty: all")
    audio_volume: float = field(0.5, min=0.0, max=1.0, help="audio volume 0..1")
    audio_full_scale_uv: float = field(500.0, min=10.0, max=1e5, help="µV at full audio scale")

    def check(self, path: str) -> None:
        for key in ("band_hz", "a_train_hz"):  # two positive numbers (declared); in order
            v = getattr(self, key)
            if not v[0] < v[1]:
                raise ConfigError(f"{path}.{key}: got {list(v)}, allowed: [low, high], low < high.")
        if self.train_time_warning_s > self.train_time_alarm_s:
            raise ConfigError(f"{path}.train_time_warning_s: got {self.train_time_warning_s}, "
                              f"allowed: <= train_time_alarm_s ({self.train_time_alarm_s}).")
        if self.audio == "wav" and not self.audio_wav_path:
            raise ConfigError(f"{path}.audio_wav_path: missing; audio = 'wav' writes a file.")
        extra = sorted(set(self.audio_channels) - set(self.channels))
        if extra:
            raise ConfigError(f"{path}.audio_channels: got {extra[0]!r}, allowed: one of "
                              f"channels {list(self.channels)}.")


@dataclass(frozen=True)
class EmgTriggeredSettings:
    channels: tuple[str, ...] = field([], help="triggered-EMG recording channels (myotomes)")
    trigger_bit: int = field(1, min=0, max=15, help="trigger bit of the screw/probe stimulator")
    window_ms: tuple[float, ...] = field([3.0, 40.0], min=0.0, max=200.0, min_items=2, max_items=2,
                                        help="response window after the pulse")
    response_uv: float = field(100.0, min=1.0, max=1e5, help="peak-to-peak that is a response")
    warning_ma: float = field(8.0, min=0.1, max=100.0,
                              help="threshold below this -> medium (lumbar screws, Raynor)")
    alarm_ma: float = field(4.0, min=0.1, max=100.0,
                            help="threshold below this -> high (likely breach, Raynor)")
    start_ma: float = field(2.0, min=0.1, max=100.0, help="threshold search: first intensity")
    step_ma: float = field(2.0, min=0.05, max=50.0, help="ascending step")
    fine_step_ma: float = field(0.5, min=0.01, max=10.0, help="descending step after a response")
    max_ma: float = field(30.0, min=1.0, max=200.0, help="search stops here: no response")

    def check(self, path: str) -> None:
        w = self.window_ms  # two numbers >= 0 (declared); in order
        if not w[0] < w[1]:
            raise ConfigError(f"{path}.window_ms: got {list(w)}, allowed: [start, end] ms.")
        if self.alarm_ma > self.warning_ma:
            raise ConfigError(f"{path}.alarm_ma: got {self.alarm_ma}, allowed: <= warning_ma "
                              f"({self.warning_ma}).")

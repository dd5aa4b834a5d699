"""The `[analysis]` section: stimulation sites and how each is averaged, measured and judged.

Per-site values left at their "use the modality default" value (0, empty or "default") take the
defaults in appliance/modalities/<modality>.py; docs/clinical-defaults.md gives their sources.
"""

from dataclasses import dataclass

from appliance.errors import ConfigError
from appliance.settings.continuous import EegSettings, EmgFreeSettings, EmgTriggeredSettings
from appliance.validate import field

MODALITIES = ("ssep_upper", "ssep_lower", "baep", "tcmep")
AVERAGING = ("default", "moving", "cumulative")
ROLES = ("auto", "cortical", "subcortical", "cervical", "peripheral", "muscle", "epidural")
PHASES = ("zero", "causal")
BASELINE_POLICIES = ("auto", "manual")
CASE_TYPES = ("spine", "cranial")
FAST_SITE = ("default", "on", "off")  # per-site fast detection: follow analysis.fast_detection
# Keys a site's `criteria` table may override (fractions and milliseconds, docs/analysis.md) and
# the range each may take: wide enough for every published criterion (docs/clinical-defaults.md),
# narrow enough that no value switches an alarm off or delays it past a few updates.
CLEAR_MARGIN_MAX = 0.5  # fractions of baseline; beyond this an alarm could never clear
CRITERIA = {
    # alarm when amplitude < this fraction of baseline (SSEP 0.5; tcMEP spine 0.2, cranial 0.5)
    "amplitude_ratio_min": {"min": 0.2, "max": 0.9},
    "latency_ratio_max": {"min": 1.03, "max": 1.3},  # alarm when latency > this x baseline (1.10)
    "latency_shift_ms": {"min": 0.3, "max": 2.0},  # BAEP: wave V latency rise (1.0 ms) ...
    "shift_amplitude_ratio_min": {"min": 0.2, "max": 0.9},  # ... with amplitude below this (0.5)
    # peripheral (Erb/popliteal) below this fraction -> stimulation fault (0.5); a high value
    # would blame the stimulator for a real cortical loss
    "peripheral_ratio_min": {"min": 0.2, "max": 0.7},
    # consecutive updates a change must persist before it counts (2)
    "confirm_updates": {"min": 1, "max": 4, "integer": True},
    # hysteresis: an amplitude alarm clears only above its criterion + this (fraction)
    "clear_amplitude_margin": {"min": 0.0, "max": CLEAR_MARGIN_MAX},
    # a latency alarm clears only below its criterion - this (fraction of baseline)
    "clear_latency_margin": {"min": 0.0, "max": CLEAR_MARGIN_MAX},
}
CRITERIA_KEYS = tuple(CRITERIA)


@dataclass(frozen=True)
class SiteSettings:
    name: str = field(help="stimulation site, e.g. 'L median'")
    modality: str = field(choices=MODALITIES, help="what is measured at this site")
    channels: tuple[str, ...] = field(
        min_items=1, help="recording channels analysed for this site"
    )
    trigger_bit: int = field(0, min=0, max=15, help="trigger input bit that marks its stimuli")
    rate_hz: float = field(4.7, min=0.1, max=50.0, help="stimulus rate of this site")
    roles: tuple[str, ...] = field(
        [], help=f"per-channel role, one of {ROLES}; empty: derive from channel names"
    )
    window_ms: tuple[float, ...] = field(
        [], min=0.0, max=1000.0,
        help="[pre_ms, post_ms] analysis window around the stimulus; empty: modality default",
    )
    band_hz: tuple[float, ...] = field(
        [], min=0.1, max=8000.0, help="[low_hz, high_hz] band-pass; empty: default"
    )
    components: dict[str, tuple[float, ...]] = field(
        {}, min=0.0, max=1000.0,
        help="component name -> [from_ms, to_ms] peak search window; unnamed: modality default",
    )
    notch_hz: float = field(
        -1.0, min=40.0, max=70.0, special={-1.0: "use analysis.notch_hz", 0.0: "off"},
        help="mains notch Hz; 0 off, -1 use analysis.notch_hz",
    )
    phase: str = field("zero", choices=PHASES, help="zero-phase sweep filtering or causal stream")
    averaging: str = field("default", choices=AVERAGING, help="moving window or cumulative")
    n_sweeps: int = field(0, min=0, max=10000, help="sweeps in the moving average; 0: default")
    update_sweeps: int = field(0, min=0, max=2000, help="sweeps per update; 0: default")
    reject_uv: float = field(
        0.0, min=1.0, max=1e5, special={0.0: "modality default"},
        help="reject beyond +/- this µV; 0: default",
    )
    judge_sweeps: int = field(
        0, min=0, max=10000, help="SSEP template fit: the fewest sweeps its latency and its "
        "amplitude are judged over (the amplitude's grow with the noise, the latency's as "
        "the response shrinks, to 4x); 0: half of n_sweeps"
    )
    d_wave: bool = field(False, help="tcMEP site records an epidural D-wave (averaged, <= 20)")
    criteria: dict[str, float] = field(
        {}, keys=CRITERIA, help=f"criteria overrides; keys {CRITERIA_KEYS}"
    )
    fast_detection: str = field(
        "default", choices=FAST_SITE, help="SSEP fast detector: default follows analysis's"
    )

    def check(self, path: str) -> None:
        if self.roles and len(self.roles) != len(self.channels):
            raise ConfigError(
                f"{path}.roles: got {len(self.roles)} roles for {len(self.channels)} channels; "
                "give one role per channel or leave it empty."
            )
        for i, r in enumerate(self.roles):
            if r not in ROLES:
                raise ConfigError(f"{path}.roles[{i}]: got {r!r}, allowed: {', '.join(ROLES)}.")
        pairs = [("window_ms", self.window_ms), ("band_hz", self.band_hz)]
        pairs += [(f"components.{k}", v) for k, v in self.components.items()]
        for key, v in pairs:
            if v and len(v) != 2:
                raise ConfigError(f"{path}.{key}: got {list(v)}, allowed: [low, high] or empty.")
        if self.band_hz and not self.band_hz[0] < self.band_hz[1]:
            raise ConfigError(f"{path}.band_hz: got {list(self.band_hz)}, need low < high.")
        if self.window_ms and self.window_ms[1] <= 0:
            raise ConfigError(
                f"{path}.window_ms: got {list(self.window_ms)}, "
                "allowed: [pre_ms >= 0, post_ms > 0]."
            )
        for k, (lo, hi) in self.components.items():
            if not lo < hi:
                raise ConfigError(f"{path}.components.{k}: got {[lo, hi]}, need from < to (ms).")


@dataclass(frozen=True)
class AnalysisSettings:
    sites: tuple[SiteSettings, ...] = field([], help="stimulation sites and what they record")
    notch_hz: float = field(
        50.0, min=40.0, max=70.0, special={0.0: "off"},
        help="mains notch for every site (60 in the Americas); 0 off",
    )
    update_interval_s: float = field(
        10.0, min=0.5, max=60.0, help="emit an update at least this often while sweeps arrive"
    )
    batch_ms: float = field(
        250.0, min=1.0, max=1000.0, help="blocks are analysed together in batches this long"
    )
    baseline_policy: str = field(
        "auto", choices=BASELINE_POLICIES, help="auto: capture after K stable updates; manual"
    )
    baseline_updates: int = field(3, min=1, max=10, help="K stable, reproducible updates")
    fsp_min: float = field(3.1, min=1.5, max=6.0, help="Fsp that counts as a response present")
    split_half_r_min: float = field(0.6, min=0.3, max=0.9, help="split-half r for a stable trace")
    case_type: str = field(
        "spine", choices=CASE_TYPES, help="tcMEP criterion: spine 80 % loss, cranial 50 %"
    )
    global_ratio: float = field(
        0.7, min=0.3, max=0.9, help="every site below this amplitude fraction -> global change"
    )
    clear_amplitude_margin: float = field(
        0.10, min=0.0, max=CLEAR_MARGIN_MAX,
        help="hysteresis: an amplitude alarm clears only above its criterion + this fraction "
        "of baseline (50 % -> 60 %)"
    )
    clear_latency_margin: float = field(
        0.05, min=0.0, max=CLEAR_MARGIN_MAX,
        help="hysteresis: a latency alarm clears only below its criterion - this fraction of "
        "baseline (110 % -> 105 %)"
    )
    confirm_imprecise: bool = field(
        True, help="SSEP: a change whose judged measure is too imprecise for its criterion "
        "(amplitude: the cannot_see condition; latency: its own SE) is raised MEDIUM, and HIGH "
        "once a window of new sweeps shows it too; false: HIGH at once"
    )
    stimulus_timeout_periods: float = field(
        5.0, min=1.5, max=20.0, help="no stimulus for this many periods -> technical condition"
    )
    fast_detection: bool = field(
        True, help="SSEP sites also run the sweep-by-sweep fast detector (fast.* conditions); "
        "false: conventional criteria only"
    )
    fast_baseline_sweeps: int = field(
        600, min=50, max=20000, help="fast detector: sweeps for its template (~2 min at 4.7 Hz)"
    )

    eeg: EegSettings = field(EegSettings(), help="processed EEG (off without channels)")
    emg_free: EmgFreeSettings = field(EmgFreeSettings(), help="free-running EMG")
    emg_triggered: EmgTriggeredSettings = field(EmgTriggeredSettings(), help="triggered EMG")

    def check(self, path: str) -> None:
        names = [s.name for s in self.sites]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"{path}.sites: site name {dup[0]!r} appears twice; names are ids.")

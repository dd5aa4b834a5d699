"""A seeded, streaming simulated patient: background EEG/EMG, mains, electrode drift, ECG,
cautery, movement and stimulus-locked responses, changed over time by a `Scenario`.

    p = Patient(channel_names, sample_rate_hz, sites, scenario=None, seed=1)
    uv, trigger = p.generate(n)        # (n_ch, n) float64 µV, (n,) uint16; a continuous stream
    p.truth("L median", "N20", t_s)    # what the generator put there at that time
    p.events                           # every stimulus so far (StimEvent)

The stream does not depend on how it is cut: generate(a) then generate(b) equals
generate(a + b) for the same seed (each random source draws sample by sample from its own
generator, filters carry their state). Vectorised per call; Python loops run only over
stimuli, heart beats and scenario events, never over samples.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import signal

from appliance.dsp.filters import StreamingFilter
from appliance.errors import ConfigError
from appliance.frontend.simulated import noise
from appliance.frontend.simulated.responses import (
    MEP_ONSET_JITTER_MS,
    ComponentSpec,
    components_for,
    gaussian_wave,
    mep_wave,
    place_of,
    stim_artefact,
)
from appliance.frontend.simulated.scenario import ANY, Scenario, Track, active, matches
from appliance.frontend.stimulus import Interleaver

# Per electrode place: (EEG, EMG, ECG) scale relative to the patient settings. Scalp EEG is the
# reference; peripheral sites see little EEG but muscle and the heart.
_NOISE_BY_KIND = {
    "scalp": (1.0, 0.25, 0.2),
    "unknown": (1.0, 0.25, 0.2),
    "cervical": (0.5, 1.0, 1.0),
    "erb": (0.2, 1.0, 1.0),
    "lumbar": (0.2, 1.0, 1.5),
    "popliteal": (0.1, 1.0, 0.3),
    "muscle_upper": (0.1, 1.0, 0.3),
    "muscle_lower": (0.1, 1.0, 0.3),
}
LEAD_OFF_OFFSET_UV = 400_000.0  # an open input drifts to the rail (saturates at gain >= 12)
LEAD_OFF_MAINS_GAIN = 500.0  # ... and picks up hundreds of times more hum
MAINS_WANDER_HZ = 0.02  # SD of the grid frequency around nominal


# Cortical SSEP amplitude against stimulus rate (../shared/spec/clinical.md: N20 -27.9 % at
# 2.79 Hz and -48.8 % at 5.69 Hz relative to 1.05 Hz), interpolated in log-log and extrapolated
# with the end slopes; the nominal amplitudes hold at REFERENCE_RATE_HZ.
_RATE_HZ = np.log([1.05, 2.79, 5.69])
_RATE_AMP = np.log([1.0, 0.721, 0.512])
REFERENCE_RATE_HZ = 4.7


def _log_amp(rate_hz: float) -> float:
    x = np.log(rate_hz)
    if x < _RATE_HZ[0]:
        slope = (_RATE_AMP[1] - _RATE_AMP[0]) / (_RATE_HZ[1] - _RATE_HZ[0])
        return float(_RATE_AMP[0] + slope * (x - _RATE_HZ[0]))
    if x > _RATE_HZ[-1]:
        slope = (_RATE_AMP[-1] - _RATE_AMP[-2]) / (_RATE_HZ[-1] - _RATE_HZ[-2])
        return float(_RATE_AMP[-1] + slope * (x - _RATE_HZ[-1]))
    return float(np.interp(x, _RATE_HZ, _RATE_AMP))


def rate_factor(rate_hz: float) -> float:
    """Cortical SSEP amplitude at `rate_hz` relative to the amplitude at 4.7 Hz."""
    return float(np.exp(_log_amp(rate_hz) - _log_amp(REFERENCE_RATE_HZ)))


class StimEvent(NamedTuple):
    sample: int  # stimulus sample (trigger bit set here when `trigger`)
    t_s: float
    site: str
    trigger: bool  # the stimulator fired and its sync reached the front end
    response: bool  # the patient was stimulated (False: stimulus lost)


class ComponentTruth(NamedTuple):
    site: str
    component: str
    channel: str
    role: str
    latency_ms: float  # expected peak latency (MEP: onset) at that time
    amplitude_uv: float  # expected baseline-to-peak magnitude (MEP: peak-to-peak); 0 when lost
    polarity: int  # -1 N, +1 P, 0 polyphasic
    present: bool  # a response is generated at all


@dataclass(frozen=True)
class _Placement:
    site_index: int
    channel_index: int
    spec: ComponentSpec
    factor: float


class Patient:
    """A simulated patient on `channel_names` at `sample_rate_hz`, stimulated at `sites`
    (SiteSettings), changed over time by `scenario`; see the module docstring."""

    def __init__(self, channel_names: Sequence[str], sample_rate_hz: float, sites: Sequence[Any],
                 scenario: Scenario | None = None, seed: int = 1,
                 events_kept: int | None = 1_000_000) -> None:
        self.channel_names = tuple(channel_names)
        self.fs = float(sample_rate_hz)
        self.sites = tuple(sites)
        self.scenario = scenario or Scenario()
        self.scenario.check_names([s.name for s in self.sites], list(self.channel_names),
                                  f"scenario {self.scenario.name!r}")
        self.settings = ps = self.scenario.patient
        self.seed = seed
        # every stimulus so far; the oldest are forgotten beyond `events_kept` (memory in long runs)
        self.events: deque[StimEvent] = deque(maxlen=events_kept)
        self._sample = 0
        n_ch = len(self.channel_names)
        streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(13)]
        (r_setup, r_eeg, r_emg, r_white, r_drift, r_stim, r_sweep, r_ecg, r_caut,
         self._r_move, r_grid, r_wander, self._r_emg_events) = streams
        self._r_white, self._r_sweep, self._r_ecg, self._r_caut = r_white, r_sweep, r_ecg, r_caut

        kinds = [place_of(c).kind for c in self.channel_names]
        self._art_gain = np.array([[0.25 if k in ("scalp", "unknown") else 1.0] for k in kinds])
        scale = np.array([_NOISE_BY_KIND[k] for k in kinds])
        var = r_setup.uniform(0.9, 1.12, (n_ch, 3))  # electrodes differ
        self._eeg = noise.PinkEeg(self.fs, ps.eeg_rms_uv * scale[:, 0] * var[:, 0], r_eeg,
                                  slope=ps.eeg_slope)
        emg_rms = np.where([k.startswith("muscle") for k in kinds], ps.muscle_emg_rms_uv,
                           ps.emg_rms_uv * scale[:, 1])
        self._emg = noise.Emg(self.fs, emg_rms * var[:, 1], r_emg)
        self._drift = noise.OffsetDrift(self.fs, r_setup.uniform(-1, 1, n_ch) * ps.offset_uv,
                                        ps.drift_uv, ps.drift_tau_s, r_drift)
        self._ecg_gain = ps.ecg_uv * scale[:, 2] * var[:, 2] * r_setup.choice([-1, 1], n_ch)
        self._ecg_beat, self._ecg_r = noise.ecg_beat(self.fs)
        self._next_beat_s = r_ecg.uniform(0.3, 1.0)
        self._mains_amp = ps.mains_uv * r_setup.uniform(0.5, 2.0, n_ch)
        self._mains_phase = r_setup.uniform(0.0, 0.3, n_ch)
        # grid frequency wanders (±0.02 Hz SD over a minute): exact-frequency cancellers must not
        # look better here than in theatre
        self._grid_hz = noise.OffsetDrift(self.fs, np.zeros(1), MAINS_WANDER_HZ, 60.0, r_grid)
        self._grid_rad = 0.0
        # background noise is not stationary: each electrode's EEG/EMG level wanders slowly
        # (log-level SD `noise_wander`, minutes), as anaesthetic depth and muscle tone do
        self._wander = noise.OffsetDrift(self.fs, np.zeros(n_ch), ps.noise_wander, 120.0,
                                         r_wander, smooth_s=5.0)

        self._placements = self._place()
        self._interleaver = Interleaver([s.rate_hz for s in self.sites], min_gap_s=1.0 / self.fs,
                                        jitter_s=ps.stim_jitter_ms / 1000.0, rng=r_stim)
        self._pending = self._interleaver.next()
        self._carry = np.zeros((n_ch, 0))
        self._amp_tracks: dict[tuple[int, str], Track] = {}
        self._lat_tracks: dict[tuple[int, str], tuple[Track, Track]] = {}
        sc = self.scenario

        def level(kind: str) -> Track:
            return Track([(e.at_s, e.ramp_s, e.to_percent) for _, e in sc.of_type(kind)])

        self._mains_track, self._noise_track = level("mains"), level("noise")
        self._fades = [e for _, e in sc.of_type("fade")]
        self._stim_loss = [e for _, e in sc.of_type("stimulus_loss")]
        self._lead_off = [(self.channel_names.index(e.channel), e)
                          for _, e in sc.of_type("lead_off")]
        self._cautery = [e for _, e in sc.of_type("cautery")]
        self._movements = [e for _, e in sc.of_type("movement")]
        self._next_movement = 0
        self._emg_events = [e for _, e in sc.of_type("a_train", "emg_burst")]
        self._screws = [(self.channel_names.index(e.channel), e) for _, e in sc.of_type("screw")]
        # triggered EMG: the intensity (mA) of the pulse being given; the stimulator control
        # (or a test playing it) sets this callable
        self.stim_intensity_ma: Any = None
        self._next_emg_event = 0
        # EEG slowing: each channel's activity above ~8 Hz (x minus its 7 Hz low-pass: the two
        # parts sum to x exactly, so no phase-shifted copy is subtracted) scaled by its track
        slow = [e for _, e in sc.of_type("eeg_slowing")]
        self._slow_rows = [i for i, c in enumerate(self.channel_names)
                           if any(not e.channels or c in e.channels for e in slow)]
        self._slow_tracks = [Track([(e.at_s, e.ramp_s, e.fast_to_percent) for e in slow
                                    if not e.channels or c in e.channels])
                             for c in (self.channel_names[i] for i in self._slow_rows)]
        self._fast_filter = StreamingFilter(
            signal.butter(4, 7.0, "lowpass", fs=self.fs, output="sos"), len(self._slow_rows))

    # ----------------------------------------------------------------- layout and truth
    def _place(self) -> list[_Placement]:
        out = []
        for si, site in enumerate(self.sites):
            listed = set(site.channels)
            for ci, ch in enumerate(self.channel_names):
                if listed and ch not in listed:
                    continue
                for spec, factor in components_for(site.modality, site.name, ch, ch in listed):
                    out.append(_Placement(si, ci, spec, factor))
        return out

    def _site_index(self, site: str) -> int:
        for i, s in enumerate(self.sites):
            if s.name == site:
                return i
        raise ConfigError(f"site: got {site!r}, allowed: one of {[s.name for s in self.sites]}.")

    def components(self, site: str | None = None) -> list[tuple[str, str, str]]:
        """(site, component, channel) for every response the patient generates."""
        return [(self.sites[p.site_index].name, p.spec.name, self.channel_names[p.channel_index])
                for p in self._placements if site is None or self.sites[p.site_index].name == site]

    def _amp_level(self, si: int, spec: ComponentSpec, t_s: float) -> float:
        key = (si, spec.name)
        if key not in self._amp_tracks:
            name = self.sites[si].name
            steps = [(e.at_s, e.ramp_s, e.to_percent) for _, e in self.scenario.of_type("amplitude")
                     if matches(e, name, spec.name, spec.role)]
            self._amp_tracks[key] = Track(steps)
        level = float(self._amp_tracks[key].value(t_s)) / 100.0
        if spec.role in ("cortical", "muscle"):  # anaesthetics act on synapses, not nerves
            for f in self._fades:
                if t_s > f.at_s:
                    dt_h = (min(t_s, f.until_s) if f.until_s else t_s) - f.at_s
                    level *= max(0.0, 1.0 - f.pct_per_h / 100.0 * dt_h / 3600.0)
        return level

    def _latency(self, si: int, spec: ComponentSpec, t_s: float) -> float:
        key = (si, spec.name)
        if key not in self._lat_tracks:
            name = self.sites[si].name
            evs = [e for _, e in self.scenario.of_type("latency")
                   if matches(e, name, spec.name, spec.role)]
            self._lat_tracks[key] = (Track([(e.at_s, e.ramp_s, e.to_percent) for e in evs]),
                                     Track([(e.at_s, e.ramp_s, e.shift_ms) for e in evs], 0.0))
        pct, shift = self._lat_tracks[key]
        lat = spec.latency_ms * float(pct.value(t_s)) / 100.0 + float(shift.value(t_s))
        if spec.role == "cortical":
            for f in self._fades:
                if t_s > f.at_s and f.latency_pct_per_h:
                    dt_h = ((min(t_s, f.until_s) if f.until_s else t_s) - f.at_s) / 3600.0
                    lat *= 1.0 + f.latency_pct_per_h / 100.0 * dt_h
        return lat

    def stimulus_state(self, site: str, t_s: float) -> tuple[bool, bool]:
        """(trigger, response) for a stimulus of `site` at t_s under the scenario."""
        trigger = response = True
        for e in self._stim_loss:
            if e.site in (ANY, site) and active(e, t_s):
                response = False
                trigger = trigger and e.mode != "no_trigger"
        return trigger, response

    def truth(self, site: str, component: str, t_s: float,
              channel: str | None = None) -> ComponentTruth:
        """Expected latency and amplitude of `component` of `site` at t_s (the mean over sweeps;
        sweeps vary around it). Raises ConfigError if the patient never generates it."""
        si = self._site_index(site)
        cands = [p for p in self._placements if p.site_index == si and p.spec.name == component
                 and (channel is None or self.channel_names[p.channel_index] == channel)]
        if not cands:
            have = sorted({c for s, c, _ in self.components(site)})
            raise ConfigError(f"component: got {component!r} (channel {channel!r}) for site "
                              f"{site!r}, allowed: {have}.")
        p = max(cands, key=lambda c: c.factor)
        spec = p.spec
        _, response = self.stimulus_state(site, t_s)
        amp = spec.amplitude_uv * p.factor * self.settings.response_scale
        if spec.role == "cortical" and self.sites[si].modality.startswith("ssep"):
            amp *= rate_factor(self.sites[si].rate_hz)
        amp *= self._amp_level(si, spec, t_s) if response else 0.0
        return ComponentTruth(site, component, self.channel_names[p.channel_index], spec.role,
                              self._latency(si, spec, t_s), amp, spec.polarity,
                              response and amp > 0)

    def lead_off(self, t_s: float) -> np.ndarray:
        """(n_ch,) bool: electrodes off at t_s."""
        out = np.zeros(len(self.channel_names), dtype=bool)
        for ci, e in self._lead_off:
            out[ci] |= active(e, t_s)
        return out

    def lead_off_span(self, t0_s: float, t1_s: float) -> np.ndarray:
        """(n_ch,) bool: electrodes off at any time in [t0_s, t1_s)."""
        out = np.zeros(len(self.channel_names), dtype=bool)
        for ci, e in self._lead_off:
            out[ci] |= e.at_s < t1_s and (not e.until_s or e.until_s > t0_s)
        return out

    @property
    def t_s(self) -> float:
        return self._sample / self.fs

    @property
    def sample(self) -> int:
        return self._sample

    # ----------------------------------------------------------------- the stream
    def generate(self, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        n = int(n_samples)
        if n <= 0:
            return np.zeros((len(self.channel_names), 0)), np.zeros(0, dtype=np.uint16)
        n_ch = len(self.channel_names)
        s0, s1 = self._sample, self._sample + n
        t = (s0 + np.arange(n)) / self.fs
        trigger = np.zeros(n, dtype=np.uint16)
        transients: list[tuple[int, np.ndarray | int | None, np.ndarray]] = []

        noise_level = self._noise_track.value(t) / 100.0
        eeg = self._eeg.generate(n)
        if self._slow_rows:
            fast = eeg[self._slow_rows] - self._fast_filter.process(eeg[self._slow_rows])
            gain = np.array([tr.value(t) for tr in self._slow_tracks]) / 100.0
            eeg[self._slow_rows] += (gain - 1.0) * fast
        uv = (eeg + self._emg.generate(n)) * noise_level
        if self.settings.noise_wander > 0:
            uv *= np.exp(self._wander.generate(n))
        uv += self._r_white.standard_normal((n, n_ch)).T * self.settings.amp_noise_uv
        uv += self._drift.generate(n)
        mains_amp = self._mains_amp[:, None] * (self._mains_track.value(t) / 100.0)[None, :]
        off = np.zeros((n_ch, n), dtype=bool)
        for ci, e in self._lead_off:
            off[ci] |= (t >= e.at_s) & ((t < e.until_s) if e.until_s else True)
        if off.any():
            mains_amp = np.where(off, mains_amp * LEAD_OFF_MAINS_GAIN, mains_amp)
            uv += off * LEAD_OFF_OFFSET_UV
        wander = self._grid_rad + 2 * np.pi * np.cumsum(self._grid_hz.generate(n)[0]) / self.fs
        self._grid_rad = float(wander[-1])
        uv += noise.mains(t, self.settings.mains_hz, self.fs, mains_amp, self._mains_phase, wander)
        self._add_cautery(uv, t)
        self._schedule_ecg(s1, transients)
        self._schedule_movements(s1, transients)
        self._schedule_emg(s1, transients)
        self._stimulate(s0, s1, trigger, transients)

        end = max([n, self._carry.shape[1]] + [a - s0 + w.shape[-1] for a, _, w in transients])
        acc = np.zeros((n_ch, end))
        acc[:, : self._carry.shape[1]] += self._carry
        for start, rows, wave in transients:
            a = start - s0
            if rows is None:
                acc[:, a: a + wave.shape[-1]] += wave
            else:
                acc[rows, a: a + wave.shape[-1]] += wave
        uv += acc[:, :n]
        self._carry = acc[:, n:]
        self._sample = s1
        return uv, trigger

    def _stimulate(self, s0: int, s1: int, trigger: np.ndarray, transients: list) -> None:
        ps = self.settings
        while True:
            t_stim, si = self._pending
            if si < 0:
                return
            sample = int(np.ceil(t_stim * self.fs - 1e-9))
            if sample >= s1:
                return
            self._pending = self._interleaver.next()
            site = self.sites[si]
            t_s = sample / self.fs
            fired, response = self.stimulus_state(site.name, t_s)
            self.events.append(StimEvent(sample, t_s, site.name, fired, response))
            if fired:
                trigger[sample - s0] |= np.uint16(1 << site.trigger_bit)
            if not response:
                continue
            art = ps.stim_artefact_uv * (25.0 if site.modality == "tcmep" else 1.0)
            transients.append((sample, None, self._art_gain * stim_artefact(self.fs, art)))
            self._screw_responses(site.trigger_bit, sample, t_s, transients)
            for p in self._placements:
                if p.site_index != si:
                    continue
                amp = self.truth(site.name, p.spec.name, t_s,
                                 self.channel_names[p.channel_index]).amplitude_uv
                lat = self._latency(si, p.spec, t_s)
                if p.spec.polarity == 0:  # MEP: log-normal amplitude, onset jitter
                    s = np.sqrt(np.log1p(ps.mep_cv ** 2))
                    amp *= float(np.exp(self._r_sweep.normal(-0.5 * s * s, s)))
                    lat += self._r_sweep.normal(0.0, MEP_ONSET_JITTER_MS)
                    off0, w = mep_wave(self.fs, lat, amp, p.spec.width_ms, self._r_sweep)
                else:
                    amp *= max(0.0, 1.0 + self._r_sweep.normal(0.0, ps.amplitude_jitter))
                    lat += self._r_sweep.normal(0.0, ps.latency_jitter_ms)
                    off0, w = gaussian_wave(self.fs, lat, amp, p.spec.polarity, p.spec.width_ms)
                transients.append((sample + off0, p.channel_index, w))

    def _screw_responses(self, bit: int, sample: int, t_s: float, transients: list) -> None:
        """A probed screw answers a pulse at or above its threshold with a biphasic CMAP
        that grows with the current (recruitment) up to amplitude_uv."""
        for row, e in self._screws:
            if e.trigger_bit != bit or not active(e, t_s) or self.stim_intensity_ma is None:
                continue
            ma = float(self.stim_intensity_ma())
            if ma < e.threshold_ma:
                continue
            amp = e.amplitude_uv * min(1.0, 0.5 + 0.5 * (ma - e.threshold_ma) / e.threshold_ma)
            tt = np.arange(int(0.02 * self.fs)) / self.fs * 1e3  # ms from onset
            z = (tt - 4.0) / 2.0
            wave = 0.5 * amp * 1.6487 * z * np.exp(-0.5 * z * z)
            transients.append((sample + int(round(e.latency_ms * self.fs / 1e3)), [row],
                               wave[None, :]))

    def _schedule_ecg(self, s1: int, transients: list) -> None:
        if not np.any(self._ecg_gain):
            return
        period = 60.0 / self.settings.heart_rate_bpm
        while True:
            start = int(round(self._next_beat_s * self.fs)) - self._ecg_r
            if start >= s1:
                return
            if start >= self._sample:  # the first beat of a stream may start before it
                transients.append((start, None, self._ecg_gain[:, None] * self._ecg_beat[None, :]))
            self._next_beat_s += period * (1.0 + self._r_ecg.normal(0.0, 0.03))

    def _schedule_movements(self, s1: int, transients: list) -> None:
        while self._next_movement < len(self._movements):
            e = self._movements[self._next_movement]
            start = int(np.ceil(e.at_s * self.fs))
            if start >= s1:
                return
            self._next_movement += 1
            start = max(start, self._sample)
            rows = [self.channel_names.index(c) for c in e.channels] or list(
                range(len(self.channel_names)))
            # a step that relaxes plus a wobble: cable sway and electrode pressure change
            tt = np.arange(int(e.duration_s * self.fs)) / self.fs
            env = np.sin(np.pi * tt / e.duration_s)
            wob = np.sin(2 * np.pi * self._r_move.uniform(0.5, 3.0) * tt)
            gains = (self._r_move.choice([-1.0, 1.0], (len(rows), 1))
                     * self._r_move.uniform(0.5, 1.0, (len(rows), 1)))
            transients.append((start, rows, e.amplitude_uv * gains * (env * (0.6 + 0.4 * wob))))

    def _schedule_emg(self, s1: int, transients: list) -> None:
        """A-trains (a sinusoid with 5 ms edges) and bursts (Poisson-timed biphasic motor-unit
        discharges, 1-3 ms wide), each generated whole when it starts."""
        while self._next_emg_event < len(self._emg_events):
            e = self._emg_events[self._next_emg_event]
            start = int(np.ceil(e.at_s * self.fs))
            if start >= s1:
                return
            self._next_emg_event += 1
            start = max(start, self._sample)
            row = self.channel_names.index(e.channel)
            tt = np.arange(max(1, int(round(e.duration_s * self.fs)))) / self.fs
            if hasattr(e, "frequency_hz"):
                edge = np.clip(np.minimum(tt, tt[-1] - tt) / 0.005, 0.0, 1.0)
                phase = self._r_emg_events.uniform(0, 2 * np.pi)
                wave = e.amplitude_uv * edge * np.sin(2 * np.pi * e.frequency_hz * tt + phase)
            else:
                r = self._r_emg_events
                k = max(1, r.poisson(e.rate_hz * e.duration_s))
                pad = int(0.01 * self.fs)
                wave = np.zeros(tt.size + pad)
                tw = np.arange(wave.size) / self.fs
                for at, w_ms, a in zip(r.uniform(0, e.duration_s, k), r.uniform(1, 3, k),
                                       r.uniform(0.5, 1.0, k) * r.choice([-1, 1], k),
                                       strict=True):
                    z = (tw - at - 2 * w_ms / 1e3) / (w_ms / 2e3)
                    wave += e.amplitude_uv * a * 1.6487 * z * np.exp(-0.5 * z * z)
            transients.append((start, [row], wave[None, :]))

    def _add_cautery(self, uv: np.ndarray, t: np.ndarray) -> None:
        for e in self._cautery:
            if e.at_s >= t[-1] + 1 / self.fs or e.at_s + e.duration_s <= t[0]:
                continue
            rows = [self.channel_names.index(c) for c in e.channels] or list(
                range(len(self.channel_names)))
            inside = (t >= e.at_s) & (t < e.at_s + e.duration_s)
            ramp = 0.02  # 20 ms on/off edges
            env = np.clip(np.minimum(t - e.at_s, e.at_s + e.duration_s - t) / ramp, 0.0, 1.0)
            k = int(inside.sum())
            burst = self._r_caut.standard_normal((k, len(rows))).T * e.amplitude_uv
            uv[np.ix_(rows, np.flatnonzero(inside))] += burst * env[inside][None, :]

"""Scenario files: what the simulated patient is like and what happens to it over time.

A scenario is TOML:

    name = "ssep-drop"
    duration_s = 0            # 0: endless; > 0: the simulated front end ends there
    [patient]                 # PatientSettings, every key optional
    eeg_rms_uv = 20.0
    [[event]]
    type = "amplitude"        # one of EVENT_TYPES
    at_s = 120.0
    site = "L median"
    component = "cortical"    # a component ("N20"), a role ("cortical") or "*"
    to_percent = 40.0
    ramp_s = 0.0

Every error names the file and the key, e.g. "ssep-drop.toml: event[1].to_percent: got -5 ...".
Levels (amplitude, latency, mains, noise) are piecewise linear in time: each event ramps the
level from wherever it is to its target; the latest event that applies wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.errors import ConfigError
from appliance.validate import _suggest, build, field, read_toml

ANY = "*"


@dataclass(frozen=True)
class PatientSettings:
    """The patient and the room, before anything happens. Defaults: docs/simulated-patient.md."""

    mains_hz: float = field(50.0, choices=(50, 60, 50.0, 60.0), help="local mains frequency")
    mains_uv: float = field(3.0, min=0.0, max=1e5, help="mains peak µV on a good electrode")
    eeg_rms_uv: float = field(25.0, min=0.0, max=1e4, help="scalp EEG broadband RMS µV")
    eeg_slope: float = field(1.6, min=0.2, max=1.9, help="EEG power spectrum falls as 1/f**slope")
    emg_rms_uv: float = field(2.0, min=0.0, max=1e4, help="EMG RMS µV at cervical/Erb/popliteal")
    muscle_emg_rms_uv: float = field(8.0, min=0.0, max=1e4, help="EMG RMS µV at muscle channels")
    noise_wander: float = field(0.15, min=0.0, max=1.0,
                                help="SD of the slow log-level wander of EEG/EMG (minutes)")
    amp_noise_uv: float = field(0.7, min=0.0, max=100.0, help="white amplifier+electrode noise RMS")
    offset_uv: float = field(3000.0, min=0.0, max=1e6, help="largest electrode DC offset µV")
    drift_uv: float = field(200.0, min=0.0, max=1e6, help="SD of the slow offset wander µV")
    drift_tau_s: float = field(30.0, min=0.1, max=3600.0, help="time constant of the wander")
    ecg_uv: float = field(15.0, min=0.0, max=1e5, help="R-wave µV at cervical/Erb channels")
    heart_rate_bpm: float = field(70.0, min=20.0, max=200.0)
    amplitude_jitter: float = field(0.15, min=0.0, max=1.0, help="sweep-to-sweep amplitude SD")
    latency_jitter_ms: float = field(0.2, min=0.0, max=5.0, help="sweep-to-sweep latency SD")
    mep_cv: float = field(0.4, min=0.0, max=2.0, help="tcMEP trial-to-trial amplitude CV")
    stim_jitter_ms: float = field(0.0, min=0.0, max=100.0, help="stimulus timing jitter, ±ms")
    stim_artefact_uv: float = field(20.0, min=0.0, max=1e5, help="stimulus artefact, peripheral")
    response_scale: float = field(1.0, min=0.0, max=100.0, help="scales every evoked response")


@dataclass(frozen=True)
class AmplitudeEvent:
    at_s: float = field(help="when the change starts (s since start)", min=0.0)
    to_percent: float = field(help="target amplitude, % of baseline", min=0.0, max=1000.0)
    site: str = field(ANY, help="site name or '*'")
    component: str = field(ANY, help="component (N20), role (cortical) or '*'")
    ramp_s: float = field(0.0, min=0.0, help="0: abrupt; else linear over this many seconds")


@dataclass(frozen=True)
class LatencyEvent:
    at_s: float = field(help="when the change starts", min=0.0)
    site: str = field(ANY, help="site name or '*'")
    component: str = field(ANY, help="component (N20), role (cortical) or '*'")
    to_percent: float = field(100.0, min=10.0, max=1000.0, help="target latency, % of baseline")
    shift_ms: float = field(0.0, min=-50.0, max=100.0, help="plus this many ms")
    ramp_s: float = field(0.0, min=0.0)


@dataclass(frozen=True)
class FadeEvent:
    at_s: float = field(help="when the fade starts", min=0.0)
    pct_per_h: float = field(help="cortical/muscle amplitude lost, % of baseline per hour",
                             min=0.0, max=1000.0)
    latency_pct_per_h: float = field(0.0, min=0.0, max=1000.0, help="cortical latency gain %/h")
    until_s: float = field(0.0, min=0.0, help="fade stops (level holds) here; 0: never")


@dataclass(frozen=True)
class LeadOffEvent:
    at_s: float = field(help="electrode comes off", min=0.0)
    channel: str = field(help="channel name")
    until_s: float = field(0.0, min=0.0, help="electrode back on; 0: never")


STIM_LOSS_MODES = ("no_trigger", "no_response")


@dataclass(frozen=True)
class StimulusLossEvent:
    at_s: float = field(help="stimulation fails", min=0.0)
    site: str = field(help="site name or '*'")
    mode: str = field("no_response", choices=STIM_LOSS_MODES,
                      help="no_trigger: stimulator silent; no_response: trigger, no response")
    until_s: float = field(0.0, min=0.0, help="stimulation back; 0: never")


@dataclass(frozen=True)
class CauteryEvent:
    at_s: float = field(help="electrocautery starts", min=0.0)
    duration_s: float = field(2.0, min=0.01, max=3600.0)
    amplitude_uv: float = field(3000.0, min=0.0, max=1e7, help="broadband RMS µV")
    channels: tuple[str, ...] = field([], help="channels it reaches; empty: all")


@dataclass(frozen=True)
class MovementEvent:
    at_s: float = field(help="patient or cable moves", min=0.0)
    duration_s: float = field(1.0, min=0.01, max=60.0)
    amplitude_uv: float = field(800.0, min=0.0, max=1e7, help="peak µV of the transient")
    channels: tuple[str, ...] = field([], help="channels it reaches; empty: all")


@dataclass(frozen=True)
class LevelEvent:
    at_s: float = field(help="when the change starts", min=0.0)
    to_percent: float = field(help="target level, % of the patient setting", min=0.0, max=1e5)
    ramp_s: float = field(0.0, min=0.0)


@dataclass(frozen=True)
class StallEvent:
    at_s: float = field(help="front end stops delivering samples", min=0.0)
    duration_s: float = field(0.0, min=0.0, help="0: never resumes")


@dataclass(frozen=True)
class DropoutEvent:
    at_s: float = field(help="front end loses samples here", min=0.0)
    samples: int = field(help="how many samples are lost", min=1, max=10_000_000)


@dataclass(frozen=True)
class EegSlowingEvent:
    at_s: float = field(help="when the EEG change starts (e.g. carotid clamp)", min=0.0)
    fast_to_percent: float = field(help="EEG above 8 Hz, % of its amplitude", min=0.0,
                                   max=1000.0)
    channels: tuple[str, ...] = field([], help="channels it reaches; empty: all")
    ramp_s: float = field(0.0, min=0.0, help="0: abrupt; else linear over this many seconds")


@dataclass(frozen=True)
class ATrainEvent:
    at_s: float = field(help="A-train starts (nerve irritation)", min=0.0)
    channel: str = field(help="EMG channel")
    duration_s: float = field(0.5, min=0.005, max=600.0)
    frequency_hz: float = field(120.0, min=20.0, max=500.0, help="A-trains: ~60-210 Hz")
    amplitude_uv: float = field(100.0, min=0.0, max=1e5, help="peak µV (100-200 µV typical)")


@dataclass(frozen=True)
class EmgBurstEvent:
    at_s: float = field(help="burst (or spike, when short) of motor-unit discharges", min=0.0)
    channel: str = field(help="EMG channel")
    duration_s: float = field(0.1, min=0.001, max=60.0, help="<= ~10 ms: a single spike")
    amplitude_uv: float = field(200.0, min=0.0, max=1e5, help="peak µV of a discharge")
    rate_hz: float = field(80.0, min=1.0, max=1000.0, help="mean (Poisson) discharge rate")


@dataclass(frozen=True)
class ScrewEvent:
    at_s: float = field(help="the probe touches this screw/target from here", min=0.0)
    channel: str = field(help="myotome recording channel that responds")
    threshold_ma: float = field(help="current that evokes a response (breach: low)", min=0.1,
                                max=200.0)
    until_s: float = field(0.0, min=0.0, help="probe leaves; 0: never")
    trigger_bit: int = field(1, min=0, max=15, help="trigger bit of the probe's stimulator")
    amplitude_uv: float = field(300.0, min=0.0, max=1e5, help="full response peak-to-peak")
    latency_ms: float = field(12.0, min=1.0, max=100.0, help="response onset after the pulse")


EVENT_TYPES: dict[str, type] = {
    "amplitude": AmplitudeEvent,
    "latency": LatencyEvent,
    "fade": FadeEvent,
    "lead_off": LeadOffEvent,
    "stimulus_loss": StimulusLossEvent,
    "cautery": CauteryEvent,
    "movement": MovementEvent,
    "mains": LevelEvent,
    "noise": LevelEvent,
    "stall": StallEvent,
    "dropout": DropoutEvent,
    "eeg_slowing": EegSlowingEvent,
    "a_train": ATrainEvent,
    "emg_burst": EmgBurstEvent,
    "screw": ScrewEvent,
}


@dataclass(frozen=True)
class Scenario:
    name: str = field("stable", help="short name")
    description: str = field("", help="what happens, for people")
    duration_s: float = field(0.0, min=0.0, help="0: endless; else the source ends here")
    patient: PatientSettings = field(PatientSettings())
    events: tuple[tuple[str, Any], ...] = ()  # (type, event dataclass), in file order

    def of_type(self, *types: str) -> list[tuple[int, Any]]:
        """(index in the file, event) of the given types, sorted by time."""
        out = [(i, ev) for i, (t, ev) in enumerate(self.events) if t in types]
        return sorted(out, key=lambda ie: ie[1].at_s)

    def check_names(self, site_names: list[str], channel_names: list[str], where: str = "") -> None:
        """Every site and channel an event names must exist (ConfigError naming the key)."""
        pre = f"{where}: " if where else ""
        for i, (_, ev) in enumerate(self.events):
            site = getattr(ev, "site", ANY)
            if site != ANY and site not in site_names:
                raise ConfigError(f"{pre}event[{i}].site: got {site!r}, allowed: '*' or one of "
                                  f"{site_names}.{_suggest(site, site_names)}")
            chans = list(getattr(ev, "channels", ())) + (
                [ev.channel] if hasattr(ev, "channel") else [])
            for ch in chans:
                if ch not in channel_names:
                    raise ConfigError(f"{pre}event[{i}].channel: got {ch!r}, allowed: one of "
                                      f"{channel_names}.{_suggest(ch, channel_names)}")


def from_dict(data: dict[str, Any], where: str = "scenario") -> Scenario:
    """Validate a parsed scenario table; errors name `where` and the key."""
    try:
        data = dict(data)
        raw_events = data.pop("event", [])
        if "events" in data:
            raise ConfigError("events: unknown key; write each event as an [[event]] table.")
        if not isinstance(raw_events, list):
            raise ConfigError(f"event: got {raw_events!r}, allowed: a list of [[event]] tables.")
        head = build(Scenario, data, "")
        events = []
        for i, raw in enumerate(raw_events):
            path = f"event[{i}]"
            if not isinstance(raw, dict):
                raise ConfigError(f"{path}: got {raw!r}, allowed: a table.")
            raw = dict(raw)
            kind = raw.pop("type", None)
            if kind not in EVENT_TYPES:
                allowed = ", ".join(repr(k) for k in EVENT_TYPES)
                raise ConfigError(f"{path}.type: got {kind!r}, allowed: {allowed}."
                                  + _suggest(kind, EVENT_TYPES))
            events.append((kind, build(EVENT_TYPES[kind], raw, path)))
            _check_event(kind, events[-1][1], path)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return Scenario(head.name, head.description, head.duration_s, head.patient, tuple(events))


def _check_event(kind: str, ev: Any, path: str) -> None:
    until = getattr(ev, "until_s", 0.0)
    if until and until <= ev.at_s:
        raise ConfigError(f"{path}.until_s: got {until}, allowed: 0 (never) or > at_s ({ev.at_s}).")


def load_scenario(path: str | Path) -> Scenario:
    return from_dict(read_toml(path, "scenario"), Path(path).name)


class Track:
    """A level (percent) that is piecewise linear in time, built from (at_s, ramp_s, target)
    steps applied in time order; `value(t_s)` works on scalars and arrays."""

    def __init__(self, steps: list[tuple[float, float, float]], start: float = 100.0) -> None:
        t, v = [0.0], [start]
        for at_s, ramp_s, target in sorted(steps, key=lambda s: s[0]):
            now = float(np.interp(at_s, t, v))
            keep = [i for i, ti in enumerate(t) if ti < at_s]
            t, v = [t[i] for i in keep] + [at_s], [v[i] for i in keep] + [now]
            t.append(at_s + max(ramp_s, 1e-9))
            v.append(target)
        self.t, self.v = np.array(t), np.array(v)

    def value(self, t_s: float | np.ndarray) -> float | np.ndarray:
        return np.interp(t_s, self.t, self.v)

    @property
    def constant(self) -> bool:
        return bool(np.all(self.v == self.v[0]))


def matches(ev: Any, site: str, component: str, role: str) -> bool:
    """Does an amplitude/latency event apply to this site's component?"""
    s_ok = ev.site in (ANY, site)
    c_ok = ev.component in (ANY, component, role)
    return s_ok and c_ok


def active(ev: Any, t_s: float) -> bool:
    """Is an interval event (lead_off, stimulus_loss) in force at t_s?"""
    return ev.at_s <= t_s and (not ev.until_s or t_s < ev.until_s)

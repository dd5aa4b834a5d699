"""Case family B: a continuous two-site median-nerve SSEP case simulator written independently of
the project's simulated patient (appliance/frontend/simulated), to validate detection on data
it was not developed on (issue 12, goal 6). Physiology and artefacts from the literature, with
generators, response shapes and artefact models of its own (docs/detection.md, "Family B"):

- responses: asymmetric raised-cosine lobes (not Gaussians). Erb's point N9 as a triphasic
  compound action potential, cervical P11/N13, scalp far-field P14 and subcortical N18, cortical
  N20/P25/N35/P45 (the cortical ones change; P14/N18 are generated below the cortex and stay).
  Sweep to sweep: log-normal amplitude, Gaussian latency jitter, and a slow amplitude wander.
- stimuli: two sites at ~4.7 Hz, starting half a period apart, every inter-stimulus interval
  jittered ±5 % independently per site (no phase lock to the mains; the sites' relative phase
  wanders); one trigger bit per site, one sample wide.
- background: EEG as white noise through interleaved log-spaced real poles and zeros (a
  1/f^a spectrum, a = 1.7 on the scalp, flatter at the neck and Erb), partly common to the
  scalp channels (shared Fz), an
  alpha resonator (second order), white amplifier noise. The in-band (30-1000 Hz) level is set
  analytically from those spectra so that a 300-sweep average's ± residual is ~0.15 µV on a
  2 µV N20-P25 ("lower"); "higher" doubles EEG and amplifier noise.
- interference and artefacts: mains (60 Hz by default) with odd/even harmonics and a wandering
  amplitude; ECG (QRS + T, heart rate variability with respiratory sinus arrhythmia); electrode
  offsets, slow drift and offset steps ("pops") with exponential recovery; cautery bursts
  (broadband, pulsed, tens of mV, clipped at the ADC's full scale and flagged saturated);
  movement transients; the stimulus artefact.
- changes, at a known time on one site: a drop to `to_ratio` (abrupt or over `ramp_s`), loss,
  an N20 latency rise of `latency_pct`; anaesthetic fade (`fade_per_h`) on every site.

`generate(case, seed)` yields 1-s `Chunk`s (the stream does not depend on how it is consumed);
`render` concatenates them; `write_bdf` stores a case as BDF+ for `ionm replay`; `truth(case)`
is the ground truth; `site_dicts()` / `config(case)` the site config that matches the channels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import signal

FS_HZ = 4000
RATE_HZ = 4.7
ISI_JITTER = 0.05  # ± fraction of the period, uniform
CHANNELS = ("C3'-Fz", "C4'-Fz", "Cv5-Fz", "Erb-L", "Erb-R")
SITE_CHANNELS = {"L median": ("C4'-Fz", "Cv5-Fz", "Erb-L"),
                 "R median": ("C3'-Fz", "Cv5-Fz", "Erb-R")}
SITE_BITS = {"L median": 0, "R median": 1}
CORTICAL = {"L median": "C4'-Fz", "R median": "C3'-Fz"}
IPSI_SCALP = {"L median": "C3'-Fz", "R median": "C4'-Fz"}
# ADS1299 at gain 24: +-VREF/gain = +-4.5 V / 24 (datasheet, SBAS499); beyond it the ADC clips
ADC_FULL_SCALE_UV = 187_500.0
N20_P25_UV = 2.0  # baseline N20-P25 of the conditioned (30-1000 Hz) noiseless average
RESIDUAL_300_UV = 0.15  # "lower" noise: ± residual of a 300-sweep conditioned average
N20_LATENCY_MS = 19.6
RESPONSE_MS = 90.0  # support of one response after the stimulus
BAND_HZ = (30.0, 1000.0)

# (name, latency ms, amplitude (relative), rise ms, fall ms): each lobe rises as a half
# raised cosine over `rise` and falls over `fall`, so widths are asymmetric like real peaks
# (N20 FWHM ~3.5 ms, P25 ~6 ms under anaesthesia)
CORTICAL_LOBES = (("N20", N20_LATENCY_MS, -1.0, 3.4, 3.6), ("P25", 25.2, 1.05, 4.2, 7.0),
                  ("N35", 33.5, -0.55, 5.0, 9.0), ("P45", 45.0, 0.45, 8.0, 14.0))
FAR_FIELD_LOBES = (("P14", 14.2, 0.12, 1.4, 1.6), ("N18", 18.0, -0.25, 2.0, 11.0))
CERVICAL_LOBES = (("P11", 11.0, 0.3, 1.2, 1.0), ("N13", 13.2, -2.0, 1.6, 3.2),
                  ("P18c", 18.5, 0.4, 3.0, 6.0))
ERB_LOBES = (("P8", 8.2, 0.45, 0.8, 0.8), ("N9", 9.6, -3.0, 0.9, 1.4),
             ("P11e", 11.3, 0.9, 1.3, 2.2))


@dataclass(frozen=True)
class Case:
    """One family-B case. change: "none" | "drop" | "latency" (a loss is a drop to 0)."""

    name: str
    change: str = "none"
    to_ratio: float = 1.0  # cortical amplitude after the change, fraction of baseline
    latency_pct: float = 0.0  # N20 latency rise, % of baseline (the cortical complex moves)
    ramp_s: float = 0.0  # 0: abrupt
    change_at_s: float | None = None
    fade_per_h: float = 0.0  # anaesthetic fade of every cortical response, fraction per hour
    noise: str = "lower"  # "lower" | "higher" (doubled EEG and amplifier noise)
    duration_s: float = 1500.0
    site: str = "L median"  # the site that changes
    mains_hz: float = 60.0
    artefacts: bool = True  # cautery, movement, electrode pops
    # scale of the far-field P14/N18 on the scalp channels (0: a derivation that cancels them,
    # as CPc-CPi does; the cortical gain is re-set so that N20-P25 stays N20_P25_UV)
    far_field: float = 1.0

    def __post_init__(self) -> None:
        if self.change not in ("none", "drop", "latency"):
            raise ValueError(f"family B case {self.name!r}: change {self.change!r} is not one "
                             "of none, drop, latency")
        if self.noise not in NOISE_SCALE:
            raise ValueError(f"family B case {self.name!r}: noise {self.noise!r} is not one of "
                             f"{sorted(NOISE_SCALE)}")
        if self.change != "none" and self.change_at_s is None:
            raise ValueError(f"family B case {self.name!r}: a {self.change} needs change_at_s")
        if self.site not in SITE_CHANNELS:
            raise ValueError(f"family B case {self.name!r}: site {self.site!r} is not one of "
                             f"{sorted(SITE_CHANNELS)}")

    @property
    def onset_s(self) -> float | None:
        return self.change_at_s if self.change != "none" else None

    @property
    def drop(self) -> float:
        """Fraction of the amplitude lost at the change (0 for latency and stable cases)."""
        return 1.0 - self.to_ratio if self.change == "drop" else 0.0


NOISE_SCALE = {"lower": 1.0, "higher": 2.0}


def standard_cases(quick: bool = False, duration_s: float = 1500.0,
                   change_at_s: float = 900.0) -> list[Case]:
    """The issue's cases: 1500 s, change at 900 s on "L median"; stable and fades (the 30 %/h
    fade at both noise levels). `quick`:
    a 60 % drop, a loss and a stable case at the lower noise."""
    C = Case
    if quick:
        return [C("drop60-lower", "drop", 0.4, change_at_s=change_at_s, duration_s=duration_s),
                C("loss-lower", "drop", 0.0, change_at_s=change_at_s, duration_s=duration_s),
                C("stable-lower", duration_s=duration_s)]
    out: list[Case] = []
    for nz in ("lower", "higher"):
        kw = {"noise": nz, "duration_s": duration_s, "change_at_s": change_at_s}
        out += [C(f"drop50-{nz}", "drop", 0.5, **kw), C(f"drop60-{nz}", "drop", 0.4, **kw),
                C(f"drop60-ramp60s-{nz}", "drop", 0.4, ramp_s=60.0, **kw),
                C(f"loss-{nz}", "drop", 0.0, **kw),
                C(f"latency+12%-{nz}", "latency", latency_pct=12.0, **kw),
                C(f"stable-{nz}", noise=nz, duration_s=2 * duration_s)]
    out += [C("fade10%/h-lower", fade_per_h=0.1, duration_s=2 * duration_s),
            C("fade30%/h-lower", fade_per_h=0.3, duration_s=2 * duration_s),
            # the fastest fade at the higher noise too: the criteria's precision meets it there
            C("fade30%/h-higher", fade_per_h=0.3, noise="higher", duration_s=2 * duration_s)]
    return out


# -- ground truth ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Truth:
    """What the generator puts in: the cortical amplitude (fraction of baseline) and the N20
    latency shift (ms) of each site as functions of time (scalars or arrays)."""

    case: Case

    def _progress(self, t_s):
        c = self.case
        t = np.asarray(t_s, dtype=np.float64)
        if c.onset_s is None:
            return np.zeros_like(t)
        if c.ramp_s <= 0:
            return (t >= c.onset_s).astype(np.float64)
        return np.clip((t - c.onset_s) / c.ramp_s, 0.0, 1.0)

    def amplitude_ratio(self, t_s, site: str | None = None):
        c = self.case
        t = np.asarray(t_s, dtype=np.float64)
        fade = np.maximum(1.0 - c.fade_per_h * t / 3600.0, 0.0)
        if (site or c.site) != c.site or c.change != "drop":
            return fade
        return fade * (1.0 - (1.0 - c.to_ratio) * self._progress(t))

    def latency_shift_ms(self, t_s, site: str | None = None):
        """Shift of the N20 peak of the (conditioned, noiseless) average, ms."""
        c = self.case
        if (site or c.site) != c.site or c.change != "latency":
            return np.zeros_like(np.asarray(t_s, dtype=np.float64))
        return c.latency_pct / 100.0 * n20_peak_ms(c.far_field) * self._progress(t_s)

    def cortical_shift_ms(self, t_s, site: str | None = None):
        """Shift the generator applies to the cortical lobes for that N20 peak shift (the
        unchanged subcortical N18 underneath pulls the peak back a little)."""
        c = self.case
        if c.change != "latency" or not c.latency_pct:
            return self.latency_shift_ms(t_s, site)
        return self.latency_shift_ms(t_s, site) * _cortical_per_peak_shift(c.latency_pct,
                                                                            c.far_field)

    def latency_ratio(self, t_s, site: str | None = None):
        return 1.0 + self.latency_shift_ms(t_s, site) / n20_peak_ms(self.case.far_field)

    def to_json(self) -> dict:
        c = self.case
        return {"onset_s": c.onset_s, "change": c.change, "to_ratio": c.to_ratio,
                "latency_pct": c.latency_pct, "ramp_s": c.ramp_s, "site": c.site,
                "fade_per_h": c.fade_per_h}


def truth(case: Case) -> Truth:
    return Truth(case)


# -- config ------------------------------------------------------------------------------------

def site_dicts() -> list[dict]:
    """The two sites as `[[analysis.sites]]` tables (channel roles come from the names)."""
    return [{"name": s, "modality": "ssep_upper", "channels": list(chs),
             "trigger_bit": SITE_BITS[s], "rate_hz": RATE_HZ}
            for s, chs in SITE_CHANNELS.items()]


def config(case: Case | None = None, **analysis):
    """A Config for these channels and sites, notch at the case's mains; `analysis` overrides."""
    from appliance import config as cfgmod

    mains = case.mains_hz if case is not None else 60.0
    return cfgmod.from_dict({
        "frontend": {"channels": list(CHANNELS), "sample_rate_hz": FS_HZ},
        "analysis": {"sites": site_dicts(), "notch_hz": mains, **analysis},
    })


# -- response shapes ---------------------------------------------------------------------------

def _lobes(t_ms: np.ndarray, lobes, shift_ms=0.0, scale=1.0) -> np.ndarray:
    """Sum of asymmetric raised-cosine lobes at t_ms (any shape); shift/scale broadcast."""
    out = np.zeros(np.broadcast_shapes(np.shape(t_ms), np.shape(shift_ms), np.shape(scale)))
    for _, lat, amp, rise, fall in lobes:
        x = t_ms - (lat + shift_ms)
        w = np.where(x < 0, rise, fall)
        u = np.clip(np.abs(x) / w, 0.0, 1.0)
        out += amp * np.cos(0.5 * np.pi * u) ** 2
    return out * scale


def _conditioned(x: np.ndarray) -> np.ndarray:
    """30-1000 Hz zero-phase band-pass of a response on a padded grid (what the monitor's
    default conditioning does to it)."""
    sos = signal.butter(2, BAND_HZ, btype="bandpass", fs=FS_HZ, output="sos")
    pad = int(0.1 * FS_HZ)
    y = signal.sosfiltfilt(sos, np.r_[np.zeros(pad), x, np.zeros(pad)])
    return y[pad:-pad]


@lru_cache(maxsize=4)
def cortical_gain(far_field: float = 1.0) -> float:
    """Scale of CORTICAL_LOBES giving a conditioned N20-P25 of N20_P25_UV (far field included,
    as the monitor measures it)."""
    t = response_t_ms()
    raw = _lobes(t, CORTICAL_LOBES)
    ff = far_field * _lobes(t, FAR_FIELD_LOBES)
    # N20-P25 is linear in the cortical gain g only through the peaks' positions: iterate
    g = 1.0
    for _ in range(4):
        y = _conditioned(g * raw + ff)
        n20 = y[(t >= 15) & (t <= 23)].min()
        p25 = y[(t >= 22) & (t <= 30)].max()
        g *= N20_P25_UV / (p25 - n20)
    return g


def _n20_peak(y: np.ndarray) -> float:
    """Latency (ms) of the minimum in 15-26 ms, parabolic interpolation between samples."""
    t = response_t_ms()
    idx = np.flatnonzero((t >= 15) & (t <= 26))
    i = idx[np.argmin(y[idx])]
    a, b, c = y[i - 1], y[i], y[i + 1]
    den = a - 2 * b + c
    return float(t[i] + (0.5 * (a - c) / den if den else 0.0) * 1e3 / FS_HZ)


def _cortical_response(shift_ms: float, far_field: float = 1.0) -> np.ndarray:
    t = response_t_ms()
    return _conditioned(_lobes(t, CORTICAL_LOBES, shift_ms, cortical_gain(far_field))
                        + far_field * _lobes(t, FAR_FIELD_LOBES))


@lru_cache(maxsize=4)
def n20_peak_ms(far_field: float = 1.0) -> float:
    """Baseline N20 peak latency of the conditioned noiseless cortical average."""
    return _n20_peak(_cortical_response(0.0, far_field))


@lru_cache(maxsize=8)
def _cortical_per_peak_shift(latency_pct: float, far_field: float = 1.0) -> float:
    """Cortical-lobe shift per ms of N20 peak shift, for a rise of latency_pct (bisection)."""
    base = n20_peak_ms(far_field)
    want = latency_pct / 100.0 * base
    lo, hi = 0.0, 3.0 * want
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _n20_peak(_cortical_response(mid, far_field)) - base < want else (
            lo, mid)
    return 0.5 * (lo + hi) / want


def response_t_ms() -> np.ndarray:
    return np.arange(int(RESPONSE_MS * FS_HZ / 1e3)) * 1e3 / FS_HZ


def mean_response(case: Case, site: str, channel: str, t_s: float = 0.0,
                  conditioned: bool = True) -> np.ndarray:
    """The noiseless response (µV, on response_t_ms()) of `site` on `channel` at t_s: the
    "known template" of the sequential bound."""
    t = response_t_ms()
    tr = truth(case)
    y = np.zeros_like(t)
    if channel == CORTICAL[site]:
        y = (_lobes(t, CORTICAL_LOBES, float(tr.cortical_shift_ms(t_s, site)),
                    cortical_gain(case.far_field) * float(tr.amplitude_ratio(t_s, site)))
             + case.far_field * _lobes(t, FAR_FIELD_LOBES))
    elif channel == IPSI_SCALP[site]:
        y = 0.5 * case.far_field * _lobes(t, FAR_FIELD_LOBES)
    elif channel == "Cv5-Fz":
        y = _lobes(t, CERVICAL_LOBES)
    elif channel == SITE_CHANNELS[site][2]:
        y = _lobes(t, ERB_LOBES)
    return _conditioned(y) if conditioned else y


# -- background --------------------------------------------------------------------------------

N_SOURCES = 6  # C3' own, C4' own, scalp common (Fz), Cv5, Erb-L, Erb-R
# mixing of the sources into the channels, rows = CHANNELS; the scalp channels share 35 % of
# their EEG power through the common reference
_COMMON = math.sqrt(0.35)
_OWN = math.sqrt(0.65)
MIX = np.array([[_OWN, 0, _COMMON, 0, 0, 0],
                [0, _OWN, _COMMON, 0, 0, 0],
                [0, 0, 0.3, 0.8, 0, 0],
                [0, 0, 0, 0, 0.6, 0],
                [0, 0, 0, 0, 0, 0.6]])
SLOPES = (1.7, 1.7, 1.7, 1.2, 0.9, 0.9)  # spectral exponent a of each source (muscle flatter)
WHITE_UV = 0.9  # amplifier + electrode noise, rms over 0-2 kHz
# the rest of the in-band (per-sweep) noise budget beside EEG and amplifier noise: ECG, mains
# harmonics, the far-field of the other site; estimated from the models below
OTHER_INBAND_UV = 0.6
PINK_POLES_HZ = np.geomspace(0.5, 1500.0, 9)  # ratio 3 between neighbours


@lru_cache(maxsize=8)
def pink_sos(slope: float) -> np.ndarray:
    """White noise -> 1/f^slope power: log-spaced real poles, each followed by a zero
    ratio^(slope/2) above it (the interleaved pole-zero approximation), by bilinear transform."""
    ratio = PINK_POLES_HZ[1] / PINK_POLES_HZ[0]
    p = -2 * np.pi * PINK_POLES_HZ
    z = p * ratio ** (slope / 2.0)
    zd, pd, k = signal.bilinear_zpk(z, p, 1.0, FS_HZ)
    sos = signal.zpk2sos(zd, pd, k)
    _, h = signal.sosfreqz(sos, worN=[10.0], fs=FS_HZ)
    sos[0, :3] /= abs(h[0])  # unit gain at 10 Hz
    return sos


@lru_cache(maxsize=8)
def eeg_inband_gain(slope: float) -> float:
    """rms in 30-1000 Hz (the zero-phase band-pass included) of unit white noise through
    pink_sos(slope)."""
    f = np.linspace(0.0, FS_HZ / 2, 40001)
    _, h = signal.sosfreqz(pink_sos(slope), worN=f, fs=FS_HZ)
    sos = signal.butter(2, BAND_HZ, btype="bandpass", fs=FS_HZ, output="sos")
    _, hb = signal.sosfreqz(sos, worN=f, fs=FS_HZ)
    # white noise of unit variance has one-sided PSD 2/FS_HZ; zero phase applies |H|^2 twice
    return float(np.sqrt(np.trapezoid(2.0 / FS_HZ * np.abs(h) ** 2 * np.abs(hb) ** 4, f)))


def scalp_eeg_inband_uv(noise: str) -> float:
    """Target in-band EEG rms per scalp channel for the residual target (lower noise), doubled
    for "higher"."""
    sweep_uv = RESIDUAL_300_UV * math.sqrt(300)
    white_inband = WHITE_UV * math.sqrt((BAND_HZ[1] - BAND_HZ[0]) / (FS_HZ / 2))
    eeg = math.sqrt(max(sweep_uv**2 - white_inband**2 - OTHER_INBAND_UV**2, 0.1))
    return eeg * NOISE_SCALE[noise]


@dataclass
class Chunk:
    """One second of the stream: data_uv (n_ch, n) µV, trigger (n,) uint16 (bit per site),
    saturated (n_ch, n) bool (the ADC clipped), first_sample."""

    data_uv: np.ndarray
    trigger: np.ndarray
    saturated: np.ndarray
    first_sample: int


@dataclass
class _Schedule:
    stim_s: dict[str, np.ndarray]
    amp_jit: dict[str, np.ndarray]
    lat_jit: dict[str, np.ndarray]
    periph_jit: dict[str, np.ndarray]
    beats_s: np.ndarray
    beat_amp: np.ndarray
    events: list[tuple[str, float, float, float, np.ndarray]]  # kind, t0, dur, amp, ch gains


def _schedule(case: Case, rng: np.random.Generator) -> _Schedule:
    dur = case.duration_s
    period = 1.0 / RATE_HZ
    stim_s, amp_jit, lat_jit, periph_jit = {}, {}, {}, {}
    for k, site in enumerate(SITE_CHANNELS):
        n = int(dur / period) + 2
        isi = period * (1 + rng.uniform(-ISI_JITTER, ISI_JITTER, n))
        t = 0.05 + k * period / 2 + np.cumsum(isi) - isi[0]
        t = t[t < dur - RESPONSE_MS / 1e3]
        stim_s[site] = t
        m = t.size
        # log-normal sweep amplitude (sd ~20 %) times a slow AR(1) wander (sd 5 %, ~90 s)
        rho = math.exp(-period / 90.0)
        e = rng.normal(0, 0.05 * math.sqrt(1 - rho**2), m)
        e[0] = rng.normal(0, 0.05)
        wander = signal.lfilter([1.0], [1.0, -rho], e)
        amp_jit[site] = np.exp(rng.normal(0, 0.2, m) - 0.02) * (1 + wander)
        lat_jit[site] = rng.normal(0, 0.35, m)
        periph_jit[site] = np.exp(rng.normal(0, 0.08, m))
    # heart: 62-84 bpm, 2.5 % beat-to-beat sd, respiratory sinus arrhythmia at 0.2-0.3 Hz
    hr = rng.uniform(62, 84)
    f_resp = rng.uniform(0.2, 0.3)
    beats, t = [], rng.uniform(0, 1)
    while t < dur:
        beats.append(t)
        rr = 60 / hr * (1 + 0.04 * math.sin(2 * math.pi * f_resp * t) + rng.normal(0, 0.025))
        t += max(rr, 0.3)
    beats_s = np.array(beats)
    beat_amp = 1 + rng.normal(0, 0.05, beats_s.size)
    events: list[tuple[str, float, float, float, np.ndarray]] = []
    if case.artefacts:
        n_ch = len(CHANNELS)
        for kind, mean_gap_s, dur_lo, dur_hi, amp_lo, amp_hi in (
                ("cautery", 200.0, 1.0, 8.0, 3e3, 3e5), ("movement", 400.0, 0.4, 2.5, 150, 1500),
                ("pop", 240.0, 0.0, 0.0, 200, 3000)):
            t = rng.exponential(mean_gap_s)
            while t < dur:
                d = rng.uniform(dur_lo, dur_hi)
                a = math.exp(rng.uniform(math.log(amp_lo), math.log(amp_hi)))
                gains = (rng.uniform(0.5, 1.0, n_ch) if kind != "pop"
                         else np.eye(n_ch)[rng.integers(n_ch)] * rng.choice([-1, 1]))
                events.append((kind, t, d, a, gains))
                t += d + rng.exponential(mean_gap_s)
    return _Schedule(stim_s, amp_jit, lat_jit, periph_jit, beats_s, beat_amp, events)


def _ecg_beat(t_s: np.ndarray) -> np.ndarray:
    """One beat (R peak at 0), relative to the R wave: Q, R, S and a broad T."""
    t_ms = t_s * 1e3
    return _lobes(t_ms, (("Q", -22, -0.12, 8, 6), ("R", 0, 1.0, 10, 9), ("S", 14, -0.3, 8, 14),
                         ("T", 260, 0.3, 90, 110)))


ECG_UV = np.array([6.0, 7.0, 25.0, 40.0, 30.0])  # R wave per channel: scalp-Fz small
MAINS_UV = np.array([8.0, 10.0, 15.0, 20.0, 18.0])  # fundamental per channel
MAINS_HARMONICS = ((2, 0.05), (3, 0.1), (4, 0.02), (5, 0.04))  # (k, fraction of fundamental)
STIM_ARTEFACT_UV = {"ipsi_erb": 40.0, "other": 6.0}
OFFSET_UV = 6000.0  # largest electrode DC offset
DRIFT_UV = 300.0  # sd of the slow offset wander


def _rngs(seed: int) -> list[np.random.Generator]:
    """schedule, EEG, white, mains, drift, artefact noise: each source its own stream."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence([seed, 0xB]).spawn(6)]


def artefact_events(case: Case, seed: int) -> list[tuple[str, float, float, float]]:
    """(kind, start s, duration s, amplitude µV) of the case's cautery, movement and pops."""
    return [e[:4] for e in _schedule(case, _rngs(seed)[0]).events]


def generate(case: Case, seed: int, background: bool = True) -> Iterator[Chunk]:
    """The case's stream in 1-s chunks (seeded; every random source has its own generator).
    background=False: the stimulus-locked part alone (responses with their sweep-to-sweep
    variability, stimulus artefacts), the same sweeps as with it: what `channel_ratio` reads."""
    r_sched, r_eeg, r_white, r_mains, r_drift, r_art = _rngs(seed)
    sch = _schedule(case, r_sched)
    tr = truth(case)
    n_ch = len(CHANNELS)
    n_total = int(round(case.duration_s * FS_HZ))
    scale = NOISE_SCALE[case.noise]
    # EEG: per source white noise through its 1/f^a filter, scaled to the in-band target
    target = scalp_eeg_inband_uv(case.noise)
    src_gain = np.array([target / eeg_inband_gain(a) for a in SLOPES])[:, None]
    pinks = [pink_sos(a) for a in SLOPES]
    z_eeg = []
    for sos in pinks:  # 5 s warm-up: start in the stationary state
        _, z = signal.sosfilt(sos, r_eeg.normal(0, 1, 5 * FS_HZ),
                              zi=np.zeros((sos.shape[0], 2)))
        z_eeg.append(z)
    alpha_hz = r_eeg.uniform(8.5, 11.0)
    a_rad = 2 * np.pi * alpha_hz / FS_HZ
    r_pole = math.exp(-np.pi * 1.5 / FS_HZ)  # ~1.5 Hz bandwidth
    alpha_a = [1.0, -2 * r_pole * math.cos(a_rad), r_pole**2]
    z_alpha = np.zeros((2, 2))
    alpha_uv = 12.0 * scale
    alpha_norm = math.sqrt((1 - r_pole**2) * (1 - r_pole**2) / 2)  # ~unit variance
    offsets = r_drift.uniform(-OFFSET_UV, OFFSET_UV, n_ch)
    # drift: white noise through a 60-s pole (an OU wander) and a 0.5-Hz pole (electrode
    # potentials move smoothly; without it the random walk's 1/f^2 tail would reach the band)
    rho_slow, rho_smooth = math.exp(-1 / (60.0 * FS_HZ)), math.exp(-2 * np.pi * 0.5 / FS_HZ)
    drift_sos = np.array([[math.sqrt(1 - rho_slow**2) * (1 - rho_smooth), 0, 0, 1, -rho_slow, 0],
                          [1, 0, 0, 1, -rho_smooth, 0]])
    z_drift = np.zeros((2, n_ch, 2))  # start in a stationary state d0 (direct form II t.)
    d0 = r_drift.normal(0, DRIFT_UV, n_ch)
    z_drift[0, :, 0] = rho_slow * (1 - rho_smooth) * d0
    z_drift[1, :, 0] = rho_smooth * d0
    mains_phase = r_mains.uniform(0, 2 * np.pi)
    mains_env_phase = r_mains.uniform(0, 2 * np.pi, n_ch)
    mains_f = case.mains_hz + r_mains.uniform(-0.02, 0.02)
    ecg_span = (-0.05, 0.45)
    events = sch.events
    for first in range(0, n_total, FS_HZ):
        n = min(FS_HZ, n_total - first)
        t = (first + np.arange(n)) / FS_HZ
        x = np.zeros((n_ch, n))
        t0, t1 = t[0], t[-1]
        if background:
            # EEG
            e = r_eeg.normal(0, 1, (N_SOURCES, n))
            src = np.empty((N_SOURCES, n))
            for k, sos in enumerate(pinks):
                src[k], z_eeg[k] = signal.sosfilt(sos, e[k], zi=z_eeg[k])
            x += MIX @ (src * src_gain)
            al, z_alpha = signal.lfilter([alpha_norm], alpha_a, r_eeg.normal(0, 1, (2, n)),
                                         axis=1, zi=z_alpha)
            x[:2] += alpha_uv * (0.7 * al[0] + 0.3 * al[1])
            x[2] += 0.3 * alpha_uv * al[1]
            x += r_white.normal(0, WHITE_UV * scale, (n_ch, n))
            # mains: one source (common phase), per-channel pick-up, slowly wandering amplitude
            ph = 2 * np.pi * mains_f * t + mains_phase
            m = np.sin(ph) + sum(frac * np.sin(k * ph + k) for k, frac in MAINS_HARMONICS)
            env = 1 + 0.2 * np.sin(2 * np.pi * t[0] / 97.0 + mains_env_phase)
            x += (MAINS_UV * env)[:, None] * m[None, :]
            # electrode offset and slow drift
            d, z_drift = signal.sosfilt(drift_sos, r_drift.normal(0, DRIFT_UV, (n_ch, n)),
                                        axis=1, zi=z_drift)
            x += offsets[:, None] + d
            # ECG
            for b, ba in zip(sch.beats_s, sch.beat_amp, strict=True):
                if b + ecg_span[1] < t0 or b + ecg_span[0] > t1:
                    continue
                i = slice(max(0, int((b + ecg_span[0] - t0) * FS_HZ)),
                          min(n, int((b + ecg_span[1] - t0) * FS_HZ) + 1))
                x[:, i] += ba * ECG_UV[:, None] * _ecg_beat(t[i] - b)[None, :]
        # responses and stimulus artefacts; trigger bits
        trig = np.zeros(n, np.uint16)
        for site in SITE_CHANNELS:
            _add_responses(x, trig, t, first, site, sch, tr)
        # artefacts
        for kind, ts, dur, amp, gains in events if background else ():
            if ts > t1 or ts + dur + 10.0 < t0:
                continue
            x += gains[:, None] * _artefact(kind, t - ts, dur, amp, r_art)[None, :]
        sat = np.abs(x) >= ADC_FULL_SCALE_UV
        np.clip(x, -ADC_FULL_SCALE_UV, ADC_FULL_SCALE_UV, out=x)
        yield Chunk(x, trig, sat, first)


def _artefact(kind: str, dt: np.ndarray, dur: float, amp: float,
              rng: np.random.Generator) -> np.ndarray:
    if kind == "cautery":  # pulsed broadband bursts (the generator's duty cycle), soft edges
        on = (dt >= 0) & (dt < dur)
        out = np.zeros(dt.size)
        if on.any():
            edge = np.clip(np.minimum(dt[on], dur - dt[on]) / 0.05, 0, 1)
            pulse = 0.6 + 0.4 * np.sign(np.sin(2 * np.pi * 13.0 * dt[on]))
            out[on] = amp * edge * pulse * rng.standard_normal(int(on.sum()))
        return out
    if kind == "movement":  # a slow swing and its return
        u = np.clip(dt / dur, 0, 1)
        return np.where((dt >= 0) & (dt < dur), amp * np.sin(np.pi * u) ** 2
                        * np.sin(2 * np.pi * u * 1.5), 0.0)
    # pop: an offset step that recovers over a few seconds
    return np.where(dt >= 0, amp * np.exp(-np.clip(dt, 0, None) / 3.0), 0.0)


def _add_responses(x: np.ndarray, trig: np.ndarray, t: np.ndarray, first: int, site: str,
                   sch: _Schedule, tr: Truth) -> None:
    n = t.size
    stim = sch.stim_s[site]
    t0, t1 = t[0], t[-1]
    sel = np.flatnonzero((stim <= t1) & (stim + RESPONSE_MS / 1e3 >= t0))
    if not sel.size:
        return
    i0 = np.round(stim[sel] * FS_HZ).astype(np.int64) - first  # stimulus sample in the chunk
    starts = i0[(i0 >= 0) & (i0 < n)]
    trig[starts] |= np.uint16(1 << SITE_BITS[site])
    k = np.arange(int(RESPONSE_MS * FS_HZ / 1e3))
    t_ms = k * 1e3 / FS_HZ
    amp = tr.amplitude_ratio(stim[sel], site) * sch.amp_jit[site][sel]
    shift = tr.cortical_shift_ms(stim[sel], site) + sch.lat_jit[site][sel]
    pj = sch.periph_jit[site][sel]
    cols = i0[:, None] + k[None, :]
    ok = (cols >= 0) & (cols < n)
    ch = {c: i for i, c in enumerate(CHANNELS)}
    ff = tr.case.far_field
    cort = (_lobes(t_ms[None, :], CORTICAL_LOBES, shift[:, None],
                   cortical_gain(ff) * amp[:, None])
            + _lobes(t_ms[None, :], FAR_FIELD_LOBES, 0.5 * sch.lat_jit[site][sel][:, None],
                     ff * pj[:, None]))
    ipsi = ff * pj[:, None] * _fixed("ipsi")[None, :]
    cerv = pj[:, None] * _fixed("cervical")[None, :]
    erb = pj[:, None] * _fixed("erb")[None, :]
    art = np.exp(-t_ms / 0.6)[None, :]
    erb_ch = SITE_CHANNELS[site][2]
    for name, wave in ((CORTICAL[site], cort), (IPSI_SCALP[site], ipsi), ("Cv5-Fz", cerv),
                       (erb_ch, erb)):
        a_uv = STIM_ARTEFACT_UV["ipsi_erb" if name == erb_ch else "other"]
        np.add.at(x[ch[name]], cols[ok], (wave + a_uv * art)[ok])


@lru_cache(maxsize=4)
def _fixed(which: str) -> np.ndarray:
    """Responses below the cortex: stable in latency (their jitter is a few tens of µs)."""
    lobes = {"ipsi": FAR_FIELD_LOBES, "cervical": CERVICAL_LOBES, "erb": ERB_LOBES}[which]
    return _lobes(response_t_ms(), lobes) * (0.5 if which == "ipsi" else 1.0)


def render(case: Case, seed: int, background: bool = True) -> Chunk:
    """The whole case in one Chunk (keep cases short: 4 kSPS x 5 channels x 8 bytes)."""
    parts = list(generate(case, seed, background))
    return Chunk(np.concatenate([p.data_uv for p in parts], axis=1),
                 np.concatenate([p.trigger for p in parts]),
                 np.concatenate([p.saturated for p in parts], axis=1), 0)


def write_bdf(case: Case, seed: int, path: str | Path) -> Path:
    """Store the case as BDF+ (the project's writer; trigger bits in 'Status', annotations for
    stimuli and the change) so that `ionm replay` runs it."""
    from appliance.frontend.bdf import BdfWriter

    path = Path(path)
    with BdfWriter(path, CHANNELS, FS_HZ, physical_max_uv=ADC_FULL_SCALE_UV,
                   recording=f"family-B {case.name} seed {seed}", fsync=False) as w:
        if case.onset_s is not None:
            w.annotate(case.onset_s, case.ramp_s, f"truth: {case.change} {case.site}")
        for c in generate(case, seed):
            w.write_samples(c.data_uv, c.trigger, c.first_sample)
    return path


@lru_cache(maxsize=16)
def _quiet_sweeps(case: Case, seed: int, site: str, channel: str) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    return conditioned_sweeps(render(case, seed, background=False), case, site, channel)


def channel_ratio(case: Case, seed: int, site: str, baseline_s: tuple[float, float],
                  measured_s: tuple[float, float], window_ms: tuple[float, float] = (16.0, 33.0),
                  channel: str | None = None) -> float:
    """What a perfect linear measure of `channel` (default: the site's cortical one) reads:
    the least-squares scale, over window_ms, of the noiseless average of the sweeps stimulated
    in measured_s on that of the sweeps in baseline_s (the same stimuli and sweep-to-sweep
    variability as `generate(case, seed)`, no background, no artefacts).

    It is not truth(case).amplitude_ratio: the channel also carries what a cortical change
    leaves alone. The far-field P14/N18 alone make a 40 % cortical response 0.45 of the
    channel's (0.08 for a loss, `mean_response`); the latency jitter, which smears the cortex
    more than the far field, and the slow amplitude wander of the sweeps in each span move it
    by a few hundredths more (0.48-0.50 and 0.11-0.12 on seeds 1-3)."""
    sw, ts = _quiet_sweeps(case, seed, site, channel or CORTICAL[site])
    t = np.arange(sw.shape[1]) * 1e3 / FS_HZ
    w = (t >= window_ms[0]) & (t <= window_ms[1])
    base = sw[(ts >= baseline_s[0]) & (ts < baseline_s[1])][:, w].mean(axis=0)
    now = sw[(ts >= measured_s[0]) & (ts < measured_s[1])][:, w].mean(axis=0)
    return float(now @ base / (base @ base))


def with_noise(case: Case, noise: str) -> Case:
    return replace(case, noise=noise, name=case.name.rsplit("-", 1)[0] + f"-{noise}")


def conditioned_sweeps(chunk: Chunk, case: Case, site: str, channel: str,
                       window_ms: tuple[float, float] = (0.0, 60.0)) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """Sweeps (k, n_times) of `channel` after `site`'s stimuli, conditioned as the monitor's
    default does (mains notch on the stream, 30-1000 Hz zero-phase band-pass), and their
    stimulus times (s). Sweeps beyond ±100 µV (the SSEP rejection level) are dropped."""
    from appliance.dsp.filters import bandpass_sos, notch_sos

    x = chunk.data_uv[CHANNELS.index(channel)]
    x = signal.sosfilt(notch_sos(case.mains_hz, FS_HZ), x - x[:FS_HZ].mean())
    x = signal.sosfiltfilt(bandpass_sos(*BAND_HZ, FS_HZ), x)
    stim = np.flatnonzero(chunk.trigger & (1 << SITE_BITS[site]))
    i0, i1 = (int(round(w * FS_HZ / 1e3)) for w in window_ms)
    stim = stim[(stim + i0 >= 0) & (stim + i1 <= x.size)]
    sweeps = x[stim[:, None] + np.arange(i0, i1)[None, :]]
    ok = np.max(np.abs(sweeps), axis=1) <= 100.0
    return sweeps[ok], stim[ok] / FS_HZ


def average_stats(sweeps: np.ndarray, window_ms: tuple[float, float] = (0.0, 60.0),
                  n_sweeps: int = 300) -> dict:
    """N20-P25 (fixed windows 15-23 / 22-30 ms) and the ± residual rms over 10-50 ms of
    consecutive `n_sweeps` averages (medians over the blocks)."""
    from appliance.dsp.quality import residual_noise_uv

    t = window_ms[0] + np.arange(sweeps.shape[1]) * 1e3 / FS_HZ
    w = (t >= 10) & (t < 50)
    pp, res = [], []
    for b in range(0, len(sweeps) - n_sweeps + 1, n_sweeps):
        s = sweeps[b:b + n_sweeps]
        avg = s.mean(axis=0)
        pp.append(avg[(t >= 22) & (t <= 30)].max() - avg[(t >= 15) & (t <= 23)].min())
        res.append(float(residual_noise_uv(s[:, None, :])[0] if w.all() else
                         residual_noise_uv(s[:, None, w])[0]))
    return {"n20_p25_uv": float(np.median(pp)), "residual_uv": float(np.median(res)),
            "n_blocks": len(pp)}

"""Analysis test helpers: a small synthetic evoked-potential stream with known ground truth, and
helpers to run it through the real Monitor block by block. (A uniquely named module, not
conftest.py: `from conftest import` resolves to whichever conftest was imported first.)"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from appliance import config
from appliance.frontend.block import SampleBlock

# Ground truth of the synthetic upper SSEP (Gaussian peaks, SD in ms)
N20 = {"latency_ms": 19.5, "amplitude_uv": -1.6, "sd_ms": 1.2}
P25 = {"latency_ms": 25.5, "amplitude_uv": 1.4, "sd_ms": 2.0}
N9 = {"latency_ms": 9.5, "amplitude_uv": -3.5, "sd_ms": 0.7}


@dataclass
class SynthSite:
    """Stimuli on `trigger_bit` every 1/rate_hz s; `components[channel]` = list of
    (latency_ms, amplitude_uv, sd_ms); `scale(t_s)` and `shift_ms(t_s)` change them over time;
    `stim_off(t_s)` True drops the stimulus entirely (stimulator failure)."""

    trigger_bit: int
    rate_hz: float
    components: dict[str, list[tuple[float, float, float]]]
    scale: Callable[[float], float] = lambda t: 1.0
    shift_ms: Callable[[float], float] = lambda t: 0.0
    stim_off: Callable[[float], bool] = lambda t: False
    peripheral: set[str] = field(default_factory=set)  # channels not scaled/shifted centrally
    peripheral_scale: Callable[[float], float] = lambda t: 1.0
    phase_s: float = 0.0


def synth_stream(channels: list[str], fs_hz: float, duration_s: float, sites: list[SynthSite],
                 noise_uv: float = 8.0, mains_uv: float = 5.0, seed: int = 3):
    """-> data_uv (n_ch, n), trigger (n,) uint16. Noise: white Gaussian + 50 Hz mains."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * fs_hz)
    t = np.arange(n) / fs_hz
    data = rng.normal(0.0, noise_uv, (len(channels), n))
    data += mains_uv * np.sin(2 * np.pi * 50.0 * t + rng.uniform(0, 6.28, (len(channels), 1)))
    trigger = np.zeros(n, dtype=np.uint16)
    k_ms = np.arange(int(0.12 * fs_hz)) / fs_hz * 1e3  # response support: 0..120 ms
    for s in sites:
        period = 1.0 / s.rate_hz
        # jitter-free rate that is not a subharmonic of the mains
        for t0 in np.arange(s.phase_s + 0.05, duration_s - 0.13, period):
            if s.stim_off(t0):
                continue
            i0 = int(round(t0 * fs_hz))
            trigger[i0] |= 1 << s.trigger_bit
            for ch, comps in s.components.items():
                c = channels.index(ch)
                periph = ch in s.peripheral
                g = s.peripheral_scale(t0) if periph else s.scale(t0)
                dt = 0.0 if periph else s.shift_ms(t0)
                wave = sum(a * np.exp(-0.5 * ((k_ms - lat - dt) / sd) ** 2)
                           for lat, a, sd in comps)
                data[c, i0:i0 + len(k_ms)] += g * wave
    return data, trigger


def blocks(data: np.ndarray, trigger: np.ndarray, fs_hz: float, block: int = 64):
    """SampleBlocks of `block` samples, as a front end would deliver them."""
    n = data.shape[1]
    for i in range(0, n, block):
        d = data[:, i:i + block]
        yield SampleBlock(d, trigger[i:i + block], np.zeros(d.shape, bool),
                          np.zeros(d.shape[0], bool), i, fs_hz, 0.0)


def run_monitor(mon, data, trigger, fs_hz, block: int = 400) -> list[dict]:
    out = []
    for b in blocks(data, trigger, fs_hz, block):
        for o in mon.push(b):
            d = o.to_json()
            d.setdefault("type", "condition")  # as `ionm replay` prints it
            out.append(d)
    return out


def upper_cfg(channels, sites: list[dict], fs_hz: int = 4000, **analysis) -> config.Config:
    return config.from_dict({
        "frontend": {"channels": channels, "sample_rate_hz": fs_hz},
        "analysis": {"sites": sites, **analysis},
    })


# Two median sites on the simulated patient (appliance.frontend.simulated), as the patient tests
# and the fast-detection tests use them
PATIENT_FS = 4000
PATIENT_CH = ["C3'-Fz", "C4'-Fz", "Cv5-Fz", "Erb-L", "Erb-R"]
PATIENT_SITES = [
    {"name": "L median", "modality": "ssep_upper", "channels": ["C4'-Fz", "Cv5-Fz", "Erb-L"],
     "trigger_bit": 0},
    {"name": "R median", "modality": "ssep_upper", "channels": ["C3'-Fz", "Cv5-Fz", "Erb-R"],
     "trigger_bit": 1},
]


def patient_conditions(cfg: config.Config, scenario, duration_s: float, seed: int):
    """Stream the simulated patient through a real Monitor in 1-s blocks; returns (every
    condition's JSON in order, the monitor)."""
    from appliance.analysis.monitor import Monitor
    from appliance.frontend.simulated.patient import Patient

    ch = list(cfg.frontend.channels)
    fs = cfg.frontend.sample_rate_hz
    p = Patient(ch, fs, cfg.analysis.sites, scenario=scenario, seed=seed)
    mon = Monitor(cfg)
    out, n = [], 0
    while n < duration_s * fs:
        uv, trig = p.generate(fs)
        blk = SampleBlock(uv, trig, np.zeros(uv.shape, bool), np.zeros(len(ch), bool), n, fs, 0)
        out += [j for j in (o.to_json() for o in mon.push(blk)) if "id" in j]
        n += fs
    return out, mon


"""Measure the simulated patient the way issue 7 defines its noise, so docs quote real numbers:

    python -m appliance.frontend.simulated.measure [--seconds 120] [--seeds 1 2 3] [--json]
    python -m appliance.frontend.simulated.measure --acquisition 30
    python -m appliance.frontend.simulated.measure --blocks

Per seed: EEG RMS (1-100 Hz) and SSEP-band RMS (30-1000 Hz) per channel; sigma_a, the per-sweep SD
of the amplitude estimated by projecting each conditioned sweep (30-1000 Hz band-pass plus 50 Hz
notch, zero phase) onto the true response shape, as a fraction of its amplitude; the sequential
bound n* = 2 ln(ARL0) sigma_a^2 / delta^2 for a 60 % drop (ARL0 = sweeps in 8 h) in seconds; and
how many times faster than real time the patient is generated. --acquisition: the delay of
blocks through the acquisition process (child read -> parent get_block), p50/p99/max.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy import signal

from appliance.frontend.simulated.patient import Patient
from appliance.frontend.simulated.responses import SSEP_UPPER, gaussian_wave
from appliance.settings.analysis import SiteSettings

CHANNELS = ("C3'-Fz", "C4'-Fz", "Cv5-Fz", "Erb-L", "Erb-R", "Cz'-Fz", "Pf-L", "Pf-R")
SITES = (SiteSettings("L median", "ssep_upper", ("C4'-Fz", "Cv5-Fz", "Erb-L"), 0, 4.7),
         SiteSettings("R median", "ssep_upper", ("C3'-Fz", "Cv5-Fz", "Erb-R"), 1, 4.7))


def measure(seed: int, seconds: float, fs: int = 4000) -> dict:
    p = Patient(CHANNELS, fs, SITES, seed=seed)
    t = time.perf_counter()
    uv, _ = p.generate(int(seconds * fs))
    speed = seconds / (time.perf_counter() - t)
    bp = signal.butter(2, [30, 1000], btype="bandpass", fs=fs, output="sos")
    b, a = signal.iirnotch(50.0, 30.0, fs)

    def cond(x: np.ndarray) -> np.ndarray:
        return signal.filtfilt(b, a, signal.sosfiltfilt(bp, x, axis=-1), axis=-1)

    x = cond(uv)
    eeg = signal.sosfiltfilt(signal.butter(2, [1, 100], "bandpass", fs=fs, output="sos"), uv)
    pre, post = int(0.01 * fs), int(0.05 * fs)
    stim = [e.sample for e in p.events if e.site == "L median" and pre < e.sample < uv.shape[1]
            - post]
    out = {"seed": seed, "seconds": seconds, "realtime_x": round(speed, 1),
           "eeg_rms_uv": dict(zip(CHANNELS, np.round(eeg.std(axis=1), 1).tolist(), strict=True)),
           "ssep_band_rms_uv": dict(zip(CHANNELS, np.round(x.std(axis=1), 2).tolist(),
                                        strict=True)),
           "sigma_a": {}, "n_star_60pct_s": {}}
    arl0 = 8 * 3600 * 4.7
    for ch, comps in (("C4'-Fz", ("N20", "P25")), ("Cv5-Fz", ("N13",)), ("Erb-L", ("N9",))):
        tmpl = np.zeros(pre + post + 2000)
        for c in comps:
            tr = p.truth("L median", c, 1.0)
            o, w = gaussian_wave(fs, tr.latency_ms, tr.amplitude_uv, tr.polarity,
                                 SSEP_UPPER[c].width_ms)
            tmpl[1000 + pre + o: 1000 + pre + o + len(w)] += w
        tf = cond(tmpl)[1000: 1000 + pre + post]
        ci = CHANNELS.index(ch)
        sweeps = np.array([x[ci, s - pre: s + post] for s in stim])
        a_k = sweeps @ tf / (tf @ tf)
        key = f"{ch} {'/'.join(comps)}"
        out["sigma_a"][key] = round(float(a_k.std()), 2)
        out["n_star_60pct_s"][key] = round(float(2 * np.log(arl0) * a_k.var() / 0.36 / 4.7), 1)
    return out


def acquisition_latency(seconds: float) -> dict:
    """Blocks through the acquisition process in real time (8 ch, 4 kSPS, 16 ms blocks): the
    delay from the child's read (block.t_monotonic_s) to the parent's get_block, and gaps."""
    from appliance import config
    from appliance.frontend.acquisition import Acquisition

    sites = [{"name": s.name, "modality": s.modality, "channels": list(s.channels),
              "trigger_bit": s.trigger_bit, "rate_hz": s.rate_hz} for s in SITES]
    cfg = config.from_dict({"frontend": {"sample_rate_hz": 4000, "block_ms": 16.0},
                            "analysis": {"sites": sites}})
    delays, n = [], 0
    with Acquisition(cfg) as acq:
        t_end = None
        while t_end is None or time.monotonic() < t_end:
            b = acq.get_block(0.5)
            if b is None:
                continue
            t_end = t_end or time.monotonic() + seconds
            delays.append(time.monotonic() - b.t_monotonic_s)
            n += b.n_samples
        h = acq.health()
    d_ms = np.array(delays) * 1000
    return {"blocks": len(delays), "samples": n, "missed_samples": h.missed_samples,
            "delay_ms_p50": round(float(np.percentile(d_ms, 50)), 2),
            "delay_ms_p99": round(float(np.percentile(d_ms, 99)), 2),
            "delay_ms_max": round(float(d_ms.max()), 2)}


def block_cost(seconds: float = 20.0) -> list[dict]:
    """SimulatedFrontEnd as fast as possible, 8 ch, 4 sites, 16 ms blocks: cost per block."""
    from appliance import config
    from appliance.frontend.simulated.frontend import SimulatedFrontEnd

    sites = [{"name": n, "modality": m, "channels": list(c), "trigger_bit": i, "rate_hz": r}
             for i, (n, m, c, r) in enumerate((
                 ("L median", "ssep_upper", ("C4'-Fz", "Cv5-Fz", "Erb-L"), 4.7),
                 ("R median", "ssep_upper", ("C3'-Fz", "Cv5-Fz", "Erb-R"), 4.7),
                 ("L tibial", "ssep_lower", ("Cz'-Fz", "Pf-L"), 2.3),
                 ("R tibial", "ssep_lower", ("Cz'-Fz", "Pf-R"), 2.3)))]
    rows = []
    for fs in (250, 4000, 16000):
        band = [30.0, min(1000.0, 0.4 * fs)]  # a band each rate can analyse (checked at load)
        cfg = config.from_dict({"frontend": {"sample_rate_hz": fs, "realtime": False},
                                "analysis": {"sites": [{**s, "band_hz": band} for s in sites]}})
        fe = SimulatedFrontEnd.from_config(cfg)
        fe.start()
        t, n, k = time.perf_counter(), 0, 0
        while n < seconds * fs:
            n += fe.read_block(0.1).n_samples
            k += 1
        dt = time.perf_counter() - t
        rows.append({"sample_rate_hz": fs, "realtime_x": round(n / fs / dt, 1),
                     "ms_per_16ms_block": round(dt / k * 1000, 3)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m appliance.frontend.simulated.measure",
                                 description=__doc__)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--acquisition", type=float, metavar="SECONDS",
                    help="instead: measure the acquisition process's block delay for SECONDS")
    ap.add_argument("--blocks", action="store_true",
                    help="instead: cost of a 16 ms simulated front-end block at 250/4k/16k SPS")
    args = ap.parse_args(argv)
    if args.blocks:
        print(json.dumps(block_cost()))
        return 0
    if args.acquisition:
        print(json.dumps(acquisition_latency(args.acquisition)))
        return 0
    rows = [measure(s, args.seconds) for s in args.seeds]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        print(f"seed {r['seed']}: {r['realtime_x']}x real time (8 ch, 4 kSPS)")
        print("  EEG RMS 1-100 Hz µV  ", r["eeg_rms_uv"])
        print("  RMS 30-1000 Hz µV    ", r["ssep_band_rms_uv"])
        print("  sigma_a              ", r["sigma_a"])
        print("  n* (60 % drop), s    ", r["n_star_60pct_s"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

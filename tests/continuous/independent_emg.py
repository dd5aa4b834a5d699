"""An independent family of free-running EMG and processed-EEG cases, written from the literature
without reading the project's simulated patient, to check that the detectors' claims are not an
artefact of the simulator they were tuned on (the project rule for every measured claim).

EMG (4 kSPS, µV), after Romstöck et al. 2000 (J Neurosurg 93:586) and Prell et al. 2007
(J Neurosurg 106:826):
- background: band-limited (20-500 Hz) Gaussian noise of a few µV RMS per channel, slow
  electrode drift (< 1 Hz, tens of µV), 50 Hz mains with its 3rd harmonic;
- A-trains: "sinusoidal, symmetric, high-frequency" sequences, 60-210 Hz, 100 µV-1 mV, 100 ms to
  seconds; here with 10-20 ms edges, 30 % amplitude modulation at 2-8 Hz, a slow frequency
  wander of +-4 % and per-cycle jitter, and a 15 % second harmonic - not clean sinusoids;
- bursts ("B-trains"): irregular runs of polyphasic motor-unit potentials, 20-400 ms;
- spikes: a single polyphasic potential;
- cautery: broadband noise of mV on every channel with a flickering envelope, 1-4 s;
- stimulus artefacts: 2-3 mV exponentially decaying biphasic pulses on every channel, with the
  trigger bit set on the pulse's sample (the stimulator is wired to the trigger input);
- movement: electrode-pop steps of a few hundred µV relaxing over 50-300 ms.

EEG (250 SPS): 1/f ("pink") background plus alpha (8-12 Hz) and beta (13-25 Hz) rhythms with
slowly varying amplitude; a clamp multiplies the power above 8 Hz on one (or both) sides by
`fast_power_factor` from a known time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import signal

from appliance import config
from appliance.analysis.monitor import Monitor
from appliance.frontend.block import SampleBlock

FS_EMG = 4000
FS_EEG = 250
EMG_CH = ["Orb-oc L", "Orb-or L", "Ment L", "Mass L"]
TRIGGER_BIT = 3


@dataclass
class Train:
    channel: int
    at_s: float
    duration_s: float
    freq_hz: float
    amplitude_uv: float  # peak


@dataclass
class EmgCase:
    data_uv: np.ndarray  # (n_ch, n)
    trigger: np.ndarray  # (n,) uint16
    trains: list[Train] = field(default_factory=list)
    duration_s: float = 0.0


def _band_noise(rng, n_ch: int, n: int, lo: float, hi: float, rms: float) -> np.ndarray:
    sos = signal.butter(4, [lo, hi], "bandpass", fs=FS_EMG, output="sos")
    x = signal.sosfilt(sos, rng.normal(0, 1, (n_ch, n + 2000)), axis=1)[:, 2000:]
    return x * (rms / x.std(axis=1, keepdims=True))


def _smooth(rng, n: int, cutoff_hz: float, fs: float) -> np.ndarray:
    """Zero-mean, unit-SD slowly varying random signal."""
    sos = signal.butter(2, cutoff_hz, fs=fs, output="sos")
    x = signal.sosfiltfilt(sos, rng.normal(0, 1, n + 200))[100:-100]
    return x / (x.std() + 1e-12)


def background(rng, n: int, rms_uv: float = 5.0) -> np.ndarray:
    n_ch = len(EMG_CH)
    t = np.arange(n) / FS_EMG
    x = _band_noise(rng, n_ch, n, 20.0, 500.0, rms_uv)
    for c in range(n_ch):
        x[c] += 30.0 * _smooth(rng, n, 0.5, FS_EMG)  # electrode drift
        ph = rng.uniform(0, 2 * np.pi, 2)
        x[c] += 8.0 * np.sin(2 * np.pi * 50.0 * t + ph[0])  # mains and its 3rd harmonic
        x[c] += 2.0 * np.sin(2 * np.pi * 150.0 * t + ph[1])
    return x


def a_train(rng, tr: Train) -> np.ndarray:
    n = int(tr.duration_s * FS_EMG)
    t = np.arange(n) / FS_EMG
    wander = 1.0 + 0.04 * np.clip(_smooth(rng, n, 3.0, FS_EMG), -2, 2) / 2
    jitter = 0.03 * rng.normal(0, 1, n)  # per-sample phase noise, radians
    phase = 2 * np.pi * np.cumsum(tr.freq_hz * wander) / FS_EMG + np.cumsum(jitter) * 0.05
    am = 1.0 + 0.3 * np.sin(2 * np.pi * rng.uniform(2, 8) * t + rng.uniform(0, 6.3))
    edge = int(rng.uniform(0.010, 0.020) * FS_EMG)
    env = np.ones(n)
    env[:edge] = np.linspace(0, 1, edge)
    env[-edge:] = np.linspace(1, 0, edge)
    wave = np.sin(phase) + 0.15 * np.sin(2 * phase + rng.uniform(0, 6.3))
    return tr.amplitude_uv / 1.15 * am / 1.3 * env * wave


def muap(rng, amplitude_uv: float) -> np.ndarray:
    """A polyphasic motor-unit potential: a sum of 2-4 Gaussian derivatives, 3-12 ms."""
    width = int(rng.uniform(0.003, 0.012) * FS_EMG)
    k = np.arange(width) - width / 2
    w = np.zeros(width)
    for _ in range(rng.integers(2, 5)):
        sd = rng.uniform(0.0004, 0.0015) * FS_EMG
        mu = rng.uniform(-width / 4, width / 4)
        g = np.exp(-0.5 * ((k - mu) / sd) ** 2)
        w += rng.choice([-1, 1]) * rng.uniform(0.4, 1.0) * np.gradient(g)
    return amplitude_uv * w / np.abs(w).max()


def burst(rng, duration_s: float, amplitude_uv: float) -> np.ndarray:
    """Irregular discharges: intervals 5-40 ms (exponential), several units of varying size."""
    n = int(duration_s * FS_EMG) + int(0.015 * FS_EMG)
    x = np.zeros(n)
    units = [muap(rng, amplitude_uv * rng.uniform(0.3, 1.0)) for _ in range(rng.integers(2, 5))]
    t = 0.0
    while t < duration_s:
        u = units[rng.integers(len(units))]
        i = int(t * FS_EMG)
        seg = x[i:i + len(u)]
        seg += u[:len(seg)] * rng.uniform(0.7, 1.3)
        t += 0.005 + rng.exponential(0.015)
    return x


def cautery(rng, n: int, rms_uv: float) -> np.ndarray:
    n_ch = len(EMG_CH)
    x = _band_noise(rng, n_ch, n, 5.0, 1900.0, rms_uv)
    flicker = np.clip(1.0 + 0.5 * _smooth(rng, n, 20.0, FS_EMG), 0.05, None)
    return x * flicker


def stim_artefact(rng, amplitude_uv: float) -> np.ndarray:
    k = np.arange(int(0.012 * FS_EMG)) / FS_EMG
    pulse = np.exp(-k / 0.0015) - 0.6 * np.exp(-k / 0.004)
    pulse[:2] = [1.0, -0.8]
    return amplitude_uv * pulse * rng.uniform(0.8, 1.2)


def add(x: np.ndarray, c: int | slice, at: int, w: np.ndarray) -> None:
    seg = x[c, at:at + w.shape[-1]]
    seg += w[..., :seg.shape[-1]]


def train_case(seed: int, n_trains: int = 12, gap_s: float = 2.0) -> EmgCase:
    """A-trains (100 ms-3 s, 60-210 Hz, 100 µV-1 mV peak, log-uniform) one at a time on random
    channels over background, each followed by `gap_s` of background, with a burst or spike
    somewhere in every gap (they must not be A-trains)."""
    rng = np.random.default_rng(seed)
    trains, t = [], 1.5  # the background estimate settles first
    for _ in range(n_trains):
        d = float(np.exp(rng.uniform(np.log(0.1), np.log(3.0))))
        trains.append(Train(int(rng.integers(len(EMG_CH))), t, d,
                            float(rng.uniform(60, 210)),
                            float(np.exp(rng.uniform(np.log(100), np.log(1000))))))
        t += d + gap_s
    n = int(t * FS_EMG)
    x = background(rng, n)
    for tr in trains:
        add(x, tr.channel, int(tr.at_s * FS_EMG), a_train(rng, tr))
        gap0 = tr.at_s + tr.duration_s + 0.5
        if rng.random() < 0.5:
            add(x, int(rng.integers(len(EMG_CH))), int(gap0 * FS_EMG),
                burst(rng, rng.uniform(0.02, 0.4), rng.uniform(80, 400)))
        else:
            add(x, int(rng.integers(len(EMG_CH))), int(gap0 * FS_EMG), muap(rng, 300.0))
    return EmgCase(x, np.zeros(n, np.uint16), trains, t)


def artefact_case(seed: int, duration_s: float) -> EmgCase:
    """No A-train: bursts, spikes, cautery, stimulus artefacts (single pulses at 2-5 Hz, trigger
    wired) and movement, packed densely (every second has one or more)."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * FS_EMG)
    x = background(rng, n)
    trig = np.zeros(n, np.uint16)
    t = 1.5
    while t < duration_s - 5.0:
        kind = rng.choice(["burst", "spike", "cautery", "stim", "movement"])
        i = int(t * FS_EMG)
        if kind == "burst":
            for c in rng.choice(len(EMG_CH), rng.integers(1, 3), replace=False):
                add(x, int(c), i, burst(rng, rng.uniform(0.02, 0.6), rng.uniform(80, 600)))
            t += rng.uniform(0.7, 1.5)
        elif kind == "spike":
            add(x, int(rng.integers(len(EMG_CH))), i, muap(rng, rng.uniform(100, 800)))
            t += rng.uniform(0.2, 0.6)
        elif kind == "cautery":
            d = rng.uniform(1.0, 4.0)
            m = int(d * FS_EMG)
            add(x, slice(None), i, cautery(rng, m, rng.uniform(800, 5000)))
            t += d + rng.uniform(0.3, 1.0)
        elif kind == "stim":
            d = rng.uniform(1.0, 3.0)
            rate = rng.uniform(2.0, 5.0)
            for ts in np.arange(t, t + d, 1.0 / rate):
                j = int(ts * FS_EMG)
                trig[j] |= 1 << TRIGGER_BIT
                add(x, slice(None), j, np.tile(stim_artefact(rng, rng.uniform(2000, 3000)),
                                               (len(EMG_CH), 1)))
            t += d + 0.2
        else:  # movement: an electrode pop on one channel
            c = int(rng.integers(len(EMG_CH)))
            k = np.arange(int(0.4 * FS_EMG)) / FS_EMG
            add(x, c, i, rng.choice([-1, 1]) * rng.uniform(200, 800)
                * np.exp(-k / rng.uniform(0.05, 0.3)))
            t += rng.uniform(0.3, 1.0)
    return EmgCase(x, trig, [], duration_s)


def emg_cfg(**emg) -> config.Config:
    return config.from_dict({
        "frontend": {"channels": EMG_CH, "sample_rate_hz": FS_EMG},
        "analysis": {"emg_free": {"channels": EMG_CH, **emg}},
    })


def run(cfg, data: np.ndarray, trigger: np.ndarray, fs: float, block: int):
    """-> [(arrival time s = end of the block that produced it, output JSON)]."""
    mon = Monitor(cfg)
    out = []
    for i in range(0, data.shape[1], block):
        d = data[:, i:i + block]
        blk = SampleBlock(d, trigger[i:i + block], np.zeros(d.shape, bool),
                          np.zeros(d.shape[0], bool), i, float(fs), 0.0)
        t_arr = (i + d.shape[1]) / fs
        out += [(t_arr, o.to_json()) for o in mon.push(blk)]
    return out


def score_emg(case: EmgCase, out) -> dict:
    """Sensitivity: a true train is detected when an `emg.a_train:<its channel>` condition is
    raised between its onset and its end; the delay is from its onset to that condition's
    arrival. False: any A-train condition or A-train onset event not inside a true train (on its
    channel, its onset - 0.05 s to its end + 0.1 s)."""
    def inside(ch: str, t: float) -> int | None:
        return next((k for k, tr in enumerate(case.trains) if EMG_CH[tr.channel] == ch
                     and tr.at_s - 0.05 <= t <= tr.at_s + tr.duration_s + 0.1), None)

    delay_ms: dict[int, float] = {}
    false = 0
    for t_arr, o in out:
        cid = o.get("id", "")
        if cid.startswith("emg.a_train:") and o.get("active"):
            k = inside(cid.split(":", 1)[1], t_arr)
            if k is None:
                false += 1
            elif k not in delay_ms:
                delay_ms[k] = (t_arr - case.trains[k].at_s) * 1e3
        elif o.get("kind") == "a_train" and o.get("phase") == "onset":
            false += inside(o["channel"], o["t_s"]) is None
    d = np.array(list(delay_ms.values()) or [0.0])
    missed = [case.trains[k] for k in range(len(case.trains)) if k not in delay_ms]
    return {"trains": len(case.trains), "detected": len(delay_ms),
            "sensitivity": len(delay_ms) / max(len(case.trains), 1),
            "false_a_trains": false, "hours": case.duration_s / 3600.0,
            "delay_ms_median": float(np.median(d)), "delay_ms_max": float(np.max(d)),
            "missed": missed}


# --- EEG ---------------------------------------------------------------------------------------

EEG_CH = ["C3-Fz", "C4-Fz"]


def eeg_case(seed: int, duration_s: float, change_s: float, sides: tuple[int, ...],
             fast_power_factor: float) -> np.ndarray:
    """Left/right EEG (µV): 1/f background (~20 µV RMS) + alpha and beta rhythms with slowly
    varying amplitude; from `change_s` the power above 8 Hz on `sides` is multiplied by
    `fast_power_factor` (a split at 8 Hz with a zero-phase filter pair that sums to the input)."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * FS_EEG)
    t = np.arange(n) / FS_EEG
    f = np.fft.rfftfreq(n, 1 / FS_EEG)
    out = np.zeros((2, n))
    for c in range(2):
        spec = rng.normal(0, 1, f.size) + 1j * rng.normal(0, 1, f.size)
        spec[1:] /= np.sqrt(f[1:])
        spec[0] = 0
        pink = np.fft.irfft(spec, n)
        out[c] = 20.0 * pink / pink.std()
        out[c] += 12.0 * (1 + 0.3 * _smooth(rng, n, 0.2, FS_EEG)) * np.sin(
            2 * np.pi * np.cumsum(10.0 + 0.5 * _smooth(rng, n, 0.3, FS_EEG)) / FS_EEG)
        beta = signal.sosfiltfilt(signal.butter(4, [13, 25], "bandpass", fs=FS_EEG,
                                                output="sos"), rng.normal(0, 1, n))
        out[c] += 6.0 * beta / beta.std()
        if c in sides:
            sos = signal.butter(6, 8.0, "highpass", fs=FS_EEG, output="sos")
            fast = signal.sosfiltfilt(sos, out[c])
            g = np.where(t >= change_s, np.sqrt(fast_power_factor), 1.0)
            out[c] = out[c] - fast + g * fast
    return out


def eeg_cfg(baseline_s: float = 30.0) -> config.Config:
    return config.from_dict({
        "frontend": {"channels": EEG_CH, "sample_rate_hz": FS_EEG},
        "analysis": {"eeg": {"left": [EEG_CH[0]], "right": [EEG_CH[1]],
                             "baseline_s": baseline_s}},
    })


def eeg_conditions(data: np.ndarray) -> list[tuple[float, dict]]:
    out = run(eeg_cfg(), data, np.zeros(data.shape[1], np.uint16), FS_EEG, 32)
    return [(t, o) for t, o in out if "id" in o and o.get("type", "condition") == "condition"]


def measure(minutes_artefacts: float = 10.0, train_cases: int = 8) -> dict:
    """The long measurement for docs/continuous.md (minutes, not a test)."""
    cfg = emg_cfg(trigger_mask=1 << TRIGGER_BIT)
    tr = [score_emg(c, run(cfg, c.data_uv, c.trigger, FS_EMG, 64))
          for c in (train_case(100 + s, 12) for s in range(train_cases))]
    n = sum(s["trains"] for s in tr)
    det = sum(s["detected"] for s in tr)
    art = [score_emg(c, run(cfg, c.data_uv, c.trigger, FS_EMG, 64))
           for c in (artefact_case(200 + s, 60.0) for s in range(int(minutes_artefacts)))]
    hours = sum(s["hours"] for s in art)
    false = sum(s["false_a_trains"] for s in art)
    return {"trains": n, "detected": det, "sensitivity": round(det / n, 4),
            "false_in_train_cases": sum(s["false_a_trains"] for s in tr),
            "delay_ms_median": round(float(np.median([s["delay_ms_median"] for s in tr])), 1),
            "delay_ms_max": round(max(s["delay_ms_max"] for s in tr), 1),
            "artefact_hours": round(hours, 3), "false_a_trains": false,
            "missed": [m for s in tr for m in s["missed"]]}


def _reraised(conds: list[tuple[float, dict]]) -> int:
    """How often a condition was raised again after it had cleared."""
    state: dict[str, bool] = {}
    n = 0
    for _, o in conds:
        n += bool(o["active"] and state.get(o["id"]) is False)
        state[o["id"]] = o["active"]
    return n


def measure_eeg(n_seeds: int = 20) -> dict:
    """The EEG measurement for docs/continuous.md: seeds 0..n-1, 120 s, change at 50 s."""
    bil_global_first = bil_one_sided = reraised = other = stable = 0
    delays: list[float] = []
    for seed in range(n_seeds):
        c = eeg_conditions(eeg_case(seed, 120.0, 50.0, (0, 1), 0.4))
        bil_global_first += bool(c) and c[0][1]["id"] == "eeg.global_change"
        bil_one_sided += bool({o["id"] for _, o in c} - {"eeg.global_change"})
        reraised += _reraised(c)
        for side in (0, 1):
            cid = f"eeg.fast_loss:{'LR'[side]}"
            c = eeg_conditions(eeg_case(seed, 120.0, 50.0, (side,), 0.4))
            t = next((t for t, o in c if o["id"] == cid and o["active"]), None)
            if t is not None and t <= 70.0:
                delays.append(t - 50.0)
            other += bool({o["id"] for _, o in c} - {cid})
            reraised += _reraised(c)
        stable += bool(eeg_conditions(eeg_case(seed, 120.0, 1e9, (0, 1), 0.4)))
    return {"seeds": n_seeds, "bilateral_global_first": bil_global_first,
            "bilateral_one_sided": bil_one_sided, "one_sided_within_20_s": len(delays),
            "one_sided_cases": 2 * n_seeds,
            "delay_s_median": round(float(np.median(delays)), 1),
            "delay_s_max": round(max(delays), 1), "one_sided_other_conditions": other,
            "reraised": reraised, "stable_with_condition": stable}


def measure_stim_tails(seeds=(200, 201, 202)) -> dict:
    """Spike/burst events within 30 ms after a stimulus pulse, with and without the adaptive
    blank extension (docs/continuous.md, "Stimulus artefact tails")."""
    out: dict = {"pulses": 0, "near_pulses": {0.0: 0, 15.0: 0}, "events": {0.0: 0, 15.0: 0}}
    for seed in seeds:
        case = artefact_case(seed, 60.0)
        pulses = np.flatnonzero(case.trigger) / FS_EMG
        out["pulses"] += len(pulses)
        for ext in (0.0, 15.0):
            cfg = emg_cfg(trigger_mask=1 << TRIGGER_BIT, blank_extend_ms=ext)
            ev = [o for _, o in run(cfg, case.data_uv, case.trigger, FS_EMG, 64)
                  if o.get("kind") in ("spike", "burst")]
            out["events"][ext] += len(ev)
            out["near_pulses"][ext] += sum(bool(np.any(
                (o["t_s"] - pulses >= -0.01) & (o["t_s"] - pulses <= 0.03))) for o in ev)
    return out


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["eeg"]:
        print(measure_eeg())
    elif sys.argv[1:2] == ["stim"]:
        print(measure_stim_tails())
    else:
        print(measure(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0))

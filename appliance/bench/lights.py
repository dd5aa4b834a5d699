"""`ionm bench lights`: how steady the red flash is while the averaging core runs flat out.

The lights thread drives a recording backend showing a high-priority alarm (2 Hz, 50 %). We
measure every period and on-time from the recorded transitions, first with the interpreter idle,
then while another thread runs the dsp core (streaming band-pass, epoching, averaging) in a tight
loop. Jitter is |measured - nominal|; the peer is the idle run of the same process. A third run
puts the lights in their own process (LightsProcess, file backend, SCHED_FIFO where allowed)
under the same load.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from appliance.alarms.events import Display
from appliance.conditions import Priority
from appliance.config import from_dict
from appliance.outputs.gpio import RecordingBackend, flash_timing, read_transitions
from appliance.outputs.lights import Lights
from appliance.outputs.lights_process import LightsProcess

HIGH = Display(highest=Priority.HIGH, highest_physiological=Priority.HIGH, audio=Priority.HIGH)
FS_HZ = 16000.0
N_CH = 8


def dsp_load(stop: threading.Event, loops: list[int]) -> None:
    """The averaging core in a loop: filter 0.25 s blocks of 8 channels at 16 kHz, cut sweeps
    around 20 stimuli per block, average them."""
    from appliance.dsp.averagers import CumulativeAverager
    from appliance.dsp.epochs import Epocher
    from appliance.dsp.filters import StreamingFilter, bandpass_sos

    rng = np.random.default_rng(1)
    n = int(FS_HZ / 4)
    filt = StreamingFilter(bandpass_sos(30.0, 3000.0, FS_HZ), N_CH)
    epocher = Epocher(pre_samples=160, post_samples=1600, n_channels=N_CH)
    avg = CumulativeAverager(N_CH, epocher.n_times)
    block = rng.standard_normal((N_CH, n)) * 10.0
    first = 0
    while not stop.is_set():
        y = filt.process(block)
        events = first + np.arange(200, n, n // 20, dtype=np.int64)
        sweeps, _ = epocher.push(y, first, events)
        if len(sweeps):
            avg.add(sweeps)
        first += n
        loops[0] += 1


def _record_in_thread(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    backend = RecordingBackend()
    with Lights(backend, {"red": 17}) as lights:
        t0 = time.monotonic()
        lights.show(HIGH)
        time.sleep(seconds)
    return backend.flash_timing("red", t0)


def _record_in_process(seconds: float, info: dict) -> tuple[np.ndarray, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lights.jsonl"
        path.touch()
        settings = from_dict({"lights": {"backend": "file", "file_path": str(path)}}).lights
        with LightsProcess(settings) as lights:
            info["priority"] = lights.priority()
            lights.show(HIGH)
            deadline = time.monotonic() + 30.0
            while not read_transitions(path, "red")[1:] and time.monotonic() < deadline:
                time.sleep(0.05)  # child still starting
            time.sleep(seconds)
        return flash_timing(read_transitions(path, "red"))


def measure(seconds: float, loaded: bool, process: bool = False) -> dict[str, float]:
    stop = threading.Event()
    loops = [0]
    worker = None
    if loaded:
        worker = threading.Thread(target=dsp_load, args=(stop, loops), daemon=True)
        worker.start()
        time.sleep(0.2)  # let it get going
    t_start = time.monotonic()
    try:
        info: dict[str, str] = {"priority": "thread of this process"}
        if process:
            period_s, duty = _record_in_process(seconds, info)
        else:
            period_s, duty = _record_in_thread(seconds)
    finally:
        stop.set()
        if worker is not None:
            worker.join(timeout=5)
    on_s = duty * period_s
    jitter_ms = 1000 * np.concatenate([np.abs(period_s - 0.5), np.abs(on_s - 0.25)])
    return {
        "p99_ms": float(np.percentile(jitter_ms, 99)),
        "max_ms": float(jitter_ms.max()),
        "period_ms_mean": float(1000 * period_s.mean()),
        "duty_mean": float(duty.mean()),
        "n_periods": int(period_s.size),
        "load_loops_per_s": loops[0] / (time.monotonic() - t_start),
        "priority": info["priority"],
    }


def run(quick: bool) -> dict:
    seconds = 3.0 if quick else 20.0
    idle = measure(seconds, loaded=False)
    loaded = measure(seconds, loaded=True)
    in_process = measure(seconds, loaded=True, process=True)
    return {
        "lights_jitter_idle_ms_p99": round(idle["p99_ms"], 3),
        "lights_jitter_loaded_ms_p99": round(loaded["p99_ms"], 3),
        "lights_jitter_loaded_ms_max": round(loaded["max_ms"], 3),
        "lights_jitter_ratio_loaded_vs_idle": round(
            loaded["p99_ms"] / max(idle["p99_ms"], 1e-3), 2
        ),
        "lights_period_loaded_ms_mean": round(loaded["period_ms_mean"], 3),
        "lights_duty_loaded_mean": round(loaded["duty_mean"], 4),
        "lights_periods_measured": idle["n_periods"] + loaded["n_periods"],
        "lights_dsp_load_blocks_per_s": round(loaded["load_loops_per_s"], 1),
        "lights_process_jitter_loaded_ms_p99": round(in_process["p99_ms"], 3),
        "lights_process_jitter_loaded_ms_max": round(in_process["max_ms"], 3),
        "lights_thread_vs_process_loaded_ratio": round(
            loaded["p99_ms"] / max(in_process["p99_ms"], 1e-3), 1
        ),
        "lights_process_priority": in_process["priority"],
    }

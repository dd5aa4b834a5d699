"""`ionm bench acquisition`: the ADS1299 per-sample read loop, Python reader vs compiled reader,
both against the same C chip model (own clock, overwrites, mixed bytes on a late read, SPI bus
time at SCLK), while the rest of the appliance (`ionm demo`: simulated patient, analysis,
recording, MQTT) runs in another process.

acq_{python,compiled,compiled_normal}_cost_us_p50/_p99_4k
        µs per sample from the DRDY wait returning to the next wait (SPI bus time included)
acq_{python,compiled}_wake_us_p50/_p99_4k
        µs from the DRDY edge to the loop running (the scheduler's share of the budget)
acq_{python,compiled,compiled_normal}_overhead_us_p50_4k
        the cost less the SPI bus time (27 bytes at SCLK_HZ): what the loop itself spends
acq_{python,compiled}_lossfree_max_sps, _lossfree_rates
        highest rate of RATES (and all rates) with no lost and no wrong sample in its run
acq_{python,compiled}_lost_ppm_<rate>, _wrong_<rate>
        lost conversions per million, and delivered frames that differ from their conversion
acq_cost_ratio_python_over_compiled_p50_4k
        the two loops measured in the same run
"compiled" runs SCHED_FIFO where permitted (acq_compiled_sched says), "compiled_normal" the
same loop under normal scheduling, "python" is reader.PythonFrameReader (a normal thread).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from appliance.frontend.ads1299.compiled import (
    DEFAULT_PRIORITY,
    LOSS_KINDS,
    CompiledReader,
    ModelChip,
    compiled_available,
    compiled_unavailable_reason,
    model_pattern,
)
from appliance.frontend.ads1299.reader import PythonFrameReader

RATES = (1000, 2000, 4000, 8000, 16000, 32000)
SCLK_HZ = 16_000_000  # a 27-byte frame in 13.5 µs: 16 kSPS needs >= ~8 MHz (docs/ads1299.md)
FRAME_BYTES = 27
BUS_US = FRAME_BYTES * 8 / SCLK_HZ * 1e6  # the model's bus time per read, inside the cost
TRIG = (97, 3)
INTERRUPTED_US = 20.0  # a read this much over its bus time lost the CPU mid-read (soak)
SLOW_WAKE_US = 100.0  # a wake-up this late is the machine's tail, not the loop (soak)


class _TimedDrdy:
    """Wraps a Drdy to time the Python loop: from each wait returning to the next wait."""

    def __init__(self, drdy: object) -> None:
        self._d = drdy
        self.clock_ns = drdy.clock_ns  # type: ignore[attr-defined]
        self.sequence = 0
        self.timestamp_ns = 0
        self.cost_ns: list[int] = []
        self.wake_ns: list[int] = []
        self._woke = 0

    def wait(self, timeout_s: float) -> bool:
        now = time.monotonic_ns()
        if self._woke:
            self.cost_ns.append(now - self._woke)
        ok = self._d.wait(timeout_s)  # type: ignore[attr-defined]
        self._woke = time.monotonic_ns() if ok else 0
        if ok:
            d = self._d
            self.sequence, self.timestamp_ns = d.sequence, d.timestamp_ns  # type: ignore[attr-defined]
            self.wake_ns.append(self._woke - self.timestamp_ns)
        return ok

    def close(self) -> None:
        pass


def _drain_all(reader: object, rate: int, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    raws, seqs = [], []
    block = max(1, rate // 60)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        b = reader.drain(block, 0.1)  # type: ignore[attr-defined]
        raws.append(b.raw), seqs.append(b.seq)
    reader.stop()  # type: ignore[attr-defined]
    b = reader.drain(1 << 30, 0.0)  # type: ignore[attr-defined]
    raws.append(b.raw), seqs.append(b.seq)
    return np.concatenate(raws), np.concatenate(seqs)


def _score(raw: np.ndarray, seq: np.ndarray, first_seqno: int, last_seq: int,
           n_chips: int = 1) -> dict:
    want = model_pattern(seq + first_seqno - 1, n_chips, FRAME_BYTES, *TRIG)
    wrong = int(np.count_nonzero((raw != want).any(axis=1))) if len(seq) else 0
    wrong += int(np.count_nonzero(np.diff(seq) <= 0))  # duplicates / reordering
    total = last_seq + 1
    return {"lost": total - len(seq), "total": total, "wrong": wrong}


def _compiled(rate: int, seconds: float, priority: int = DEFAULT_PRIORITY, n_chips: int = 1,
              sclk_hz: int = SCLK_HZ, cpu: int | None = None, trace: bool = False,
              events_path: str = "") -> dict:
    r = CompiledReader(n_chips, FRAME_BYTES, rate, sclk_hz, backend="model", priority=priority,
                       trigger_period=TRIG[0], trigger_width=TRIG[1], cpu=cpu, sched_trace=trace)
    r.start()
    raw, seq = _drain_all(r, rate, seconds)
    c = r.counts()
    out = _score(raw, seq, c["first_seqno"], c["last_seq"], n_chips)
    out["cost_us"], out["wake_us"] = r.cost_us(), r.wake_us()
    out["sched"] = str(r.info()["sched"])
    if trace:
        out["latency"] = r.latency()
        ev = r.loss_events()
        if events_path:
            np.save(events_path, ev)
        out["why"] = why_lost(ev, rate, n_chips * FRAME_BYTES * 8e6 / sclk_hz,
                               r.deadline_ns / 1e3)
        out["counts"] = {k: c[k] for k in ("overwritten", "late", "ring_overflow", "spi_errors")}
    return out


def why_lost(ev: np.ndarray, rate: int, bus_us: float, deadline_us: float) -> dict:
    """Each read that found a loss (`reads`; one read can find overwritten conversions and be
    late itself), against the machine: `held_off` = the loop started running (from the oldest
    unread DRDY edge) too late for even an instant loop to read in time (wake > deadline - bus
    time); `interrupted` = it woke in time but its read (wake -> done, normally the bus time)
    took over INTERRUPTED_US more than the bus time: the thread lost its CPU mid-read;
    `slow_wake` = neither, but it woke over SLOW_WAKE_US after the edge (p99 here is tens of
    µs) with a read a little stretched; `by_loop` = none of these (woke and read as usual, still
    lost: the design's share).
    `wake_over_period` = woke more than a period after the oldest unread edge; `runq` = the
    thread was runnable but not running (schedstat run_delay since the previous read) for at
    least half of its wake + read time, i.e. another task held the CPU; the rest of a delay is
    timer or hypervisor latency (the vCPU not running)."""
    if ev.size == 0:
        return {"reads": 0}
    by_kind = {LOSS_KINDS[k]: int(ev["n"][ev["kind"] == k].sum()) for k in np.unique(ev["kind"])}
    lost = int(ev["n"].sum())
    ev = ev[np.unique(ev["index"], return_index=True)[1]]
    wake_us, rd_us = ev["wake_ns"] / 1e3, ev["run_delay_ns"] / 1e3
    read_us = ev["read_ns"] / 1e3
    held = wake_us > deadline_us - bus_us
    interrupted = ~held & (read_us > bus_us + INTERRUPTED_US)
    slow = ~held & ~interrupted & (wake_us > SLOW_WAKE_US)
    by_loop = ~held & ~interrupted & ~slow
    return {
        "reads": int(ev.size), "lost": lost, "by_kind": by_kind,
        "held_off": int(held.sum()), "interrupted": int(interrupted.sum()),
        "slow_wake": int(slow.sum()), "by_loop": int(by_loop.sum()),
        "wake_over_period": int((wake_us > 1e6 / rate).sum()),
        "runq": int(((rd_us >= 0) & (rd_us >= 0.5 * (wake_us + read_us))).sum()),
        "read_us_max": round(float(read_us.max()), 1),
        "wake_us_min_p50_max": [round(float(np.min(wake_us)), 1),
                                round(float(np.median(wake_us)), 1),
                                round(float(np.max(wake_us)), 1)],
        "run_delay_us_p50": round(float(np.median(rd_us)), 1),
    }


def _compiled_normal(rate: int, seconds: float) -> dict:
    """The compiled loop without SCHED_FIFO: what compiling buys apart from priority."""
    return _compiled(rate, seconds, priority=0)


def _python(rate: int, seconds: float) -> dict:
    chip = ModelChip(1, FRAME_BYTES, rate, SCLK_HZ, *TRIG)
    drdy = _TimedDrdy(chip.drdy())
    r = PythonFrameReader([chip.spi(0)], drdy, FRAME_BYTES, rate)  # type: ignore[arg-type]
    chip.start()
    r.start()
    raw, seq = _drain_all(r, rate, seconds)
    origin = r._origin if r._origin is not None else 1
    last = int(r._last_seq - origin) if r._last_seq is not None else -1
    out = _score(raw, seq, origin, last)
    out["cost_us"], out["wake_us"] = _p50_p99_us(drdy.cost_ns), _p50_p99_us(drdy.wake_ns)
    return out


def _p50_p99_us(ns: list[int]) -> tuple[float, float]:
    if not ns:
        return float("nan"), float("nan")
    p50, p99 = np.percentile(np.asarray(ns) / 1e3, [50, 99])
    return float(p50), float(p99)


def _start_load(seconds: float) -> tuple[subprocess.Popen | None, str]:
    """The rest of the appliance in another process: `ionm demo` in real time."""
    state = tempfile.mkdtemp(prefix="ionm-bench-acq-")
    args = [sys.executable, "-m", "appliance.cli", "demo", "--seconds", str(int(seconds) + 5),
            "--state-dir", state]
    if shutil.which("mosquitto") is None:
        args.append("--no-mqtt")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    time.sleep(3.0)  # let it get going
    if proc.poll() is not None:
        return None, state
    return proc, state


def run(quick: bool = False) -> dict[str, float | str]:
    if not compiled_available():
        return {"acq_compiled_available": compiled_unavailable_reason()}
    seconds = 0.5 if quick else 2.0
    rates = RATES[1:4] if quick else RATES
    proc, state = _start_load(2 * seconds * len(rates) + 10)
    res: dict[str, float | str] = {
        "acq_load": "ionm demo (real time)" if proc else "none (ionm demo did not start)",
        "acq_sclk_hz": SCLK_HZ, "acq_seconds_per_rate": seconds,
    }
    try:
        for name, fn in (("compiled", _compiled), ("compiled_normal", _compiled_normal),
                         ("python", _python)):
            clean = []
            for rate in rates:
                r = fn(rate, seconds)
                res[f"acq_{name}_lost_ppm_{rate}"] = round(1e6 * r["lost"] / max(1, r["total"]))
                res[f"acq_{name}_wrong_{rate}"] = r["wrong"]
                if r["lost"] == 0 and r["wrong"] == 0:
                    clean.append(rate)
                if rate == 4000:
                    for k in ("cost_us", "wake_us"):
                        res[f"acq_{name}_{k}_p50_4k"] = round(r[k][0], 2)
                        res[f"acq_{name}_{k}_p99_4k"] = round(r[k][1], 2)
                    res[f"acq_{name}_overhead_us_p50_4k"] = round(r["cost_us"][0] - BUS_US, 2)
                if "sched" in r:
                    res[f"acq_{name}_sched"] = r["sched"]
            res[f"acq_{name}_lossfree_max_sps"] = max(clean, default=0)
            res[f"acq_{name}_lossfree_rates"] = " ".join(map(str, clean)) or "none"
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(state, ignore_errors=True)
    res["acq_cost_ratio_python_over_compiled_p50_4k"] = round(
        float(res["acq_python_cost_us_p50_4k"]) / float(res["acq_compiled_cost_us_p50_4k"]), 2)
    res["acq_overhead_ratio_python_over_compiled_p50_4k"] = round(
        float(res["acq_python_overhead_us_p50_4k"])
        / max(0.05, float(res["acq_compiled_overhead_us_p50_4k"])), 1)
    return res


def _cpu_jiffies() -> np.ndarray:
    """/proc/stat's first line: user nice system idle iowait irq softirq steal."""
    with open("/proc/stat") as f:
        return np.array(f.readline().split()[1:9], dtype=np.int64)


def soak(seconds: float, rate: int = 4000, n_chips: int = 1, load: bool = True,
         readers: tuple[str, ...] = ("compiled", "python"), sclk_hz: int = SCLK_HZ,
         cpu: int | None = None, events_path: str = "") -> dict[str, object]:
    """Each reader for `seconds` at `rate` x 8 * n_chips channels, with `ionm demo` loading the
    machine unless `load` is False: the long loss figure. The compiled reader runs with its
    latency trace (loss events vs wake-up latency and run-queue delay: `why_lost`); the load
    average (min/max over the run) and the machine's CPU shares (steal = the hypervisor) are
    recorded with it. `python -m appliance.bench.acquisition SECONDS [--chips 2] [--no-load]`."""
    proc, state = _start_load(len(readers) * seconds + 20) if load else (None, "")
    out: dict[str, object] = {"rate": rate, "channels": 8 * n_chips, "sclk_hz": sclk_hz,
                              "seconds": seconds, "load": "ionm demo" if proc else "none"}
    loadavg = [os.getloadavg()[0]]
    jiffies = _cpu_jiffies()
    try:
        for name in readers:
            if name == "compiled":
                r = _compiled(rate, seconds, n_chips=n_chips, sclk_hz=sclk_hz, cpu=cpu,
                              trace=True, events_path=events_path)
            elif n_chips == 1 and sclk_hz == SCLK_HZ:
                r = _python(rate, seconds)
            else:
                raise ValueError("the Python reader soak runs 1 chip at SCLK_HZ only")
            loadavg.append(os.getloadavg()[0])
            res = {k: r[k] for k in ("lost", "total", "wrong", "latency", "why", "counts",
                                     "sched") if k in r}
            res["lost_ppm"] = round(1e6 * r["lost"] / max(1, r["total"]), 1)
            out[name] = res
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        if state:
            shutil.rmtree(state, ignore_errors=True)
    d = _cpu_jiffies() - jiffies
    out["cpu_share"] = {k: round(float(v / max(1, d.sum())), 3) for k, v in
                        zip(("user", "nice", "system", "idle", "iowait", "irq", "softirq",
                             "steal"), d, strict=True)}
    out["loadavg_1min"] = [round(min(loadavg), 2), round(max(loadavg), 2)]
    return out


if __name__ == "__main__":
    import argparse
    import json

    ap = argparse.ArgumentParser(description=soak.__doc__)
    ap.add_argument("seconds", type=float, nargs="?", default=120.0)
    ap.add_argument("--rate", type=int, default=4000)
    ap.add_argument("--chips", type=int, default=1, choices=(1, 2))
    ap.add_argument("--sclk", type=int, default=SCLK_HZ, help="data-read SCLK, Hz")
    ap.add_argument("--cpu", type=int, default=None, help="pin the compiled reader")
    ap.add_argument("--no-load", action="store_true", help="without ionm demo")
    ap.add_argument("--readers", default="compiled,python")
    ap.add_argument("--events", default="", help="save the compiled reader's loss events (.npy)")
    a = ap.parse_args()
    print(json.dumps(soak(a.seconds, a.rate, a.chips, not a.no_load,
                          tuple(a.readers.split(",")), a.sclk, a.cpu, a.events)))

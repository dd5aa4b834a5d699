"""`ionm record (--config C | --frontend KIND [--port PATH]) --seconds N OUT.bdf`

Record any front end to BDF+: every channel in µV (physical range = the ADC full scale, so its
resolution is kept), the trigger bits in a 'Status' channel and each rising edge as a
"stim bit N" annotation, missed samples marked as no data and annotated. KIND (cyton, ads1299,
ads1299-emulated, simulated) needs no config file, so a board can be checked on its own.
Ctrl-C (or SIGTERM) ends the recording early, between blocks, and closes a readable file.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from dataclasses import replace
from typing import Any

import numpy as np

from appliance.cli import naming, positive_seconds, refuse_existing
from appliance.errors import IonmError
from appliance.progress import Progress

KINDS = ("cyton", "ads1299", "ads1299-emulated", "simulated")
ANNOTATIONS_PER_S = 512  # ~20 kB a 1-s record: stimulus edges at up to 100 Hz on 4 bits, gaps
STALL_LIMIT_S = 5.0  # no block for this long: the front end is gone, stop with an error


def _config(args: argparse.Namespace) -> Any:
    from appliance import config

    if args.config:
        cfg = config.load(args.config)
        if args.port:
            cfg = replace(cfg, frontend=replace(cfg.frontend, port=args.port))
    else:
        fe: dict[str, Any] = {"kind": args.frontend}
        if args.frontend == "cyton":
            fe["sample_rate_hz"] = 250  # the Cyton dongle's only rate
        if args.port:
            fe["port"] = args.port
        cfg = config.from_dict({"frontend": fe})
    if args.fast:
        cfg = replace(cfg, frontend=replace(cfg.frontend, realtime=False))
    return cfg


def _on_signals(stop: threading.Event) -> dict[int, Any]:
    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, lambda *_: stop.set())
    return old


def _restore_signals(old: dict[int, Any]) -> None:
    for sig, handler in old.items():
        signal.signal(sig, handler)


def record(cfg: Any, seconds: float, out: str, log: Any = print) -> dict[str, Any]:
    """Record `seconds` of cfg's front end to `out`; returns a summary."""
    from appliance.frontend.bdf import BdfWriter
    from appliance.frontend.factory import open_frontend

    fe = open_frontend(cfg)
    full_scale_uv = float(getattr(fe, "full_scale_uv", 4.5e6 / cfg.frontend.gain))
    fe.start()
    # room for every stimulus edge in its own second, so no record is added past N for them
    writer = BdfWriter(out, fe.channel_names, fe.sample_rate_hz, physical_max_uv=full_scale_uv,
                       recording=f"ionm-record {cfg.frontend.kind} X",
                       max_annotations_per_s=ANNOTATIONS_PER_S)
    n_total = int(round(seconds * fe.sample_rate_hz))
    # N seconds of the stream's time axis: samples lost to gaps count toward N (the file marks
    # them), so the file ends at sample n_total of the stream, not n_total samples of data
    start: int | None = None
    written, stimuli, prev = 0, 0, 0
    stop = threading.Event()  # Ctrl-C / SIGTERM end the loop between blocks, never mid-write
    old = _on_signals(stop)
    last_block_t = time.monotonic()
    progress = Progress(f"record {out}", seconds)
    try:
        while written < n_total and not stop.is_set():
            block = fe.read_block(timeout_s=0.5)
            if block is None:
                if getattr(fe, "finished", False):
                    break
                if time.monotonic() - last_block_t > STALL_LIMIT_S:
                    raise IonmError(f"front end {cfg.frontend.kind!r} delivered nothing for "
                                    f"{STALL_LIMIT_S:.0f} s ({fe.health.last_error or 'stall'}).")
                continue
            last_block_t = time.monotonic()
            start = block.first_sample if start is None else start
            take = min(block.n_samples, n_total - (block.first_sample - start))
            if take <= 0:
                break
            trig = block.trigger[:take]
            with naming(out):  # a failed write() names the output
                writer.write_samples(block.data_uv[:, :take], trig, block.first_sample)
            rising = trig & ~np.concatenate([[prev], trig[:-1]]).astype(trig.dtype)
            stimuli += int(np.unpackbits(rising.view(np.uint8)).sum())
            prev = int(trig[-1]) if take else prev
            written = block.first_sample - start + take
            progress.update(written / fe.sample_rate_hz)
    finally:
        progress.close()
        _restore_signals(old)
        fe.stop()
        fe.close()
        writer.close()
    interrupted = stop.is_set()
    h = fe.health
    summary = {"path": out, "seconds": written / fe.sample_rate_hz,
               "channels": len(fe.channel_names), "sample_rate_hz": fe.sample_rate_hz,
               "missed_samples": h.missed_samples, "corrupt_frames": h.corrupt_frames,
               "clipped_samples": writer.clipped_samples, "stimulus_events": stimuli,
               "interrupted": interrupted}
    log(f"{out}: {summary['seconds']:.2f} s, {summary['channels']} channels at "
        f"{fe.sample_rate_hz:g} Hz from {cfg.frontend.kind}; {stimuli} stimulus events, "
        f"missed samples {h.missed_samples}, "
        f"corrupt frames {h.corrupt_frames}, clipped samples {writer.clipped_samples}"
        + (" (interrupted)" if interrupted else ""))
    return summary


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="ionm record", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="config TOML (its [frontend] table)")
    src.add_argument("--frontend", choices=KINDS, help="front end kind, no config file needed")
    ap.add_argument("--port", default="", help="serial port for cyton, e.g. /dev/ttyUSB0")
    ap.add_argument("--seconds", type=positive_seconds, required=True, help="length to record")
    ap.add_argument("--fast", action="store_true",
                    help="do not pace simulated/emulated sources at the sample rate")
    ap.add_argument("--force", action="store_true", help="replace OUT if it exists")
    ap.add_argument("out", help="output .bdf file (an existing one needs --force)")
    args = ap.parse_args(argv)
    refuse_existing(args.out, args.force)  # before the front end is opened
    record(_config(args), args.seconds, args.out)  # errors: one line from appliance.cli
    return 0

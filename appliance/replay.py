"""`ionm replay RECORDING --config C.toml [--speed max|realtime]`: run an EDF/EDF+/BDF/BDF+
recording through the same Monitor the daemon runs; one JSON object per line on stdout.

Stimulus events come from the recording's trigger (Status) channel. A recording without one
may carry them as annotations: "stim bit N" (what our BDF+ writer adds) or a site's name.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from appliance import config
from appliance.errors import ConfigError, IonmError, RecordingError
from appliance.frontend.block import SampleBlock

BLOCK_S = 0.016  # what a live front end ships: 16 ms blocks
_STIM_BIT = re.compile(r"^\s*stim(?:ulus)?\s+bit\s+(\d+)\s*$", re.I)


def triggers_from_annotations(rec, cfg) -> np.ndarray:
    """(n_samples,) uint16 trigger bits from "stim bit N" or site-name annotations."""
    trig = np.zeros(rec.n_samples, dtype=np.uint16)
    bits = {s.name.lower(): s.trigger_bit for s in cfg.analysis.sites}
    for a in rec.annotations:
        m = _STIM_BIT.match(a.text)
        bit = int(m.group(1)) if m else bits.get(a.text.strip().lower())
        i = int(round(a.onset_s * rec.sample_rate_hz))
        if bit is not None and 0 <= bit < 16 and 0 <= i < rec.n_samples:
            trig[i] |= np.uint16(1 << bit)
    return trig


def recording_blocks(rec, trigger: np.ndarray, block_s: float = BLOCK_S) -> Iterator[SampleBlock]:
    n = max(1, int(round(block_s * rec.sample_rate_hz)))
    lead_off = np.zeros(len(rec.channel_names), dtype=bool)
    for i in range(0, rec.n_samples, n):
        j = min(i + n, rec.n_samples)
        yield SampleBlock(rec.data_uv[:, i:j], trigger[i:j], rec.saturated[:, i:j], lead_off, i,
                          rec.sample_rate_hz, j / rec.sample_rate_hz)


def replay(path: str, cfg, speed: str = "max", out=None) -> int:
    """Print every output as a JSON line; returns the number of lines."""
    from appliance.analysis.monitor import Monitor
    from appliance.frontend.bdf import read_recording

    out = out or sys.stdout
    rec = read_recording(path)
    trig = rec.trigger & np.uint16(cfg.frontend.trigger_mask)
    if not rec.has_trigger_channel or not trig.any():
        trig = triggers_from_annotations(rec, cfg)
    mon = Monitor(cfg, channel_names=rec.channel_names, sample_rate_hz=rec.sample_rate_hz)
    n_lines = 0
    t_start = time.monotonic()
    def outputs():
        for block in recording_blocks(rec, trig):
            if speed == "realtime":
                wait = block.end_sample / rec.sample_rate_hz - (time.monotonic() - t_start)
                if wait > 0:
                    time.sleep(wait)
            yield from mon.push(block)
        yield from mon.flush()

    for o in outputs():
            d: dict[str, Any] = o.to_json()
            d.setdefault("type", "condition")
            out.write(json.dumps(d, separators=(",", ":"), allow_nan=False) + "\n")
            n_lines += 1
    out.flush()
    return n_lines


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="ionm replay", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recording", help="EDF, EDF+, BDF or BDF+ file")
    ap.add_argument("--config", required=True, help="TOML config with [[analysis.sites]]")
    ap.add_argument("--speed", choices=("max", "realtime"), default="max",
                    help="max: as fast as possible (default); realtime: at the recorded pace")
    args = ap.parse_args(argv)
    try:
        cfg = config.load(args.config)
        replay(args.recording, cfg, args.speed)
    except ConfigError as e:
        print(f"ionm replay: config error: {e}", file=sys.stderr)
        return 2
    except (RecordingError, OSError) as e:
        print(f"ionm replay: {args.recording}: {e}", file=sys.stderr)
        return 2
    except IonmError as e:
        print(f"ionm replay: {e}", file=sys.stderr)
        return 1
    return 0

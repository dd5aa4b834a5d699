"""`ionm replay RECORDING --config C.toml [--speed max|realtime]`: run an EDF/EDF+/BDF/BDF+
recording through the same Monitor the daemon runs; one JSON object per line on stdout.

The recording is played by `appliance.frontend.recording.RecordingFrontEnd` (the front end
`kind = "recording"` uses), so stimulus events come from its trigger (Status) channel, or from
annotations: "stim bit N" (what our BDF+ writer adds) or a site's name. `frontend.channels`
picks the recording's channels by label.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any, TextIO

from appliance import config
from appliance.errors import ConfigError, IonmError, RecordingError


def replay(path: str, cfg, speed: str = "max", out: TextIO | None = None) -> int:
    """Print every output as a JSON line; returns the number of lines."""
    from appliance.analysis.continuous import ANNOTATION_PREFIXES, apply_annotation
    from appliance.analysis.monitor import Monitor
    from appliance.frontend.recording import RecordingFrontEnd

    out = out or sys.stdout
    cfg = dataclasses.replace(cfg, frontend=dataclasses.replace(
        cfg.frontend, kind="recording", recording_path=str(path)))
    fe = RecordingFrontEnd.from_config(cfg, realtime=speed == "realtime")
    mon = Monitor(cfg, channel_names=fe.channel_names, sample_rate_hz=fe.sample_rate_hz)
    n_lines = 0

    def emit(outputs) -> None:
        nonlocal n_lines
        for o in outputs:
            d: dict[str, Any] = o.to_json()
            d.setdefault("type", "condition")
            out.write(json.dumps(d, separators=(",", ":"), allow_nan=False) + "\n")
            n_lines += 1

    try:
        fe.start()
        # annotated commands (triggered-EMG searches) are repeated at their sample
        commands = sorted((a.onset_s, a.text) for a in fe.annotations
                          if a.text.startswith(ANNOTATION_PREFIXES))
        while (block := fe.read_block()) is not None:
            while commands and commands[0][0] <= block.first_sample / fe.sample_rate_hz + 1e-9:
                apply_annotation(mon, commands.pop(0)[1])
            emit(mon.push(block))
        emit(mon.flush())
    finally:
        fe.close()
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

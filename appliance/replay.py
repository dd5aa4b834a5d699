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

import numpy as np

from appliance import config
from appliance.cli import plural
from appliance.errors import CommandError, FrontEndError

UNMATCHED_SHOWN = 8  # annotation texts listed when a site matches none


def unmatched_sites(fe, cfg) -> list[str]:
    """One warning per site that cannot see a stimulus: the recording has no trigger channel
    and no annotation stands for the site's bit. Lists the annotations nothing matched."""
    if fe.trigger_source != "annotations":
        return []
    texts = sorted(fe.unmapped_annotations.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{t!r} x{n}" for t, n in texts[:UNMATCHED_SHOWN])
    more = f" and {len(texts) - UNMATCHED_SHOWN} more" if len(texts) > UNMATCHED_SHOWN else ""
    listing = (f"its {sum(fe.unmapped_annotations.values())} unmatched annotations: {shown}{more}"
               if texts else "it has no annotations")
    return [f"site {s.name!r} (trigger bit {s.trigger_bit}) matches no annotation of the "
            f"recording and there is no trigger channel, so it will see no stimulus; {listing}. "
            "Name the site after its stimulus annotation (or annotate \"stim bit N\")."
            for s in cfg.analysis.sites if not fe.annotated_bits & (1 << s.trigger_bit)]


def silent_trigger_bits(cfg, bits_seen: int) -> list[str]:
    """One warning per site whose trigger bit never fired while other bits did (a site set to
    the wrong bit hears only "no stimulus ... check stimulator and trigger cable")."""
    if not bits_seen:
        return []  # no stimulus at all: the no-stimulus condition already says what to check
    seen = [b for b in range(16) if bits_seen >> b & 1]
    return [f"site {s.name!r} listens on trigger bit {s.trigger_bit}, which never fired in the "
            f"recording; its stimuli are on bit{'s' if len(seen) > 1 else ''} "
            f"{', '.join(map(str, seen))}: check analysis.sites[{i}].trigger_bit."
            for i, s in enumerate(cfg.analysis.sites) if not bits_seen >> s.trigger_bit & 1]


def replay(path: str, cfg, speed: str = "max", out: TextIO | None = None,
           err: TextIO | None = None) -> dict[str, Any]:
    """Print every output as a JSON line on `out`; warnings, a progress line (a terminal only)
    and a one-line summary on `err`. Returns the summary's numbers."""
    from appliance.analysis.annotated_commands import ANNOTATION_PREFIXES, apply_annotation
    from appliance.analysis.monitor import Monitor
    from appliance.frontend.recording import RecordingFrontEnd
    from appliance.progress import Progress

    out = out or sys.stdout
    err = err or sys.stderr
    cfg = dataclasses.replace(cfg, frontend=dataclasses.replace(
        cfg.frontend, kind="recording", recording_path=str(path)))
    fe = RecordingFrontEnd.from_config(cfg, realtime=speed == "realtime")
    mon = Monitor(cfg, channel_names=fe.channel_names, sample_rate_hz=fe.sample_rate_hz)
    for w in unmatched_sites(fe, cfg):
        print(f"ionm replay: warning: {w}", file=err, flush=True)
    n = {"lines": 0, "trends": 0, "raised": 0, "refused": 0}
    active: set[str] = set()

    def emit(outputs) -> None:
        for o in outputs:
            d: dict[str, Any] = o.to_json()
            d.setdefault("type", "condition")
            out.write(json.dumps(d, separators=(",", ":"), allow_nan=False) + "\n")
            n["lines"] += 1
            n["trends"] += d["type"] == "trend"
            if d["type"] == "condition":
                n["raised"] += bool(d.get("active")) and d["id"] not in active
                (active.add if d.get("active") else active.discard)(d["id"])

    progress = Progress("replay", fe.n_samples / fe.sample_rate_hz, stream=err)
    t_s = 0.0
    bits_seen = 0
    try:
        fe.start()
        # annotated commands (baselines on command, triggered-EMG searches) are repeated at
        # their sample; one the monitor refuses is a warning, and the replay goes on
        commands = sorted((a.onset_s, a.text) for a in fe.annotations
                          if a.text.startswith(ANNOTATION_PREFIXES))
        while (block := fe.read_block()) is not None:
            while commands and commands[0][0] <= block.first_sample / fe.sample_rate_hz + 1e-9:
                at_s, text = commands.pop(0)
                try:
                    emit(apply_annotation(mon, text) or [])
                except CommandError as e:
                    n["refused"] += 1
                    print(f"ionm replay: warning: annotated command {text!r} at {at_s:.3f} s "
                          f"refused: {e}", file=err, flush=True)
            if block.trigger.size:
                bits_seen |= int(np.bitwise_or.reduce(block.trigger))
            emit(mon.push(block))
            t_s = block.end_sample / fe.sample_rate_hz
            progress.update(t_s)
        emit(mon.flush())
    finally:
        progress.close()
        fe.close()
    out.flush()
    if fe.trigger_source != "annotations":  # annotation-only files were checked up front
        for w in silent_trigger_bits(cfg, bits_seen):
            print(f"ionm replay: warning: {w}", file=err, flush=True)
    rejected = sum(sp.rejector.rejected for sp in mon.sites.values())
    print(f"ionm replay: {t_s:.1f} s of {path}: {plural(len(mon.sites), 'site')}, "
          f"{plural(mon.sweeps_accepted, 'sweep')} averaged ({rejected} rejected), "
          f"{plural(n['trends'], 'trend')}, {plural(n['raised'], 'condition')} raised"
          + (f", {plural(n['refused'], 'annotated command')} refused" if n["refused"] else ""),
          file=err, flush=True)
    return {"seconds": t_s, "sites": len(mon.sites), "sweeps": mon.sweeps_accepted,
            "rejected": rejected, "trends": n["trends"], "conditions_raised": n["raised"],
            "lines": n["lines"], "commands_refused": n["refused"]}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="ionm replay", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recording", help="EDF, EDF+, BDF or BDF+ file")
    ap.add_argument("--config", required=True, help="TOML config with [[analysis.sites]]")
    ap.add_argument("--speed", choices=("max", "realtime"), default="max",
                    help="max: as fast as possible (default); realtime: at the recorded pace")
    args = ap.parse_args(argv)
    # errors (config, recording, disk) end as one line from appliance.cli.run_command
    try:
        replay(args.recording, config.load(args.config), args.speed)
    except FrontEndError as e:  # the recording does not fit the config: the user's input
        raise CommandError(str(e)) from e
    return 0

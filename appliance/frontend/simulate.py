"""`ionm simulate --config C [--scenario S] [--seed N] --seconds N OUT.bdf`: write the simulated
patient to BDF+ as fast as it can be computed (stimuli in the Status channel and as annotations,
scenario events as annotations), e.g. to replay a known case through `ionm replay`."""

from __future__ import annotations

import argparse
from dataclasses import replace

from appliance.cli import naming, positive_seconds, refuse_existing, seed
from appliance.progress import Progress


def _describe(kind: str, ev: object) -> str:
    fields = ", ".join(f"{k}={v}" for k, v in vars(ev).items() if k != "at_s")
    return f"scenario: {kind} {fields}"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="ionm simulate", description=__doc__)
    ap.add_argument("--config", help="config TOML (default: built-in defaults)")
    ap.add_argument("--scenario", help="scenario TOML (default: frontend.scenario of the config)")
    ap.add_argument("--seed", type=seed, help="patient seed (default: frontend.seed)")
    ap.add_argument("--seconds", type=positive_seconds, required=True,
                    help="length of the recording")
    ap.add_argument("--force", action="store_true", help="replace OUT if it exists")
    ap.add_argument("out", help="output .bdf file (an existing one needs --force)")
    args = ap.parse_args(argv)
    refuse_existing(args.out, args.force)
    from appliance import config
    from appliance.frontend.simulated.frontend import SimulatedFrontEnd
    from appliance.frontend.simulated.scenario import load_scenario

    cfg = config.load(args.config) if args.config else config.from_dict({})
    fe_cfg = cfg.frontend
    if args.seed is not None:
        fe_cfg = replace(fe_cfg, seed=args.seed)
    cfg = replace(cfg, frontend=replace(fe_cfg, kind="simulated", realtime=False))
    scenario = load_scenario(args.scenario) if args.scenario else None
    fe = SimulatedFrontEnd.from_config(cfg, scenario=scenario)
    from appliance.frontend.bdf import BdfWriter

    n_total = int(round(args.seconds * fe.sample_rate_hz))
    with naming(args.out):  # a failed write() names the output
        writer = BdfWriter(args.out, fe.channel_names, fe.sample_rate_hz,
                           physical_max_uv=fe.full_scale_uv, fsync=False,
                           recording=f"ionm-simulate scenario={fe.patient.scenario.name} "
                                     f"seed={cfg.frontend.seed}")
        fe.start()
        written = 0
        progress = Progress(f"simulate {args.out}", args.seconds)
        try:
            for kind, ev in fe.patient.scenario.events:
                if ev.at_s < args.seconds:
                    writer.annotate(ev.at_s, getattr(ev, "duration_s", 0.0) or 0.0,
                                    _describe(kind, ev))
            while written < n_total:
                block = fe.read_block(timeout_s=None)
                if block is None:
                    if fe.finished:
                        break
                    continue
                if block.end_sample > n_total:  # trim the last block to the asked length
                    k = n_total - block.first_sample
                    block = replace(block, data_uv=block.data_uv[:, :k], trigger=block.trigger[:k],
                                    saturated=block.saturated[:, :k])
                writer.write(block)
                written = block.end_sample
                progress.update(written / fe.sample_rate_hz)
        finally:
            progress.close()
            writer.close()
            fe.close()
    stims = sum(1 for e in fe.patient.events if e.trigger and e.sample < n_total)
    print(f"{args.out}: {written / fe.sample_rate_hz:.1f} s, {len(fe.channel_names)} channels at "
          f"{fe.sample_rate_hz:g} Hz, {stims} stimuli, scenario {fe.patient.scenario.name!r}")
    return 0

"""`ionm emulate cyton`: serve the Cyton emulator on a pseudo-terminal until Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from appliance.cli import seed
from appliance.errors import IonmError


def _source(args: argparse.Namespace):  # -> Source
    from appliance.frontend.cyton import sources

    if args.replay:
        return sources.load_openbci_txt(args.replay)
    if args.source == "test":
        return sources.GeneratorSource(sources.TestSignalSource(seed=args.seed))
    from appliance import config

    cfg = config.load(args.config) if args.config else config.from_dict({})
    try:
        from appliance.frontend.simulated.patient import Patient
    except ImportError as e:
        raise IonmError(
            f"the simulated patient is not available in this build ({e}); use --source test"
        ) from e
    scenario = None
    if args.scenario:
        from appliance.frontend.simulated.scenario import load_scenario

        scenario = load_scenario(args.scenario)
    names = tuple(cfg.frontend.channels[:8])
    try:
        patient = Patient(names, 250.0, cfg.analysis.sites, scenario=scenario, seed=args.seed)
    except IonmError as e:
        hint = "" if args.config else " (stimulation sites and channels come from --config)"
        raise IonmError(f"{e}{hint}") from e
    return sources.GeneratorSource(patient)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="ionm emulate",
        description="Serve an OpenBCI Cyton emulator on a pseudo-terminal; any Cyton client "
        "(BrainFlow, the OpenBCI GUI, our driver) can open the printed path.",
    )
    ap.add_argument("board", choices=["cyton"])
    ap.add_argument("--scenario", help="scenario TOML for the simulated patient")
    ap.add_argument("--seed", type=seed, default=1,
                    help="seed of the simulated patient")
    ap.add_argument("--config", help="config TOML: channel names and stimulation sites")
    ap.add_argument("--link", help="stable symlink to the pty (default: a temp path)")
    ap.add_argument(
        "--source",
        choices=["patient", "test"],
        default="patient",
        help="patient: the simulated patient; test: 10 Hz sine + noise, trigger bit 0 at 4.7 Hz",
    )
    ap.add_argument("--replay", metavar="OPENBCI_TXT", help="replay an OpenBCI GUI raw text file")
    ap.add_argument("--board-off", action="store_true", help="dongle answers, board is off")
    args = ap.parse_args(argv)

    from appliance.frontend.cyton.emulator import CytonEmulator

    try:
        source = _source(args)
    except (IonmError, OSError) as e:
        print(f"ionm emulate: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with CytonEmulator(source, link=args.link, board_on=not args.board_off) as emu:
        print(f"Cyton emulator on {emu.path}\n  stable path: {emu.link}", flush=True)
        print(
            '  our driver: frontend.kind = "cyton", frontend.port = '
            f'"{emu.link}", frontend.sample_rate_hz = 250\n'
            f"  (or: ionm record --frontend cyton --port {emu.link} --seconds 10 out.bdf)\n"
            '  BrainFlow:  python -c "from brainflow.board_shim import *; '
            f"p = BrainFlowInputParams(); p.serial_port = '{emu.link}'; "
            'b = BoardShim(BoardIds.CYTON_BOARD, p); b.prepare_session(); b.start_stream()"\n'
            "Ctrl-C to stop.",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
        print(f"stopped after {emu.packets_sent} packets", flush=True)
    return 0

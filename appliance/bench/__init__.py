"""`ionm bench [SUITE ...] [--json]`: benchmarks, not tests. Figures are ratios against a peer
measured in the same run, because these machines are noisy.

Each suite is a module `appliance.bench.<name>` with `run(quick: bool) -> dict` whose values are
numbers or strings; `ionm bench` with no suite runs the default ones and merges their dicts.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

SUITES = ("decode", "cyton", "pipeline", "recording", "mqtt", "lights", "detection", "emg")
DEFAULT = ("decode", "pipeline")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="ionm bench", description=__doc__)
    ap.add_argument(
        "suites", nargs="*", metavar="SUITE",
        help=f"one or more of {', '.join(SUITES)}; default {', '.join(DEFAULT)}",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--quick", action="store_true", help="smaller workloads (for smoke tests)")
    args = ap.parse_args(argv)
    for name in args.suites:
        if name not in SUITES:
            ap.error(f"unknown suite {name!r}; allowed: {', '.join(SUITES)}")
    merged: dict[str, object] = {}
    for name in args.suites or DEFAULT:
        mod = importlib.import_module(f"appliance.bench.{name}")
        result = mod.run(quick=args.quick)
        merged.update(result)
        if not args.json:
            print(f"== {name}")
            for k, v in result.items():
                print(f"  {k:<40} {v}")
    if args.json:
        json.dump(merged, sys.stdout, sort_keys=True)
        print()
    return 0

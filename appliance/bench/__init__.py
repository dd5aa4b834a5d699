"""`ionm bench [SUITE ...] [--json]`: benchmarks, not tests. Figures are ratios against a peer
measured in the same run, because these machines are noisy.

Each suite is a module `appliance.bench.<name>` with `run(quick: bool) -> dict` whose values are
numbers, strings, or lists / dicts of them; `ionm bench` with no suite runs the default ones.
Printed as a table per suite (nested values as dotted keys); `--json` prints one merged JSON
object instead; a suite may lay itself out with `text(result) -> str`. On a terminal, stderr
says which suite is running.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

SUITES = ("decode", "cyton", "pipeline", "recording", "mqtt", "lights", "detection",
          "acquisition", "emg", "console")
DEFAULT = ("decode", "pipeline")


def _rows(prefix: str, value: object) -> list[tuple[str, str]]:
    """(dotted key, text) rows of one result value; lists of dicts are indexed by position."""
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in _rows(f"{prefix}.{k}", v)]
    if isinstance(value, list | tuple) and any(isinstance(v, dict | list) for v in value):
        return [r for i, v in enumerate(value) for r in _rows(f"{prefix}[{i}]", v)]
    if isinstance(value, float):
        return [(prefix, f"{value:.4g}")]
    if isinstance(value, list | tuple):
        return [(prefix, ", ".join(_rows("", v)[0][1] for v in value))]
    return [(prefix, str(value))]


def format_table(suite: str, result: dict[str, object]) -> str:
    """A suite's figures as aligned `key  value` lines under a `== suite` heading."""
    rows = [r for k, v in result.items() for r in _rows(k, v)]
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join([f"== {suite}", *(f"  {k:<{width}}  {v}" for k, v in rows)])


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
    names = args.suites or DEFAULT
    for i, name in enumerate(names, 1):
        if sys.stderr.isatty():
            print(f"ionm bench: running {name} ({i} of {len(names)})...", file=sys.stderr,
                  flush=True)
        mod = importlib.import_module(f"appliance.bench.{name}")
        result = mod.run(quick=args.quick)
        merged.update(result)
        if not args.json:
            if hasattr(mod, "text"):  # a suite with its own readable layout
                print(f"== {name}\n{mod.text(result)}", flush=True)
                continue
            print(format_table(name, result), flush=True)
    if args.json:
        json.dump(merged, sys.stdout, sort_keys=True)
        print()
    return 0

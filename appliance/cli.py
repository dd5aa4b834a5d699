"""The `ionm` command. Each sub-command lives in the module that owns it and is imported lazily,
so `ionm selftest` never pays for MQTT or MNE imports."""

from __future__ import annotations

import importlib
import sys

# name -> ("module:function", one-line help). Each function takes argv (list[str]) -> exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("appliance.service:main", "run the appliance (acquisition, analysis, alarms, MQTT)"),
    "demo": ("appliance.demo:main", "run on a simulated patient with a local broker (make run)"),
    "replay": ("appliance.replay:main", "run a recording through the pipeline, JSON lines out"),
    "record": ("appliance.frontend.record:main", "record any front end to BDF+"),
    "emulate": ("appliance.frontend.emulate:main", "serve a Cyton emulator on a pseudo-terminal"),
    "selftest": ("appliance.frontend.selftest:main", "ADS1299 self test: ID, test signal, noise"),
    "simulate": ("appliance.frontend.simulate:main", "write a simulated patient to BDF+"),
    "bench": ("appliance.bench:main", "benchmarks (ionm bench --help lists the suites)"),
    "check-config": ("appliance.config:main", "validate a config file"),
    "export": ("appliance.outputs.export:main", "export a case as csv, json or edf"),
    "alarm": ("appliance.alarm_cli:main", "acknowledge / audio-pause a running appliance"),
    "lights-check": ("appliance.outputs.lights_demo:main", "walk every light and the buzzer"),
}


def _usage() -> str:
    lines = ["usage: ionm COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<13} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "ionm COMMAND --help for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        from appliance import __version__

        print(f"ionm {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"ionm: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    target = COMMANDS[name][0]
    mod_name, func_name = target.split(":")
    try:
        func = getattr(importlib.import_module(mod_name), func_name)
    except (ImportError, AttributeError) as e:
        print(f"ionm {name}: not available in this build ({e})", file=sys.stderr)
        return 2
    return int(func(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())

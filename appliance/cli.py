"""The `ionm` command. Each sub-command lives in the module that owns it and is imported lazily,
so `ionm selftest` never pays for MQTT or MNE imports."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from appliance.errors import CommandError, ConfigError, IonmError, RecordingError

# exit codes: what the user gave is wrong (argument, config, input file) 2 (argparse's own);
# runtime failures (front end, disk, network) 1
EXIT_USAGE = 2
EXIT_RUNTIME = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C

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
    "report": ("appliance.report.command:main", "a case as a PDF (or HTML) report"),
    "alarm": ("appliance.alarm_cli:main", "acknowledge / audio-pause a running appliance"),
    "lights-check": ("appliance.outputs.lights_demo:main", "walk every light and the buzzer"),
    "console": ("appliance.console.server:main", "serve the web console (browser, MQTT login)"),
}

SEED_MAX = 2**32 - 1  # = frontend.seed's max


def plural(n: int, noun: str) -> str:
    """'1 site', '2 sites', '0 sites'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def report_problems(prog: str, problems: list[str], consequence: str) -> int:
    """A command that finished with parts missing: one warning line per problem and a summary
    on stderr; the exit code (1 when anything is missing, else 0)."""
    for p in problems:
        print(f"{prog}: warning: {p}", file=sys.stderr)
    if problems:
        print(f"{prog}: {plural(len(problems), 'problem')}; {consequence}", file=sys.stderr)
    return 1 if problems else 0


def positive_seconds(text: str) -> float:
    """argparse type for --seconds: a finite number > 0 (nan would never stop, inf overflows)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"got {text!r}, allowed: a number of seconds > 0") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"got {text}, allowed: a finite number of seconds > 0")
    return value


def non_negative_int(text: str) -> int:
    """argparse type for seeds and counts: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}, allowed: a whole number >= 0") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"got {value}, allowed: a whole number >= 0")
    return value


def seed(text: str) -> int:
    """argparse type for --seed: what frontend.seed allows (numpy seeds are 32-bit)."""
    value = non_negative_int(text)
    if value > SEED_MAX:
        raise argparse.ArgumentTypeError(f"got {value}, allowed: a whole number 0-{SEED_MAX}")
    return value


def refuse_existing(path: str | Path, force: bool) -> None:
    """Outputs never replace a file silently: an existing `path` needs --force."""
    p = Path(path)
    if p.is_dir():
        raise CommandError(f"{str(p)!r} is a directory; give a file name for the output.")
    if p.exists() and not force:
        raise CommandError(f"{str(p)!r} already exists; pass --force to replace it.")


@contextlib.contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """An OSError from a write() names no file: name `path` in it (for describe_os_error)."""
    try:
        yield
    except OSError as e:
        if e.filename is None and e.strerror is not None:
            e.filename = str(path)
        raise


def describe_os_error(e: OSError) -> str:
    """'<path>': <reason> (once), e.g. "'/mnt/ro/x.bdf': Read-only file system"."""
    if e.filename is None or e.strerror is None:
        return str(e)
    names = repr(str(e.filename))
    if e.filename2 is not None:
        names += f" -> {str(e.filename2)!r}"
    return f"{names}: {e.strerror}"


def _quiet_broken_pipe() -> int:
    """stdout's reader went away (`ionm -h | head -3`): stop without a word. Point stdout at
    /dev/null so the interpreter's final flush does not complain either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_RUNTIME


def run_command(name: str, func, argv: list[str]) -> int:
    """Call a sub-command; our error types and OS errors end as one line on stderr and an exit
    code (2 usage/config, 1 runtime), never a traceback. IONM_TRACEBACK=1 shows the traceback of
    an unexpected error."""
    try:
        return int(func(argv) or 0)
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:
        print(f"ionm {name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ConfigError as e:
        print(f"ionm {name}: config error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (CommandError, RecordingError) as e:  # a bad argument or input file
        print(f"ionm {name}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except IonmError as e:
        print(f"ionm {name}: {e}", file=sys.stderr)
        return EXIT_RUNTIME
    except OSError as e:
        print(f"ionm {name}: {describe_os_error(e)}", file=sys.stderr)
        return EXIT_RUNTIME
    except Exception as e:  # a bug: still one line, the traceback on request
        if os.environ.get("IONM_TRACEBACK"):
            raise
        print(f"ionm {name}: internal error ({type(e).__name__}: {e}); please report it, with "
              "the traceback IONM_TRACEBACK=1 shows", file=sys.stderr)
        return EXIT_RUNTIME


def _usage() -> str:
    lines = ["usage: ionm COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<13} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "ionm COMMAND --help for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        try:
            print(_usage(), flush=True)
        except BrokenPipeError:
            return _quiet_broken_pipe()
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
    return run_command(name, func, rest)


if __name__ == "__main__":
    sys.exit(main())

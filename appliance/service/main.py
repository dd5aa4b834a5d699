"""`ionm run --config FILE [--state-dir DIR] [--seconds N]`: load, start, loop, exit code."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from appliance.cli import describe_os_error
from appliance.errors import ConfigError, IonmError
from appliance.service.supervisor import Appliance

log = logging.getLogger("ionm.service")


def resolve_state_dir(arg: str | None) -> Path:
    """--state-dir, else systemd's $STATE_DIRECTORY (StateDirectory=), else the current dir."""
    if arg:
        return Path(arg)
    env = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(env) if env else Path.cwd()


def install_signal_handlers(app: Appliance) -> None:
    """SIGTERM (systemd stop) and SIGINT (Ctrl-C) ask the loop to finish cleanly."""

    def handler(signum: int, frame: Any) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        app.request_stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main(argv: list[str]) -> int:
    """`ionm run --config FILE [--state-dir DIR] [--seconds N]`."""
    from appliance import config
    from appliance.cli import positive_seconds
    from appliance.systemd import setup_logging

    ap = argparse.ArgumentParser(prog="ionm run", description="Run the appliance.")
    ap.add_argument("--config", required=True, help="TOML config (see deploy/config/ionm.toml)")
    ap.add_argument("--state-dir", default=None,
                    help="outbox and relative recording.directory live here "
                         "(default: $STATE_DIRECTORY, else the current directory)")
    ap.add_argument("--seconds", type=positive_seconds, default=None, help="stop after this long")
    ap.add_argument("--log-level", default="INFO",
                    choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = ap.parse_args(argv)
    setup_logging(args.log_level)
    try:
        cfg = config.load(args.config)
    except ConfigError as e:
        print(f"ionm run: config error: {e}", file=sys.stderr, flush=True)
        return 2
    app = Appliance(cfg, resolve_state_dir(args.state_dir))
    install_signal_handlers(app)
    try:
        app.start()
    except ConfigError as e:
        print(f"ionm run: config error: {e}", file=sys.stderr, flush=True)
        app.shutdown()
        return 2
    except (IonmError, OSError) as e:  # e.g. a read-only --state-dir
        why = describe_os_error(e) if isinstance(e, OSError) and not isinstance(e, IonmError) \
            else str(e)
        log.error("start-up failed: %s", why)
        app.shutdown()
        return 1
    return app.run(seconds=args.seconds)

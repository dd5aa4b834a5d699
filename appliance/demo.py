"""`ionm demo` (what `make run` calls): the whole appliance on a simulated patient.

deploy/config/demo.toml with deploy/scenarios/ssep-drop.toml (a baseline, then the left median
cortical SSEP drops 60 %), lights in the terminal, a private mosquitto on a free loopback port
when the `mosquitto` binary exists (else no MQTT, and it says so), the case recorded in a state
directory. Runs until Ctrl-C, or `--seconds N`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError

log = logging.getLogger("ionm.demo")

SOURCE = Path(__file__).resolve().parents[1]
DEMO_CONFIG = SOURCE / "deploy" / "config" / "demo.toml"
DEFAULT_SCENARIO = SOURCE / "deploy" / "scenarios" / "ssep-drop.toml"


def find_mosquitto() -> str | None:
    for cand in (shutil.which("mosquitto"), "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalBroker:
    """A private mosquitto on 127.0.0.1:<free port>, anonymous, no persistence."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                             f"persistence false\nlog_dest file {self.log}\n")
        # own session: Ctrl-C reaches the appliance only, which then says goodbye over MQTT
        self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise OSError(f"mosquitto exited ({self.proc.returncode}): {err.strip()}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.05)
        self.stop()
        raise OSError(f"mosquitto did not listen on 127.0.0.1:{self.port} within 5 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def what_happens(scenario_path: Path, fast: bool) -> list[str]:
    """The scenario's events with their times, and when the team should expect what, so a
    silent first minutes are not taken for a hang (docs/service.md has the measured times)."""
    from appliance.frontend.simulated.scenario import load_scenario

    sc = load_scenario(scenario_path)
    lines = [f"scenario {sc.name}: {sc.description}" if sc.description else f"scenario {sc.name}"]
    for kind, ev in sorted(sc.events, key=lambda kev: kev[1].at_s):
        fields = ", ".join(f"{k} {v}" for k, v in vars(ev).items() if k != "at_s")
        lines.append(f"  at {ev.at_s:g} s: {kind} ({fields})")
    pace = ("--fast: stream time runs faster than the clock" if fast else
            "real time: the first minutes are quiet by design; --fast runs it faster")
    lines.append("the first averages arrive within seconds, baselines once they are steady "
                 "(~1-2 min), and an alarm one to two minutes after a change is confirmed by "
                 "the averages; the fast detector (fast.* alarms) arms after 600 sweeps "
                 f"(~2 min at 4.7 Hz); {pace}")
    return lines


def demo_config(state_dir: Path, scenario: Path, mqtt_port: int | None,
                realtime: bool = True, base: Path = DEMO_CONFIG) -> Any:
    """`base` (deploy/config/demo.toml) with the demo's paths and broker filled in."""
    from appliance import config, config_rules
    from appliance.validate import read_toml

    if not base.is_file():
        raise ConfigError(f"demo config {str(base)!r}: no such file; ionm demo runs from a "
                          "source checkout.")
    data = read_toml(base, "demo config")
    if not scenario.is_file():
        raise ConfigError(f"frontend.scenario: {str(scenario)!r} does not exist.")
    data.setdefault("frontend", {}).update(scenario=str(scenario), realtime=realtime)
    data.setdefault("recording", {})["directory"] = str(state_dir / "cases")
    data.setdefault("alarms", {})["control_socket"] = str(state_dir / "alarm.sock")
    data.setdefault("lights", {})["backend"] = "terminal"
    mqtt = data.setdefault("mqtt", {})
    mqtt["enabled"] = mqtt_port is not None
    if mqtt_port is not None:
        mqtt.update(host="127.0.0.1", port=mqtt_port)
    cfg = config.from_dict(data)
    config_rules.check_files(cfg)  # as config.load: the scenario parses, mqtt files exist
    return cfg


def main(argv: list[str]) -> int:
    """`ionm demo [--seconds N] [--state-dir DIR] [--scenario FILE] [--config FILE] [--no-mqtt]
    [--fast]`."""
    from appliance.cli import positive_seconds
    from appliance.service import Appliance, install_signal_handlers
    from appliance.systemd import setup_logging

    ap = argparse.ArgumentParser(prog="ionm demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=positive_seconds, default=None,
                    help="stop after this long")
    ap.add_argument("--state-dir", default=None, help="where cases and the outbox go "
                    "(default: a new temporary folder, kept afterwards)")
    ap.add_argument("--scenario", default=str(DEFAULT_SCENARIO), help="scenario TOML")
    ap.add_argument("--config", default=str(DEMO_CONFIG), help="base config (paths, lights "
                    "and broker are filled in)")
    ap.add_argument("--no-mqtt", action="store_true", help="do not start a broker")
    ap.add_argument("--fast", action="store_true", help="run the patient faster than real time")
    args = ap.parse_args(argv)
    setup_logging("INFO")
    # absolute: a relative recording.directory is taken relative to the state dir (st/st/cases)
    state_dir = Path(args.state_dir or tempfile.mkdtemp(prefix="ionm-demo-")).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    broker: LocalBroker | None = None
    binary = None if args.no_mqtt else find_mosquitto()
    if binary is None:
        why = "--no-mqtt" if args.no_mqtt else (
            "no `mosquitto` binary found; `apt install mosquitto mosquitto-clients` adds it")
        print(f"ionm demo: running WITHOUT MQTT ({why})", flush=True)
    else:
        try:
            broker = LocalBroker(binary, state_dir)
        except OSError as e:
            print(f"ionm demo: running WITHOUT MQTT (could not start mosquitto: {e})", flush=True)
    try:
        cfg = demo_config(state_dir, Path(args.scenario).resolve(),
                          broker.port if broker else None, realtime=not args.fast,
                          base=Path(args.config))
        story = what_happens(Path(args.scenario), args.fast)
    except ConfigError as e:
        print(f"ionm demo: config error: {e}", file=sys.stderr)
        if broker:
            broker.stop()
        return 2
    print(f"ionm demo: simulated patient, scenario {Path(args.scenario).name}; "
          f"state in {state_dir}", flush=True)
    if broker is not None:
        print(f"ionm demo: watch it with:  mosquitto_sub -h 127.0.0.1 -p {broker.port} "
              "-t 'ionm/v1/#' -v", flush=True)
    for line in story:
        print(f"ionm demo: {line}", flush=True)
    print(f"ionm demo: acknowledge with:  ionm alarm ack --socket {state_dir / 'alarm.sock'}",
          flush=True)
    print("ionm demo: Ctrl-C stops it", flush=True)
    app = Appliance(cfg, state_dir)
    install_signal_handlers(app)
    try:
        return app.run(seconds=args.seconds)
    finally:
        if broker is not None:
            broker.stop()
        print(f"\nionm demo: case recorded in {state_dir / 'cases'}", flush=True)

"""Shared fixtures: a real mosquitto on a free loopback port, the recordings in tests/data."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from system_tools import need_tool

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"  # real recordings, trimmed; provenance in its README
# Tests that hold real-time bounds (the readers at 4 kSPS, the lights' IEC timing, the
# appliance end to end) run in a pass of their own, alone on the machine: `make test` runs
# the rest on two workers first (pytest-xdist). Marked `serial` here, by folder or file.
SERIAL = ("tests/frontend/", "tests/e2e/", "tests/alarms/test_lights_")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        rel = Path(item.path).resolve().relative_to(REPO).as_posix()
        if rel.startswith(SERIAL):
            item.add_marker(pytest.mark.serial)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str:
    return need_tool("mosquitto", "mosquitto")


class Broker:
    """A real mosquitto on 127.0.0.1:<port>, restartable on the same port (for outage tests)."""

    def __init__(self, workdir: Path, extra_conf: str = "", port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.extra_conf = extra_conf
        self.proc: subprocess.Popen[bytes] | None = None

    def write_conf(self) -> None:
        base = (
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            f"log_dest file {self.log}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
        )
        if os.geteuid() == 0:
            # as root mosquitto drops to user `mosquitto`, which cannot enter pytest's 0700 tmp
            # folders: its persistence file (the persistent-session tests) would silently
            # never be written. Keep root for these loopback-only test brokers.
            base = "user root\n" + base
        # extra_conf may replace the listener block entirely (TLS tests)
        own_listener = "listener" in self.extra_conf
        self.conf.write_text(self.extra_conf if own_listener else base + self.extra_conf)
        os.chmod(self.workdir, 0o755)
        self.conf.chmod(0o644)
        self.log.touch()
        self.log.chmod(0o666)

    def start(self, timeout_s: float = 5.0) -> None:
        self.write_conf()
        self.proc = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited: {err} {self.log.read_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout_s} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("broker"))
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def recordings_dir() -> Path:
    return TEST_DATA

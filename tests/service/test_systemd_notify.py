"""sd_notify datagrams on a real Unix datagram socket (NOTIFY_SOCKET), watchdog interval, and the
choice between journald and stderr logging. No systemd needed. systemd-python is optional (the Pi
installs it; it needs libsystemd-dev to build): its tests skip without it, and the built-in
fallbacks are tested in a child process where `import systemd` fails."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.systemd import Notifier, setup_logging, watchdog_interval_s

try:
    from systemd.journal import JournalHandler
except ImportError:
    JournalHandler = None

REPO = Path(__file__).resolve().parents[2]
# .ci/run (IONM_CI=1) installs systemd-python, so there these run (and fail without it)
needs_library = pytest.mark.skipif(
    JournalHandler is None and not os.environ.get("IONM_CI"),
    reason="systemd-python not installed (pip install -e '.[systemd]'; needs libsystemd-dev)",
)
LIBRARY_OR_RAW = pytest.mark.parametrize(
    "use_library", [pytest.param(True, marks=needs_library), False],
    ids=["systemd-python", "raw-datagram"],
)
# run a snippet in a child where systemd-python cannot be imported (a laptop without it)
NO_LIBRARY = "import sys; sys.modules['systemd'] = None\n"


@pytest.fixture()
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    s.bind(str(path))
    s.settimeout(2.0)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield s
    s.close()


def _recv(s: socket.socket) -> str:
    return s.recv(4096).decode()


@LIBRARY_OR_RAW
def test_systemd_notifier_sends_each_message(
    notify_socket: socket.socket, use_library: bool
) -> None:
    n = Notifier(use_library=use_library)
    assert n.ready()
    assert _recv(notify_socket) == "READY=1"
    assert n.status("case 2026-11-27\n 3 sites, 0 alarms, 4000 Hz")
    assert _recv(notify_socket) == "STATUS=case 2026-11-27 3 sites, 0 alarms, 4000 Hz"
    assert not n.status("case 2026-11-27 3 sites, 0 alarms, 4000 Hz")  # unchanged: not re-sent
    assert n.watchdog()
    assert _recv(notify_socket) == "WATCHDOG=1"
    assert n.stopping()
    assert _recv(notify_socket) == "STOPPING=1"


@LIBRARY_OR_RAW
def test_systemd_notifier_abstract_socket(
    monkeypatch: pytest.MonkeyPatch, use_library: bool
) -> None:
    name = f"ionm-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0" + name)
        s.settimeout(2.0)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert Notifier(use_library=use_library).ready()
        assert _recv(s) == "READY=1"


def test_systemd_notifier_without_socket_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier()
    assert not n.enabled
    assert not n.ready() and not n.watchdog()


def test_systemd_notify_from_a_child_process(notify_socket: socket.socket) -> None:
    """The way systemd sees it: another process, NOTIFY_SOCKET inherited."""
    code = "from appliance.systemd import Notifier; n = Notifier(); n.ready(); n.status('up')"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=30)
    assert [_recv(notify_socket), _recv(notify_socket)] == ["READY=1", "STATUS=up"]


def test_systemd_notify_without_systemd_python(notify_socket: socket.socket) -> None:
    code = NO_LIBRARY + (
        "import appliance.systemd as s; assert s._sd_daemon is None\n"
        "n = s.Notifier(); assert n.ready() and n.watchdog()"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=30)
    assert [_recv(notify_socket), _recv(notify_socket)] == ["READY=1", "WATCHDOG=1"]


def test_systemd_logging_without_systemd_python_prefixes_priorities() -> None:
    """Under systemd but without systemd-python: stderr lines journald reads as "<N>message"."""
    code = NO_LIBRARY + (
        "import logging; from appliance.systemd import setup_logging\n"
        "h = setup_logging('INFO'); assert type(h) is logging.StreamHandler\n"
        "log = logging.getLogger('ionm.alarms')\n"
        "log.warning('alarm raised'); log.error('two\\nlines'); log.info('up'); log.debug('no')"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "INVOCATION_ID": uuid.uuid4().hex}
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stderr.splitlines() == [
        "<4>ionm.alarms: alarm raised", "<3>ionm.alarms: two", "<3>lines", "<6>ionm.alarms: up",
    ]


def test_systemd_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert watchdog_interval_s() is None
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    assert watchdog_interval_s() == 5.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert watchdog_interval_s() is None  # meant for another process
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval_s() == 5.0
    monkeypatch.setenv("WATCHDOG_USEC", "0")
    assert watchdog_interval_s() is None


@pytest.fixture()
def clean_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    root.handlers[:] = before
    root.setLevel(level)


@needs_library
def test_systemd_logging_to_journal_with_fields(
    monkeypatch: pytest.MonkeyPatch, clean_root_logger: None
) -> None:
    monkeypatch.setenv("INVOCATION_ID", uuid.uuid4().hex)
    sent: list[tuple[str, dict[str, object]]] = []

    def sender(MESSAGE: str, **fields: object) -> None:  # journal.send's signature
        sent.append((MESSAGE, fields))

    h = setup_logging("INFO", sender_function=sender)
    assert isinstance(h, JournalHandler)
    logging.getLogger("ionm.alarms").warning(
        "alarm raised", extra={"ALARM_ID": "ssep.amplitude:L median:N20", "CASE_ID": "c-1"}
    )
    logging.getLogger("ionm.alarms").debug("below the level")
    assert len(sent) == 1
    msg, fields = sent[0]
    assert msg == "ionm.alarms: alarm raised"
    assert fields["ALARM_ID"] == "ssep.amplitude:L median:N20" and fields["CASE_ID"] == "c-1"
    assert fields["SYSLOG_IDENTIFIER"] == "ionm" and fields["PRIORITY"] == "4"


def test_systemd_logging_to_stderr_outside_systemd(
    monkeypatch: pytest.MonkeyPatch, clean_root_logger: None
) -> None:
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    monkeypatch.setenv("JOURNAL_STREAM", "0:0")  # names another stream, not our stderr
    h = setup_logging("DEBUG")
    assert type(h) is logging.StreamHandler
    assert logging.getLogger().level == logging.DEBUG
    assert sum(getattr(x, "_ionm", False) for x in logging.getLogger().handlers) == 1
    setup_logging("INFO")  # calling again replaces, never stacks handlers
    assert sum(getattr(x, "_ionm", False) for x in logging.getLogger().handlers) == 1


@needs_library
def test_systemd_journal_stream_matching_stderr_selects_journal(
    monkeypatch: pytest.MonkeyPatch, clean_root_logger: None
) -> None:
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    st = os.fstat(sys.stderr.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    assert isinstance(setup_logging(sender_function=lambda *a, **k: None), JournalHandler)

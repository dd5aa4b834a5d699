"""`ionm alarm` end to end: the CLI talks to a ControlServer on a real Unix socket; its
commands run through the command registry on a loop thread, as in the appliance."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from appliance.alarm_cli import main as alarm_main
from appliance.alarms.control import ControlServer, alarm_handlers, default_socket_path, request
from appliance.commands import CommandBus
from appliance.errors import CommandError
from appliance.settings.alarms import AlarmSettings


@pytest.fixture
def bus(manager):
    """The registry with the alarm handlers, drained by a thread standing in for the main loop."""
    b = CommandBus()
    for name, handler in alarm_handlers(manager).items():
        b.handle(name, handler)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.005):
            b.run_pending()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    yield b
    stop.set()
    t.join(1.0)


@pytest.fixture
def server(tmp_path, manager, bus):
    path = tmp_path / "run" / "alarm.sock"
    with ControlServer(path, bus, manager) as srv:
        yield srv


def test_cli_ack_clears_latched_alarm(server, manager, cond, capsys):
    seen = []
    manager.add_listener(lambda e: seen.append((e.event, e.cause)))
    manager.update(cond())
    manager.update(cond(active=False))
    assert alarm_main(["status", "--socket", str(server.path)]) == 0
    out = capsys.readouterr().out
    assert "ssep.amplitude:L median:N20" in out and "latched" in out
    assert alarm_main(["ack", "--socket", str(server.path)]) == 0
    assert "acknowledged: ssep.amplitude:L median:N20" in capsys.readouterr().out
    assert manager.active_set() == []
    assert seen[-1] == ("acknowledged", "cli")  # the service's listener hears the CLI
    assert alarm_main(["ack", "--socket", str(server.path)]) == 0
    assert "nothing to acknowledge" in capsys.readouterr().out


def test_cli_pause_json(server, manager, cond, capsys):
    manager.update(cond())
    assert alarm_main(["pause", "--json", "--socket", str(server.path)]) == 0
    reply = json.loads(capsys.readouterr().out)
    assert reply["events"][0]["event"] == "audio_paused"
    assert reply["events"][0]["cause"] == "cli"
    assert reply["display"]["audio_paused"] is True
    assert manager.display().audio_paused


def test_cli_without_appliance_says_so(tmp_path, capsys):
    assert alarm_main(["ack", "--socket", str(tmp_path / "none.sock")]) == 1
    assert "no appliance listening" in capsys.readouterr().err


def test_cli_socket_from_config(tmp_path, manager, bus, capsys):
    sock = tmp_path / "c.sock"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[alarms]\ncontrol_socket = "{sock}"\n')
    with ControlServer(sock, bus, manager):
        assert alarm_main(["status", "--config", str(cfg)]) == 0
    assert "no alarms" in capsys.readouterr().out


@pytest.mark.parametrize("raw,msg", [
    (b"not json\n", "not JSON"),
    (b'{"cmd": "silence"}\n', "allowed: ack, pause, status"),
    (b"[1, 2]\n", "cmd: got None"),
])
def test_bad_requests_get_errors_and_are_counted(server, raw, msg):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(server.path))
    s.sendall(raw)
    reply = json.loads(s.makefile().readline())
    s.close()
    assert reply["ok"] is False and msg in reply["error"]
    assert server.n_errors == 1
    assert request(server.path, "status")["ok"] is True  # still serving


def test_client_that_never_finishes_does_not_block_the_server(server):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(server.path))
    s.sendall(b'{"cmd": "st')  # and then nothing
    reply = json.loads(s.makefile().readline())
    s.close()
    assert "no newline" in reply["error"]
    assert request(server.path, "status")["ok"] is True


def test_stale_socket_replaced_live_one_refused(tmp_path, manager, bus):
    path = tmp_path / "alarm.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # file left behind, nobody listening (a crash)
    with ControlServer(path, bus, manager):
        with pytest.raises(CommandError, match="another appliance is listening"):
            ControlServer(path, bus, manager)
        assert request(path, "status")["ok"] is True
    assert not path.exists()


def test_default_socket_path(monkeypatch, tmp_path):
    monkeypatch.setenv("RUNTIME_DIRECTORY", f"{tmp_path}/a:{tmp_path}/b")
    assert default_socket_path() == tmp_path / "a" / "alarm.sock"
    monkeypatch.delenv("RUNTIME_DIRECTORY")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_socket_path() == tmp_path / "ionm" / "alarm.sock"
    assert default_socket_path(AlarmSettings(control_socket="/x/y.sock")).as_posix() == "/x/y.sock"

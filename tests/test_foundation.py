"""The foundation: config validation names the key, the CLI dispatches, the broker fixture works."""

import socket
import subprocess
import sys

import pytest

from appliance import config
from appliance.cli import COMMANDS
from appliance.errors import ConfigError


def test_config_defaults_are_valid():
    cfg = config.from_dict({})
    assert cfg.frontend.kind == "simulated"
    assert len(cfg.hash) == 16


@pytest.mark.parametrize(
    "data, key",
    [
        ({"frontend": {"kind": "cyto"}}, "frontend.kind"),
        ({"mqtt": {"port": 0}}, "mqtt.port"),
        ({"mqtt": {"port": "1883"}}, "mqtt.port"),
        ({"bogus": 1}, "bogus"),
        ({"device": {"id": "a/b"}}, "device.id"),
        (
            {"analysis": {"sites": [{"name": "L", "modality": "ssep_upper", "channels": ["x"]}]}},
            "analysis.sites[0].channels",
        ),
        ({"analysis": {"sites": [{"name": "L", "modality": "ssep_upper"}]}}, "sites[0].channels"),
    ],
)
def test_config_error_names_key(data, key):
    with pytest.raises(ConfigError) as e:
        config.from_dict(data)
    assert key in str(e.value)


def test_check_config_cli_names_key(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[frontend]\nkind = "cyto"\n')
    r = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "check-config", str(p)],
        capture_output=True, text=True,
    )
    assert r.returncode == 2
    assert "frontend.kind" in r.stderr and "cyton" in r.stderr


def test_every_command_is_registered_with_help():
    for name, (target, help_) in COMMANDS.items():
        assert ":" in target and help_, name


def test_broker_fixture_accepts_connections(broker):
    with socket.create_connection((broker.host, broker.port), timeout=1):
        pass
    broker.stop()
    with pytest.raises(OSError):
        socket.create_connection((broker.host, broker.port), timeout=0.5)

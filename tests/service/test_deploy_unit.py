"""The systemd unit: hardened ("OK" <= 2.0 by `systemd-analyze security`), and clean under
`systemd-analyze verify` (any stderr fails). Needs systemd-analyze (Debian package `systemd`)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from system_tools import need_tool

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "ionm.service"


def _systemd_analyze() -> str:
    exe = need_tool("systemd-analyze", "systemd")
    return exe


def _keys(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";")):
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def _testable_copy(tmp_path: Path, extra: str = "") -> Path:
    """verify checks that ExecStart exists: point it at /bin/true in a copy (same name)."""
    text = UNIT.read_text().replace("/opt/ionm/venv/bin/ionm run", "/bin/true run")
    assert "/bin/true run" in text
    copy = tmp_path / "ionm.service"
    copy.write_text(text.replace("[Service]\n", f"[Service]\n{extra}"))
    return copy


def test_deploy_unit_contents() -> None:
    k = _keys(UNIT.read_text())
    assert k["Type"] == ["notify"] and k["Restart"] == ["on-failure"]
    assert k["RestartSec"] == ["2s"] and "WatchdogSec" in k
    assert "StartLimitBurst" in k and "StartLimitIntervalSec" in k
    assert k["User"] == ["ionm"]
    assert {"gpio", "spi", "dialout"} == set(k["SupplementaryGroups"][0].split())  # + Cyton tty
    assert k["ExecStart"] == ["/opt/ionm/venv/bin/ionm run --config /etc/ionm/ionm.toml"]
    assert k["StateDirectory"] == ["ionm"] and k["ConfigurationDirectory"] == ["ionm"]
    assert k["DevicePolicy"] == ["closed"]
    allowed = {v.split()[0] for v in k["DeviceAllow"]}
    assert {"/dev/spidev0.0", "/dev/spidev0.1", "/dev/gpiochip0", "/dev/gpiochip4"} <= allowed
    assert "PrivateDevices" not in k  # would hide spidev and gpiochip
    assert k["CapabilityBoundingSet"] == [""]


def test_deploy_unit_security_score_ok(tmp_path: Path) -> None:
    res = subprocess.run(
        [_systemd_analyze(), "security", "--offline=true", "--threshold=20", str(UNIT)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    m = re.search(r"Overall exposure level for ionm\.service: (\d+\.\d+) (\w+)", res.stdout)
    assert m, res.stdout[-2000:] + res.stderr
    assert float(m.group(1)) <= 2.0 and m.group(2) == "OK", m.group(0)
    assert res.returncode == 0


def test_deploy_unit_verify_writes_nothing_to_stderr(tmp_path: Path) -> None:
    res = subprocess.run(
        [_systemd_analyze(), "verify", str(_testable_copy(tmp_path))],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert res.stderr == "", res.stderr


@pytest.mark.parametrize(
    ("bad", "said"),
    [("PrivateDevics=yes\n", "PrivateDevics"), ("Restart=sometimes\n", "sometimes")],
)
def test_deploy_unit_verify_check_catches_mistakes(tmp_path: Path, bad: str, said: str) -> None:
    """The check above can fail: a misspelt key or a bad value shows on stderr (exit code 0)."""
    res = subprocess.run(
        [_systemd_analyze(), "verify", str(_testable_copy(tmp_path, bad))],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert said in res.stderr


CONSOLE_UNIT = UNIT.with_name("ionm-console.service")


def test_console_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    """The web console's unit: clean under verify, exposure "OK", https from systemd credentials."""
    text = CONSOLE_UNIT.read_text()
    assert "--cert ${CREDENTIALS_DIRECTORY}/server.crt" in text and "DynamicUser=yes" in text
    copy = tmp_path / "ionm-console.service"
    copy.write_text(text.replace("/opt/ionm/venv/bin/ionm console", "/bin/true console"))
    res = subprocess.run([_systemd_analyze(), "verify", str(copy)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert res.stderr == "", res.stderr
    res = subprocess.run(
        [_systemd_analyze(), "security", "--offline=true", "--threshold=20", str(CONSOLE_UNIT)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    m = re.search(r"Overall exposure level for ionm-console\.service: (\d+\.\d+) (\w+)",
                  res.stdout)
    assert m and float(m.group(1)) <= 2.0, res.stdout[-2000:] + res.stderr

"""deploy/install.sh: --dry-run prints every step and changes nothing; steps already done are
reported as such (idempotent); shellcheck-clean."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from system_tools import need_tool

from appliance.config import from_dict

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "install.sh"


def _dry_run(env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_extra}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60
    )


def _dirs(tmp_path: Path) -> dict[str, str]:
    d = {k: tmp_path / k.lower() for k in ("PREFIX", "CONF_DIR", "UNIT_DIR", "MOSQ_DIR")}
    for p in d.values():
        p.mkdir()
    boot = tmp_path / "config.txt"
    boot.write_text("[all]\narm_64bit=1\n")
    env = {f"IONM_{k}": str(v) for k, v in d.items()}
    env["IONM_BOOT_CONFIG"] = str(boot)
    return env


def _snapshot(tmp_path: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}


def test_deploy_install_dry_run_prints_steps_and_changes_nothing(tmp_path: Path) -> None:
    env = _dirs(tmp_path)
    before = _snapshot(tmp_path)
    res = _dry_run(env, "--dry-run")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for step in ("1. apt packages", "2. user ionm in groups gpio, spi", "3. SPI enabled",
                 "4. Python venv", "5. configuration", "6. mosquitto", "7. systemd unit"):
        assert f"== {step}" in out
    assert f'+ append "dtparam=spi=on" to {env["IONM_BOOT_CONFIG"]}' in out
    assert f"+ python3 -m venv {env['IONM_PREFIX']}/venv" in out
    assert f"pip install -q {REPO}[systemd]" in out  # journald through systemd-python on the Pi
    assert 'pip install -q gpiod>=2' in out  # the exact-count DRDY path (issue 11)
    assert f"ionm.service {env['IONM_UNIT_DIR']}/ionm.service" in out
    assert "+ systemctl enable ionm.service" in out
    assert "dry run: nothing was changed" in out
    example = REPO / "deploy" / "config" / "ionm.toml"  # copied when no ionm.toml exists
    assert f"{example} {env['IONM_CONF_DIR']}/ionm.toml" in out
    device_id = tomllib.loads(example.read_text())["device"]["id"]
    assert f"device id / MQTT user: {device_id}" in out
    assert f"passwd (user {device_id})" in out
    assert _snapshot(tmp_path) == before


def test_deploy_install_second_run_skips_what_is_done(tmp_path: Path) -> None:
    env = _dirs(tmp_path)
    Path(env["IONM_BOOT_CONFIG"]).write_text("dtparam=spi=on\n")
    venv_bin = Path(env["IONM_PREFIX"]) / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").symlink_to(sys.executable)
    (Path(env["IONM_CONF_DIR"]) / "ionm.toml").write_text('[frontend]\nkind = "cyton"\n')
    shutil.copy(REPO / "deploy" / "systemd" / "ionm.service", env["IONM_UNIT_DIR"])
    (Path(env["IONM_MOSQ_DIR"]) / "ionm").mkdir()
    (Path(env["IONM_MOSQ_DIR"]) / "ionm" / "server.crt").write_text("x")
    (Path(env["IONM_MOSQ_DIR"]) / "ionm" / "passwd").write_text("x")
    out = _dry_run(env, "--dry-run").stdout
    assert "(already done: dtparam=spi=on)" in out and "append" not in out
    assert "(already done: venv exists)" in out and "-m venv" not in out
    assert "ionm.toml exists (never overwritten)" in out
    assert "ionm.service up to date" in out and "daemon-reload" not in out
    assert "openssl" not in out and "mosquitto_passwd" not in out
    assert "(already done: password file" in out
    assert "device id / MQTT user: ionm-dev" in out  # the existing config names none


def test_deploy_install_minimal_config_is_valid(tmp_path: Path) -> None:
    res = _dry_run({"IONM_DEVICE_ID": "or-3-cart", "IONM_CONF_DIR": "/etc/ionm"},
                   "--print-config")
    assert res.returncode == 0, res.stderr
    cfg = from_dict(tomllib.loads(res.stdout))  # validated like `ionm check-config`
    assert cfg.device.id == "or-3-cart" and cfg.mqtt.username == "or-3-cart"
    assert cfg.mqtt.password_file == "/etc/ionm/mqtt-password"
    assert cfg.frontend.kind == "ads1299"
    assert cfg.recording.directory == "/var/lib/ionm/cases"


def test_deploy_install_refuses_unknown_option_and_root_less_install(tmp_path: Path) -> None:
    res = _dry_run(_dirs(tmp_path), "--dryrun")
    assert res.returncode == 2 and "unknown option '--dryrun'" in res.stderr


def test_deploy_install_is_shellcheck_clean() -> None:
    exe = need_tool("shellcheck", "shellcheck")
    res = subprocess.run([exe, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout

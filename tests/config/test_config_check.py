"""`ionm check-config` rejects every config the issue found passing it and then failing (or
silencing alarms) in `run`/`replay`, naming the key, the value and what is allowed; the commands
that start something load through the same validation and start nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.cli import main as ionm

REPO = Path(__file__).resolve().parents[2]

SITE = """
[[analysis.sites]]
name = "L median"
modality = "ssep_upper"
channels = ["C4'-Fz", "Erb-L"]
"""

# (what the issue saw pass check-config, the key the error must name, the allowed text)
BAD = {
    "amplitude_ratio_min negative": (
        SITE + "criteria = { amplitude_ratio_min = -5.0 }",
        "analysis.sites[0].criteria.amplitude_ratio_min", "0.2 to 0.9"),
    "amplitude_ratio_min nan": (
        SITE + "criteria = { amplitude_ratio_min = nan }",
        "analysis.sites[0].criteria.amplitude_ratio_min", "finite"),
    "confirm_updates 1e9": (
        SITE + "criteria = { confirm_updates = 1e9 }",
        "analysis.sites[0].criteria.confirm_updates", "1 to 4"),
    "fsp_min nan": ("[analysis]\nfsp_min = nan\n", "analysis.fsp_min", "finite"),
    "high_flash_hz nan": ("[lights]\nhigh_flash_hz = nan\n", "lights.high_flash_hz", "1.4 to 2.8"),
    "physical_max_uv 1.0": ("[recording]\nphysical_max_uv = 1.0\n", "recording.physical_max_uv",
                            "full scale"),
    "physical_max_uv inf": ("[recording]\nphysical_max_uv = inf\n", "recording.physical_max_uv",
                            "finite"),
    "site without channels": (SITE.replace('["C4\'-Fz", "Erb-L"]', "[]"),
                              "analysis.sites[0].channels", "at least 1 item"),
    "cyton at 4000 Hz": ('[frontend]\nkind = "cyton"\nport = "/dev/ttyUSB0"\n'
                         'channels = ["C4\'-Fz", "Erb-L"]\nsample_rate_hz = 4000\n',
                         "frontend.sample_rate_hz", "250"),
    "stim_pins missing a site": ("[frontend]\nstimulator = true\nstim_pins = { other = 5 }\n"
                                 + SITE, "frontend.stim_pins", "L median"),
    "stimulator on an SPI pin": ("[frontend]\nstimulator = true\nstim_pins = { 'L median' = 10 }\n"
                                 + SITE, "frontend.stim_pins.L median", "SPI0"),
    "trigger bit masked out": ("[frontend]\ntrigger_mask = 2\n" + SITE,
                               "analysis.sites[0].trigger_bit", "frontend.trigger_mask (0x2)"),
    "window of 0.01 ms": (SITE + "window_ms = [0, 0.01]", "analysis.sites[0].window_ms",
                          "at least 8 samples"),
    # fast detection is on by default: `run` would refuse a sweep ending before its 45 ms
    "sweep too short for fast detection": (SITE + "window_ms = [10.0, 40.0]",
                                           "analysis.sites[0].window_ms",
                                           "fast detection needs 10-45 ms"),
    "negative seed": ("[frontend]\nseed = -1\n", "frontend.seed", "0 to"),
    "block_ms nan": ("[frontend]\nblock_ms = nan\n", "frontend.block_ms", "finite"),
    "scenario file missing": ('[frontend]\nscenario = "no-such-scenario.toml"\n',
                              "frontend.scenario", "an existing file"),
    "unknown component": (SITE + "components = { N99 = [10.0, 20.0] }",
                          "analysis.sites[0].components.N99", "N20"),
    "component window outside the sweep": (SITE + "components = { N20 = [16.0, 80.0] }",
                                           "analysis.sites[0].components.N20", "0-50 ms"),
    "update every 10 min": (SITE + "rate_hz = 1.0\nupdate_sweeps = 600",
                            "analysis.sites[0].update_sweeps", "120 s"),
    "notch at 400 Hz": ("[analysis]\nnotch_hz = 400.0\n", "analysis.notch_hz", "40.0 to 70.0"),
    # the shipped 2 MHz: two 27-byte reads take 216 of the 248 µs (measured: 99.96 % lost)
    "16 channels at 4 kSPS read at 2 MHz": (
        '[frontend]\nkind = "ads1299"\nchannels = [' + ", ".join(f'"c{i}"' for i in range(16))
        + "]\n", "frontend.spi_speed_hz (frontend.spi_read_speed_hz = 0: the same)",
        "at least 3.5 MHz"),
    "16 kSPS read at 4 MHz": (
        '[frontend]\nkind = "ads1299-emulated"\nsample_rate_hz = 16000\n'
        "spi_read_speed_hz = 4000000\n", "frontend.spi_read_speed_hz", "at least 7.2 MHz"),
    "reader on a CPU this machine lacks": ('[frontend]\nkind = "ads1299"\nreader_cpu = 1023\n',
                                           "frontend.reader_cpu", "a CPU of this machine"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_check_config_rejects_what_run_would_reject_naming_key_and_allowed(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, key, allowed = BAD[name]
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    assert ionm(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"config error: {key}" in err, err
    assert allowed in err, err


def test_check_config_accepts_the_shipped_examples_and_a_utf8_bom(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for example in sorted((REPO / "deploy" / "config").glob("*.toml")):
        rc = ionm(["check-config", str(example)])
        err = capsys.readouterr().err
        if example.name == "ionm.toml" and not Path("/etc/ionm/mqtt-password").exists():
            # the appliance's own config names the password file deploy/install.sh makes
            assert rc == 2 and "mqtt.password_file: got '/etc/ionm/mqtt-password'" in err, err
            continue
        assert rc == 0, err
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf# saved by a Windows editor\n" + SITE.encode())
    assert ionm(["check-config", str(bom)]) == 0, capsys.readouterr().err
    assert "OK" in capsys.readouterr().out


def test_check_config_accepts_a_short_sweep_with_fast_detection_off(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    short = SITE + "window_ms = [10.0, 40.0]\n"
    for text in (short + 'fast_detection = "off"\n',
                 "[analysis]\nfast_detection = false\n" + short):
        path = tmp_path / "short.toml"
        path.write_text(text, encoding="utf-8")
        assert ionm(["check-config", str(path)]) == 0, capsys.readouterr().err


def test_the_shipped_config_reads_in_time_at_its_rate_and_with_16_channels() -> None:
    """deploy/config/ionm.toml's data-read SCLK passes the per-sample SPI budget for its own
    rate and channels and for 16 channels (two chips); its 2 MHz command SCLK alone would not."""
    import tomllib

    from appliance import config

    d = tomllib.loads((REPO / "deploy" / "config" / "ionm.toml").read_text(encoding="utf-8"))
    d.pop("mqtt")  # names /etc/ionm's password file
    assert config.from_dict(d).frontend.spi_read_speed_hz == 8_000_000
    d["frontend"]["channels"] += [f"c{i}" for i in range(8)]
    config.from_dict(d)
    d["frontend"]["spi_read_speed_hz"] = 0
    with pytest.raises(config.ConfigError, match="frontend.spi_speed_hz"):
        config.from_dict(d)


def test_check_config_names_a_latin1_byte_and_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes("[analysis]\n# caf\u00e9 config\nnotch_hz = 50.0\n".encode("latin-1"))
    assert ionm(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not UTF-8" in err and "0xe9 on line 2" in err and "latin1.toml" in err, err


@pytest.mark.parametrize("cmd", [
    ["run", "--config", "{cfg}", "--state-dir", "{tmp}/state"],
    ["replay", "{tmp}/none.bdf", "--config", "{cfg}"],
    ["record", "--config", "{cfg}", "--seconds", "1", "{tmp}/out.bdf"],
    ["simulate", "--config", "{cfg}", "--seconds", "1", "{tmp}/out.bdf"],
    ["demo", "--config", "{cfg}", "--no-mqtt", "--seconds", "1", "--state-dir", "{tmp}/state"],
], ids=lambda c: c[0])
def test_every_command_loads_through_the_same_validation_and_starts_nothing(
        cmd: list[str], tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[analysis]\nfsp_min = nan\n")
    argv = [a.format(cfg=cfg, tmp=tmp_path) for a in cmd]
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    env["PYTHONPATH"] = str(REPO)  # this checkout, from another working directory
    r = subprocess.run([sys.executable, "-m", "appliance.cli", *argv], capture_output=True,
                       text=True, timeout=60, env=env, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "analysis.fsp_min: got nan" in r.stderr and "Traceback" not in r.stderr, r.stderr
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    # nothing written (demo makes its state folder before it reads the config: left empty)
    assert written in (["bad.toml"], ["bad.toml", "state"]), written


def test_docs_list_every_analysis_key_with_its_range() -> None:
    """docs/analysis.md has a row per [analysis], site and criteria key, and a number's row
    shows its declared range, so the documented ranges cannot drift from the checked ones."""
    import dataclasses
    import typing

    from appliance.settings.analysis import CRITERIA, AnalysisSettings, SiteSettings

    doc = (REPO / "docs" / "analysis.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `"): line for line in doc.splitlines()
            if line.startswith("| `")}
    metas = {k: (float, m) for k, m in CRITERIA.items()}
    for cls in (AnalysisSettings, SiteSettings):
        hints = typing.get_type_hints(cls)
        metas |= {f.name: (hints[f.name], f.metadata) for f in dataclasses.fields(cls)
                  if f.name != "sites"}
    for key, (tp, meta) in metas.items():
        assert key in rows, f"docs/analysis.md: no row for {key!r}"
        if tp in (int, float) and not meta.get("choices"):
            span = f"{meta['min']:g}–{meta['max']:g}"
            assert span in rows[key], (key, span, rows[key])


def test_loading_a_config_imports_neither_numpy_nor_scipy() -> None:
    """Every site is planned at load, yet `ionm alarm ack`, `lights-check` and `check-config`
    stay quick to start: planning is pure Python (appliance/analysis/plan.py)."""
    code = ("import sys; from appliance import config; "
            "config.load('deploy/config/ssep-example.toml'); "
            "print(sorted(m for m in ('numpy', 'scipy') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0 and r.stdout.strip() == "[]", (r.stdout, r.stderr)

"""`ionm selftest` on the emulator: a pass, and failures a technologist must see."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from appliance.cli import main as ionm
from appliance.frontend.selftest import format_table, run_selftest, square_amplitude_uv


def test_selftest_passes_on_a_healthy_emulated_board(capsys):
    assert ionm(["selftest", "--emulated"]) == 0
    out = capsys.readouterr().out
    assert "ID 0x3E (ADS1299, 8 channels" in out and "RESULT: PASS" in out
    rows = [line for line in out.splitlines() if line.strip()[:2].strip().isdigit()]
    assert len(rows) == 8 and all(r.rstrip().endswith("PASS") for r in rows)
    assert " 1.875 mV" in rows[0] and "on/on" in rows[0]


def test_selftest_json_reports_each_measurement(capsys):
    assert ionm(["selftest", "--emulated", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] is True and rep["chips"][0]["id"] == 0x3E
    assert [c["channel"] for c in rep["channels"]] == list(range(1, 9))
    for c in rep["channels"]:
        assert abs(c["test_deviation_pct"]) < 1.0
        assert 0.5 < c["noise_uv_rms"] < 2.0  # the emulator's 1 µV RMS input noise
    assert rep["temperature_c"] == pytest.approx(35.0, abs=0.5)


def test_wrong_chip_id_fails_with_expected_and_read_id(capsys):
    assert ionm(["selftest", "--emulated", "--fault", "id:0x00"]) == 1
    out = capsys.readouterr().out
    assert "ID register read 0x00" in out and "expected 0x3E" in out
    assert "RESULT: FAIL" in out


def test_broken_gain_path_and_stuck_channel_fail_only_those_channels(capsys):
    code = ionm(["selftest", "--emulated", "--json", "--fault", "gain:3:0.9",
                 "--fault", "stuck:6"])
    rep = json.loads(capsys.readouterr().out)
    assert code == 1 and rep["ok"] is False
    bad = {c["channel"]: c for c in rep["channels"] if not c["ok"]}
    assert sorted(bad) == [3, 6]
    assert bad[3]["test_deviation_pct"] == pytest.approx(-10.0, abs=0.5)
    assert "flat output" in " ".join(bad[6]["problems"])


def test_stalled_drdy_is_a_failure_naming_the_pin(capsys, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[frontend]\nkind = "ads1299-emulated"\ndrdy_pin = 13\n')
    assert ionm(["selftest", "--config", str(cfg), "--fault", "stall"]) == 1
    out = capsys.readouterr().out
    assert "no DRDY edge" in out and "frontend.drdy_pin = 13" in out and "RESULT: FAIL" in out


def test_selftest_reports_drdy_pin_and_measured_rate(capsys, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[frontend]\nkind = "ads1299-emulated"\nsample_rate_hz = 2000\n'
                   'drdy_pin = 26\n')
    assert ionm(["selftest", "--config", str(cfg), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["drdy_pin"] == 26 and rep["rate_ok"] is True and rep["reader"] == "python"
    assert rep["conversion_rate_hz"] == pytest.approx(2000, rel=1e-3)


def test_square_amplitude_with_unequal_high_and_low_counts():
    """Noise-free internal test square: 70 high and 30 low samples in the window (the median
    split read this as 0.000 mV)."""
    x = np.r_[np.full(70, 1875.0), np.full(30, -1875.0)][None, :]
    assert square_amplitude_uv(x)[0] == pytest.approx(1875.0)
    assert square_amplitude_uv(-x)[0] == pytest.approx(1875.0)


def test_lead_off_is_reported_per_electrode(make_frontend):
    fe, board = make_frontend(n_channels=4, rate_hz=1000, noise_uv_rms=1.0)
    board.set_lead_off(1, side="N")
    fe.start()
    rep = run_selftest(fe, "emulated")
    assert [(c.lead_off_p, c.lead_off_n) for c in rep.channels] == [
        (False, False), (False, True), (False, False), (False, False)]
    assert rep.ok  # reported, not a failure by default
    assert "on/OFF" in format_table(rep)
    assert not run_selftest(fe, "emulated", require_leads=True).ok
    assert fe.chips[0].streaming  # back in its operating configuration


def test_square_amplitude_estimator():
    t = np.arange(4000)
    x = np.where((t // 500) % 2 == 0, 1875.0, -1875.0) + np.random.default_rng(1).normal(0, 1, 4000)
    assert square_amplitude_uv(x[None, :])[0] == pytest.approx(1875.0, abs=0.2)
    assert square_amplitude_uv(np.zeros((1, 100)))[0] == 0.0


def test_fault_needs_the_emulator(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[frontend]\nkind = "ads1299"\n')
    with pytest.raises(SystemExit):
        ionm(["selftest", "--config", str(cfg), "--fault", "stall"])
    assert "--fault needs the emulator" in capsys.readouterr().err


def test_two_chips_each_checked(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    names = ", ".join(f'"c{i}"' for i in range(1, 13))
    cfg.write_text(f'[frontend]\nkind = "ads1299-emulated"\nsample_rate_hz = 2000\n'
                   f'channels = [{names}]\n')
    assert ionm(["selftest", "--config", str(cfg), "--json", "--fault", "gain:11:1.2"]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert [c["device"] for c in rep["chips"]] == ["emulated ADS1299 #1", "emulated ADS1299 #2"]
    assert len(rep["channels"]) == 12
    assert [c["channel"] for c in rep["channels"] if not c["ok"]] == [11]


HIDE_COMPILED = """
import importlib.abc, sys
class NoCompiled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "appliance.frontend.ads1299._reader":
            raise ImportError("no C compiler at install time (hidden by the test)")
sys.meta_path.insert(0, NoCompiled())
from appliance.cli import main
from appliance.frontend.block import FrontEndHealth
from appliance.service import acquisition_counts
print(acquisition_counts(FrontEndHealth(extra={"reader_compiled": 0.0}))["reader_note"])
sys.exit(main(["selftest", "--emulated"]))
"""


def test_without_the_compiled_reader_selftest_and_health_say_why():
    """Installed where the C extension could not build: the Python reader runs and both the
    self test and the health topic's acquisition block say so, with what to install."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    r = subprocess.run([sys.executable, "-c", HIDE_COMPILED], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    health_note, *table = r.stdout.splitlines()
    assert "compiled ADS1299 reader is not built (no C compiler" in health_note
    assert "build-essential python3-dev" in health_note
    assert any(line.startswith("reader python: the compiled ADS1299 reader is not built")
               for line in table), r.stdout
    assert "RESULT: PASS" in table

"""`ionm simulate` writes the simulated patient to a BDF+ file that reads back sample-exact."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from sim_helpers import SCENARIOS

from appliance.frontend.bdf import read_recording
from appliance.frontend.simulate import main

CONFIG = """
[frontend]
sample_rate_hz = 2000
seed = 4
[[analysis.sites]]
name = "L median"
modality = "ssep_upper"
channels = ["C4'-Fz", "Cv5-Fz", "Erb-L"]
trigger_bit = 0
[[analysis.sites]]
name = "R median"
modality = "ssep_upper"
channels = ["C3'-Fz", "Cv5-Fz", "Erb-R"]
trigger_bit = 1
"""


def test_simulate_writes_a_bdf_that_matches_the_patient(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    out = tmp_path / "sim.bdf"
    rc = main(["--config", str(cfg), "--scenario", str(SCENARIOS / "lost-stimulus.toml"),
               "--seconds", "3.5", str(out)])
    assert rc == 0 and "3.5 s" in capsys.readouterr().out
    rec = read_recording(out)
    # BDF holds whole 1-s records: the last one is padded
    assert rec.sample_rate_hz == 2000 and rec.data_uv.shape == (8, 8000)
    assert rec.channel_names[1] == "C4'-Fz"
    # the same config and seed, generated directly, gives the same samples
    from appliance import config
    from appliance.frontend.simulated.frontend import SimulatedFrontEnd
    from appliance.frontend.simulated.scenario import load_scenario

    fe = SimulatedFrontEnd.from_config(config.load(cfg), load_scenario(
        SCENARIOS / "lost-stimulus.toml"), realtime=False)
    fe.start()
    blocks = [fe.read_block(0.1) for _ in range(7000 // fe.block_samples + 1)]
    data = np.hstack([b.data_uv for b in blocks])[:, :7000]
    lsb = 2 * 4.5e6 / 24 / (2**24 - 1)
    assert np.abs(rec.data_uv[:, :7000] - data).max() <= 2 * lsb
    trig = np.concatenate([b.trigger for b in blocks])[:7000]
    assert np.array_equal(rec.trigger[:7000] & 3, trig & 3) and np.count_nonzero(trig) >= 30


def test_simulate_annotates_scenario_events_and_names_bad_input(tmp_path):
    out = tmp_path / "a.bdf"
    sc = tmp_path / "s.toml"
    sc.write_text('[[event]]\ntype = "cautery"\nat_s = 0.5\nduration_s = 0.2\n')
    assert main(["--scenario", str(sc), "--seconds", "1", str(out)]) == 0
    texts = [a.text for a in read_recording(out).annotations]
    assert any(t.startswith("scenario: cautery") for t in texts)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[event]]\ntype = "cautery"\nat_s = -1\n')
    r = subprocess.run([sys.executable, "-m", "appliance.cli", "simulate", "--scenario", str(bad),
                        "--seconds", "1", str(tmp_path / "b.bdf")], capture_output=True, text=True)
    assert r.returncode == 2 and "event[0].at_s" in r.stderr

"""BDF+ recordings of each modality (written by our BdfWriter, as the case recorder does) replayed
through `ionm replay` emit the same outputs as the live Monitor did; a triggered-EMG search is
repeated from its annotation."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from appliance import config
from appliance.analysis.annotated_commands import command_annotation
from appliance.analysis.monitor import Monitor
from appliance.frontend.bdf import BdfWriter
from appliance.frontend.block import SampleBlock
from appliance.frontend.simulated.patient import Patient
from appliance.frontend.simulated.scenario import from_dict as scenario
from appliance.settings.analysis import SiteSettings

FS = 2000
N = 32  # frontend.block_ms = 16 at 2 kSPS: the replay cuts the same blocks
CH = ["C3'-Fz", "C4'-Fz", "Orb-oc L", "TA L"]
CASES = {
    "eeg": ('[analysis.eeg]\nleft = ["C3\'-Fz"]\nright = ["C4\'-Fz"]\nbaseline_s = 4.0\n',
            [{"type": "eeg_slowing", "at_s": 11.0, "fast_to_percent": 30.0,
              "channels": ["C3'-Fz"]}], None),
    "emg_free": ('[analysis.emg_free]\nchannels = ["Orb-oc L"]\n',
                 [{"type": "a_train", "at_s": 2.0, "channel": "Orb-oc L", "duration_s": 0.8},
                  {"type": "emg_burst", "at_s": 5.0, "channel": "Orb-oc L", "duration_s": 0.2},
                  {"type": "cautery", "at_s": 8.0, "duration_s": 1.0}], None),
    "emg_triggered": ('[analysis.emg_triggered]\nchannels = ["TA L"]\n',
                      [{"type": "screw", "at_s": 0.0, "channel": "TA L", "threshold_ma": 3.0}],
                      (1.0, "L4 left screw")),
}


def _live_and_record(tmp_path, name):
    extra, events, search = CASES[name]
    toml = (f'[frontend]\nchannels = {json.dumps(CH)}\nsample_rate_hz = {FS}\n'
            f'block_ms = 16.0\n\n{extra}')
    (tmp_path / "c.toml").write_text(toml, encoding="utf-8")
    cfg = config.load(tmp_path / "c.toml")
    mon = Monitor(cfg)
    probe = SiteSettings(name="probe", modality="ssep_upper", channels=(), trigger_bit=1,
                         rate_hz=2.0)
    p = Patient(CH, FS, [probe], scenario({"name": name, "event": events}), seed=6)
    if mon.continuous.temg is not None:
        p.stim_intensity_ma = lambda: mon.continuous.temg.intensity_ma
    w = BdfWriter(tmp_path / "case.bdf", CH, FS, physical_max_uv=187500.0, fsync=False)
    live = []
    for k in range(int((18.0 if name == "eeg" else 10.0) * FS) // N):
        if search and k * N / FS >= search[0] and mon.continuous.temg.target != search[1]:
            mon.temg_search(search[1])
            w.annotate(k * N / FS, 0.0, command_annotation("temg_search", {"target": search[1]}))
        uv, trig = p.generate(N)
        blk = SampleBlock(uv, trig, np.zeros(uv.shape, bool), np.zeros(len(CH), bool), k * N,
                          float(FS), 0.0)
        w.write(blk)
        live += [o.to_json() for o in mon.push(blk)]
    w.close()
    return live


def _key(o: dict) -> tuple:
    t = o.get("type", "condition")
    return (t, round(o["t_s"], 3), o.get("id") or o.get("channel") or o.get("target"),
            o.get("kind"), o.get("active"), o.get("priority"))


@pytest.mark.parametrize("name", list(CASES))
def test_replay_of_each_modality_matches_live(tmp_path, name):
    live = _live_and_record(tmp_path, name)
    r = subprocess.run([sys.executable, "-m", "appliance.cli", "replay",
                        str(tmp_path / "case.bdf"), "--config", str(tmp_path / "c.toml")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    replayed = [json.loads(line) for line in r.stdout.splitlines()]
    replayed = [o for o in replayed if o["type"] != "condition" or not o["id"].startswith(
        ("ssep.", "tech."))]
    live = [{"type": "condition", **o} if "id" in o else o for o in live]
    assert [_key(o) for o in replayed] == [_key(o) for o in live]
    want = {"eeg": "eeg.fast_loss:L", "emg_free": "emg.a_train:Orb-oc L",
            "emg_triggered": "temg.threshold:L4 left screw"}[name]
    assert any(o.get("id") == want and o["active"] for o in replayed)
    # the numbers too, to the recording's resolution
    for a, b in zip(live, replayed, strict=True):
        if a["type"] == "eeg_trend":
            for ch, m in a["channels"].items():
                assert b["channels"][ch]["fast"] == pytest.approx(m["fast"], rel=1e-3)
        if a["type"] == "temg_threshold":
            assert a["threshold_ma"] == b["threshold_ma"] == 3.0

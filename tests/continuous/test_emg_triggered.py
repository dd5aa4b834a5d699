"""Triggered EMG: the threshold search on a simulated pedicle breach (closed loop: the search
sets the intensity, the simulated patient answers pulses at or above the screw's threshold)."""

from __future__ import annotations

import numpy as np
import pytest
from continuous_helpers import make_cfg

from appliance.analysis.monitor import Monitor
from appliance.errors import CommandError
from appliance.frontend.block import SampleBlock
from appliance.frontend.simulated.patient import Patient
from appliance.frontend.simulated.scenario import from_dict
from appliance.modalities.emg_triggered import ThresholdSearch
from appliance.settings.analysis import SiteSettings

CH = ["VM L", "TA L"]
FS = 4000
PROBE = SiteSettings(name="probe", modality="ssep_upper", channels=(), trigger_bit=1,
                     rate_hz=2.0)


def _session(events, commands, duration_s):
    """commands: {t_s: callable(monitor)} run when the stream reaches t_s."""
    cfg = make_cfg(CH, FS, {"emg_triggered": {"channels": CH}})
    mon = Monitor(cfg)
    p = Patient(CH, FS, [PROBE], from_dict({"name": "screws", "event": events}), seed=4)
    p.stim_intensity_ma = lambda: mon.continuous.temg.intensity_ma  # the stimulator control
    assert p._placements == []  # the probe evokes nothing but the screws' responses
    out, n, pending = [], 64, sorted(commands.items())
    for k in range(int(duration_s * FS) // n):
        while pending and pending[0][0] <= k * n / FS:
            pending.pop(0)[1](mon)
        uv, trig = p.generate(n)
        out += [o.to_json() for o in mon.push(SampleBlock(
            uv, trig, np.zeros(uv.shape, bool), np.zeros(2, bool), k * n, float(FS), 0.0))]
    return out, mon


def test_threshold_search_finds_breach_and_intact_screw():
    events = [{"type": "screw", "at_s": 0.0, "until_s": 6.0, "channel": "TA L",
               "threshold_ma": 3.2},
              {"type": "screw", "at_s": 6.0, "channel": "VM L", "threshold_ma": 11.0}]
    out, mon = _session(events, {0.2: lambda m: m.temg_search("L4 left screw"),
                                 6.2: lambda m: m.temg_search("L5 left screw")}, 12.0)
    thr = {o["target"]: o for o in out if o.get("type") == "temg_threshold"}
    assert thr["L4 left screw"]["threshold_ma"] == 3.5  # 2 no, 4 yes, 3.5 yes, 3.0 no
    assert [s["response"] for s in thr["L4 left screw"]["steps"]] == [False, True, True, False]
    assert thr["L5 left screw"]["threshold_ma"] == 11.0  # ... 10 no, 12, 11.5, 11 yes, 10.5 no
    conds = [o for o in out if o.get("id", "").startswith("temg.threshold")]
    assert [(c["id"], c["priority"]) for c in conds] == [
        ("temg.threshold:L4 left screw", "high")]
    resp = [o for o in out if o.get("type") == "temg_response" and o["response"]]
    r = resp[0]["channels"]["TA L"]
    assert 11.0 <= r["onset_ms"] <= 16.0 and r["peak_to_peak_uv"] >= 50
    assert not resp[0]["channels"]["VM L"]["response"]
    assert "temg.threshold:L4 left screw" in mon.active_condition_ids()


def test_threshold_search_steps_and_limits():
    s = ThresholdSearch("x", start_ma=2, step_ma=2, fine_step_ma=0.5, max_ma=6)
    for ma in (2, 4, 6):
        assert s.intensity_ma == ma and not s.done
        s.observe(ma, False)
    assert s.done and s.lowest_response_ma is None  # no response up to max_ma
    s = ThresholdSearch("y", start_ma=0.5, step_ma=2, fine_step_ma=0.5, max_ma=6)
    s.observe(0.5, True)
    assert s.done and s.lowest_response_ma == 0.5  # answers at the lowest step


def test_commands_refuse_bad_values():
    cfg = make_cfg(CH, FS, {"emg_triggered": {"channels": CH}})
    mon = Monitor(cfg)
    with pytest.raises(CommandError, match="got 250"):
        mon.temg_intensity(250)
    with pytest.raises(CommandError, match="target"):
        mon.temg_search(" ")
    with pytest.raises(CommandError, match="emg_triggered"):
        Monitor(make_cfg(CH, FS, {})).temg_search("L4")

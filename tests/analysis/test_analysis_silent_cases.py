"""Cases that used to be silent or misleading: the last sweeps of a recording are reported, a
stimulator that starts a little late raises nothing, and a site whose sweeps are all rejected
says so, naming `reject_uv`."""

from __future__ import annotations

from analysis_helpers import N9, N20, P25, SynthSite, blocks, run_monitor, upper_cfg

from appliance.analysis.monitor import Monitor

FS = 4000
CH = ["C4'-Fz", "Erb-L"]
COMPONENTS = {"C4'-Fz": [tuple(N20.values()), tuple(P25.values())], "Erb-L": [tuple(N9.values())]}


def _site(**kw) -> SynthSite:
    return SynthSite(trigger_bit=0, rate_hz=kw.pop("rate_hz", 4.7), components=COMPONENTS, **kw)


def _cfg(**site):
    return upper_cfg(CH, [{"name": "L median", "modality": "ssep_upper", "channels": CH,
                           "trigger_bit": 0, **site}], FS)


def test_analysis_flush_reports_the_last_sweeps(synth):
    data, trig = synth(CH, FS, 13.3, [_site()])
    mon = Monitor(_cfg())
    before = [d for d in run_monitor(mon, data, trig, FS) if d["type"] == "trend"]
    last = [o.to_json() for o in mon.flush()]
    trends = [d for d in last if d.get("type") == "trend"]
    assert trends, "flush reported nothing"
    assert trends[0]["t_s"] == round(data.shape[1] / FS, 3)
    assert trends[0]["n_sweeps"] > before[-1]["n_sweeps"]  # sweeps after the last update
    assert mon.flush() == []  # nothing new: nothing more


def test_analysis_late_first_stimulus_raises_nothing(synth):
    # 11 Hz: 5 periods are 0.45 s; the stimulator starts at 0.8 s
    data, trig = synth(CH, FS, 5.0, [_site(rate_hz=11.0, phase_s=0.75)])
    conds = [d for d in run_monitor(Monitor(_cfg(rate_hz=11.0)), data, trig, FS, block=200)
             if d["type"] == "condition"]
    assert not [c for c in conds if "no_stimulus" in c["id"]], conds


def test_analysis_stimulator_never_on_is_reported_after_the_grace(synth):
    data, trig = synth(CH, FS, 5.0, [_site(rate_hz=11.0, stim_off=lambda t: True)])
    conds = [d for d in run_monitor(Monitor(_cfg(rate_hz=11.0)), data, trig, FS, block=200)
             if d["type"] == "condition" and "no_stimulus" in d["id"]]
    # the grace counts from the first batch (0.25 s); raised within a batch after it
    assert conds and conds[0]["active"] and 2.25 < conds[0]["t_s"] <= 2.75, conds


def test_analysis_all_sweeps_rejected_names_reject_uv(synth):
    data, trig = synth(CH, FS, 12.0, [_site()])
    mon = Monitor(_cfg(reject_uv=2.0))  # the 8 µV noise is "artefact" on every sweep
    out = run_monitor(mon, data, trig, FS)
    rej = [d for d in out if d["type"] == "condition" and "sweeps_rejected" in d["id"]]
    assert len(rej) == 1 and rej[0]["active"], rej  # raised once, not repeated
    assert "amplitude above reject_uv = 2 µV" in rej[0]["message"]
    assert "analysis.sites[0].reject_uv" in rej[0]["message"]
    assert rej[0]["id"] in mon.active_condition_ids()
    assert not [d for d in out if d["type"] == "trend"]
    # the same stream with a sensible threshold: accepted again -> cleared
    for b in blocks(data, trig, FS, 400):
        mon.sites["L median"].rejector.amplitude_uv[...] = 1e4
        out = [o.to_json() for o in mon.push(b)]
        if any(d.get("id", "").endswith("sweeps_rejected:L median") for d in out):
            break
    assert [d["active"] for d in out if "sweeps_rejected" in d.get("id", "")] == [False]

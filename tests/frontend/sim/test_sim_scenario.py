"""Scenarios change the truth and the signal; a bad scenario file names the key."""

from __future__ import annotations

import numpy as np
import pytest
from sim_helpers import CHANNELS, SCENARIOS, SITES

from appliance.errors import ConfigError
from appliance.frontend.simulated.patient import Patient
from appliance.frontend.simulated.scenario import from_dict, load_scenario

FS = 2000


def patient(events: list[dict], seed: int = 1, **patient_settings) -> Patient:
    sc = from_dict({"event": events, "patient": patient_settings})
    return Patient(CHANNELS, FS, SITES, scenario=sc, seed=seed)


def sweep_mean(p: Patient, uv: np.ndarray, site: str, ch: str, lo_s: float, hi_s: float,
               lat_ms: float) -> float:
    """Mean of the raw signal at lat_ms after each stimulus in [lo_s, hi_s), minus the value
    just before the stimulus: a crude average that sees a response of several µV."""
    c = CHANNELS.index(ch)
    k = int(round(lat_ms * FS / 1000))
    s = [e.sample for e in p.events if e.site == site and lo_s <= e.t_s < hi_s and e.response]
    return float(np.mean([uv[c, x + k] - uv[c, x - 2] for x in s])) if s else 0.0


def test_amplitude_drop_abrupt_and_ramp():
    p = patient([
        {"type": "amplitude", "at_s": 10.0, "site": "L median", "component": "cortical",
         "to_percent": 40.0},
        {"type": "amplitude", "at_s": 20.0, "site": "R median", "component": "N20",
         "to_percent": 0.0, "ramp_s": 10.0},
    ])
    t = p.truth
    assert t("L median", "N20", 9.9).amplitude_uv == pytest.approx(1.3)
    assert t("L median", "N20", 10.1).amplitude_uv == pytest.approx(0.52)
    assert t("L median", "P25", 10.1).amplitude_uv == pytest.approx(0.48)
    assert t("L median", "N9", 30.0).amplitude_uv == pytest.approx(3.5)  # peripheral untouched
    assert t("R median", "N20", 25.0).amplitude_uv == pytest.approx(0.65)
    assert t("R median", "P25", 25.0).amplitude_uv == pytest.approx(1.2)
    assert not t("R median", "N20", 31.0).present


def test_amplitude_drop_shows_in_the_signal():
    p = patient([{"type": "amplitude", "at_s": 60.0, "site": "L median", "component": "N9",
                  "to_percent": 20.0}], eeg_rms_uv=2.0, emg_rms_uv=0.5, ecg_uv=0.0)
    uv, _ = p.generate(FS * 120)
    before = sweep_mean(p, uv, "L median", "Erb-L", 1.0, 60.0, 9.5)
    after = sweep_mean(p, uv, "L median", "Erb-L", 60.0, 120.0, 9.5)
    assert before == pytest.approx(-3.5, rel=0.2)
    assert after == pytest.approx(-0.7, abs=0.4)


def test_latency_shift_and_recovery():
    p = patient([
        {"type": "latency", "at_s": 5.0, "site": "L median", "component": "cortical",
         "to_percent": 110.0, "ramp_s": 10.0},
        {"type": "latency", "at_s": 30.0, "site": "*", "component": "*", "shift_ms": 1.0},
    ])
    assert p.truth("L median", "N20", 4.0).latency_ms == pytest.approx(19.5)
    assert p.truth("L median", "N20", 10.0).latency_ms == pytest.approx(19.5 * 1.05)
    assert p.truth("L median", "N20", 20.0).latency_ms == pytest.approx(21.45)
    assert p.truth("L median", "N9", 20.0).latency_ms == pytest.approx(9.5)
    # the later event that applies sets both levels: percent back to 100, +1 ms
    assert p.truth("L median", "N20", 31.0).latency_ms == pytest.approx(20.5)
    assert p.truth("R median", "N9", 31.0).latency_ms == pytest.approx(10.5)


def test_latency_shift_shows_in_the_signal():
    p = patient([{"type": "latency", "at_s": 60.0, "site": "L median", "component": "N9",
                  "shift_ms": 3.0}], eeg_rms_uv=2.0, emg_rms_uv=0.5, ecg_uv=0.0)
    uv, _ = p.generate(FS * 120)
    assert sweep_mean(p, uv, "L median", "Erb-L", 1, 60, 9.5) < -2.5
    assert sweep_mean(p, uv, "L median", "Erb-L", 60, 120, 9.5) > -0.5  # peak moved away
    assert sweep_mean(p, uv, "L median", "Erb-L", 60, 120, 12.5) < -2.5


def test_global_fade_acts_on_cortical_responses_of_every_site():
    p = patient([{"type": "fade", "at_s": 0.0, "pct_per_h": 30.0, "latency_pct_per_h": 3.0,
                  "until_s": 7200.0}])
    for site, comp in (("L median", "N20"), ("R median", "P25"), ("L tibial", "P37")):
        base = p.truth(site, comp, 0.0)
        h1 = p.truth(site, comp, 3600.0)
        assert h1.amplitude_uv == pytest.approx(0.7 * base.amplitude_uv)
        assert h1.latency_ms == pytest.approx(1.03 * base.latency_ms)
        assert p.truth(site, comp, 9000.0).amplitude_uv == pytest.approx(0.4 * base.amplitude_uv)
    assert p.truth("L median", "N9", 3600.0).amplitude_uv == pytest.approx(3.5)


def test_lead_off_flags_and_wrecks_the_channel():
    p = patient([{"type": "lead_off", "channel": "C4'-Fz", "at_s": 2.0, "until_s": 4.0}])
    uv, _ = p.generate(FS * 6)
    c = CHANNELS.index("C4'-Fz")
    assert p.lead_off(3.0)[c] and not p.lead_off(1.0)[c] and not p.lead_off(5.0)[c]
    assert p.lead_off(3.0).sum() == 1
    assert p.lead_off_span(1.9, 2.1)[c] and not p.lead_off_span(0.0, 1.9)[c]
    on, off = uv[c, FS: 2 * FS], uv[c, int(2.5 * FS): int(3.5 * FS)]
    assert np.abs(off).mean() > 100 * np.abs(on - on.mean()).mean()


def test_lost_stimulus_both_ways():
    p = patient([
        {"type": "stimulus_loss", "site": "L median", "mode": "no_response", "at_s": 5.0,
         "until_s": 10.0},
        {"type": "stimulus_loss", "site": "R median", "mode": "no_trigger", "at_s": 5.0},
    ])
    _, trig = p.generate(FS * 15)
    lm = [e for e in p.events if e.site == "L median"]
    rm = [e for e in p.events if e.site == "R median"]
    assert all(e.trigger for e in lm)
    assert [e.response for e in lm if 5.0 <= e.t_s < 10.0] and not any(
        e.response for e in lm if 5.0 <= e.t_s < 10.0)
    assert all(e.response for e in lm if e.t_s >= 10.0)
    assert not any(e.trigger or e.response for e in rm if e.t_s >= 5.0)
    # the trigger line shows it: bit 1 silent after 5 s, bit 0 keeps going
    assert np.count_nonzero(trig[5 * FS:] & 2) == 0
    assert np.count_nonzero(trig[5 * FS:] & 1) == pytest.approx(4.7 * 10, abs=2)
    t = p.truth("L median", "N9", 7.0)
    assert not t.present and t.amplitude_uv == 0.0
    assert p.truth("L median", "N9", 11.0).present


def test_lost_stimulus_removes_the_response_from_the_signal():
    p = patient([{"type": "stimulus_loss", "site": "L median", "at_s": 60.0}],
                eeg_rms_uv=2.0, emg_rms_uv=0.5, ecg_uv=0.0)
    uv, trig = p.generate(FS * 120)
    c = CHANNELS.index("Erb-L")
    k = int(9.5 * FS / 1000)
    stim = [e.sample for e in p.events if e.site == "L median" and e.t_s >= 60.0]
    assert stim and all(trig[s] & 1 for s in stim)
    assert abs(np.mean([uv[c, s + k] - uv[c, s - 2] for s in stim])) < 0.5


def test_cautery_movement_and_mains_level():
    p = patient([
        {"type": "cautery", "at_s": 2.0, "duration_s": 1.0, "amplitude_uv": 3000.0},
        {"type": "movement", "at_s": 5.0, "duration_s": 1.0, "amplitude_uv": 800.0,
         "channels": ["Erb-L"]},
        {"type": "mains", "at_s": 7.0, "to_percent": 1000.0},
    ], drift_uv=0.0)
    uv, _ = p.generate(FS * 9)
    x = uv - uv[:, :FS].mean(axis=1, keepdims=True)
    quiet = x[:, FS // 2: FS].std(axis=1)
    assert np.all(x[:, int(2.2 * FS): int(2.8 * FS)].std(axis=1) > 50 * quiet)  # mV cautery
    erb, c3 = CHANNELS.index("Erb-L"), CHANNELS.index("C3'-Fz")
    assert np.abs(x[erb, 5 * FS: 6 * FS]).max() > 200.0
    assert np.abs(x[c3, 5 * FS: 6 * FS]).max() < 200.0
    f = np.fft.rfftfreq(FS, 1 / FS)
    a = np.abs(np.fft.rfft(x[c3, 6 * FS: 7 * FS]))[f == 50][0]
    b = np.abs(np.fft.rfft(x[c3, 8 * FS: 9 * FS]))[f == 50][0]
    assert b == pytest.approx(10 * a, rel=0.3)


@pytest.mark.parametrize("text, key", [
    ('[[event]]\ntype = "amplitude"\nat_s = 1\nto_percent = -5\n', "event[0].to_percent"),
    ('[[event]]\ntype = "amplitde"\nat_s = 1\n', "event[0].type"),
    ('[[event]]\ntype = "amplitude"\nat_s = 1\nto_percent = 5\n[[event]]\ntype = "fade"\n'
     'pct_per_h = 3\n', "event[1].at_s"),
    ('[[event]]\ntype = "lead_off"\nat_s = 5\nchannel = "C4\'-Fz"\nuntil_s = 2\n',
     "event[0].until_s"),
    ('[[event]]\ntype = "stimulus_loss"\nat_s = 5\nsite = "L median"\nmode = "broken"\n',
     "event[0].mode"),
    ('[patient]\nmains_hz = 55\n', "patient.mains_hz"),
    ('[patient]\neeg_rms = 5\n', "patient.eeg_rms"),
    ('duration_s = "long"\n', "duration_s"),
    ('events = []\n', "events"),
    ('[[event]]\ntype = "cautery"\nat_s = 1\nbogus = 2\n', "event[0].bogus"),
])
def test_scenario_file_errors_name_the_key(tmp_path, text, key):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_scenario(p)
    assert key in str(e.value) and "bad.toml" in str(e.value)


def test_scenario_names_must_exist_in_the_config():
    sc = from_dict({"event": [{"type": "amplitude", "at_s": 1, "to_percent": 50,
                               "site": "L medain"}]})
    with pytest.raises(ConfigError, match=r"event\[0\].site.*Did you mean 'L median'"):
        Patient(CHANNELS, FS, SITES, scenario=sc)
    sc = from_dict({"event": [{"type": "lead_off", "at_s": 1, "channel": "C5'-Fz"}]})
    with pytest.raises(ConfigError, match=r"event\[0\].channel"):
        Patient(CHANNELS, FS, SITES, scenario=sc)


def test_unreadable_and_invalid_toml_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="missing.toml"):
        load_scenario(tmp_path / "missing.toml")
    p = tmp_path / "broken.toml"
    p.write_text("[[event]\n")
    with pytest.raises(ConfigError, match="broken.toml.*not valid TOML"):
        load_scenario(p)


@pytest.mark.parametrize("name", ["stable", "ssep-drop", "global-fade", "lead-off",
                                  "lost-stimulus"])
def test_shipped_scenarios_load_and_run(name):
    sc = load_scenario(SCENARIOS / f"{name}.toml")
    assert sc.name == name and sc.description
    p = Patient(CHANNELS, FS, SITES, scenario=sc)
    uv, _ = p.generate(FS * 2)
    assert np.isfinite(uv).all()


def test_ssep_drop_scenario_drops_l_median_cortical_by_60_percent():
    sc = load_scenario(SCENARIOS / "ssep-drop.toml")
    p = Patient(CHANNELS, FS, SITES, scenario=sc)
    for comp in ("N20", "P25"):
        base = p.truth("L median", comp, 100.0).amplitude_uv
        assert p.truth("L median", comp, 400.0).amplitude_uv == pytest.approx(0.4 * base)
    assert p.truth("R median", "N20", 400.0).amplitude_uv == pytest.approx(1.3)
    assert p.truth("L median", "N9", 400.0).amplitude_uv == pytest.approx(3.5)

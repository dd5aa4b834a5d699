"""Flash rate, duty and buzzer bursts measured from recorded GPIO transitions, idle and while the
dsp core runs flat out on another thread (lights in a thread, and in their own process). Limits
are the standard's (IEC 60601-1-8), not a timing of our own code."""

from __future__ import annotations

import time

import numpy as np
import pytest

from appliance import config
from appliance.alarms import Display
from appliance.conditions import Priority
from appliance.outputs.gpio import (
    RecordingBackend,
    Transition,
    edges,
    flash_timing,
    read_transitions,
)
from appliance.outputs.lights import Lights
from appliance.outputs.lights_process import LightsProcess

HIGH = Display(highest=Priority.HIGH, highest_physiological=Priority.HIGH, audio=Priority.HIGH)
MEDIUM = Display(highest=Priority.MEDIUM, highest_physiological=Priority.MEDIUM,
                 audio=Priority.MEDIUM)
RECORD_S = 7.0  # two high bursts (3.4 s + 3 s silence) and > 3 medium flashes
PINS = {"red": 17, "yellow": 27, "cyan": 22, "buzzer": 24}


def of(hist: list[Transition], name: str, since_s: float) -> list[Transition]:
    return [t for t in hist if t.name == name and t.t_s >= since_s]


def bursts(hist: list[Transition]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Buzzer pulses grouped into bursts: [(pulse starts (n,), pulse ends (n,)), ...]."""
    t, s = edges(hist)
    starts, ends = t[s], t[~s]
    ends = ends[ends > starts[0]]
    n = min(starts.size, ends.size)
    starts, ends = starts[:n], ends[:n]
    cut = np.flatnonzero(starts[1:] - ends[:-1] > 1.5) + 1
    return list(zip(np.split(starts, cut), np.split(ends, cut), strict=True))


def group_sizes(starts: np.ndarray, ends: np.ndarray) -> list[int]:
    gaps = starts[1:] - ends[:-1]
    cut = np.flatnonzero(gaps > 0.2) + 1
    return [len(g) for g in np.split(starts, cut)]


def record_in_threads(seconds: float) -> tuple[list[Transition], list[Transition], float]:
    hi, med = RecordingBackend(), RecordingBackend()
    with Lights(hi, PINS) as lh, Lights(med, PINS) as lm:
        t0 = time.monotonic()
        lh.show(HIGH)
        lm.show(MEDIUM)
        time.sleep(seconds)
    return hi.transitions, med.transitions, t0


def record_in_processes(seconds: float, tmp_path) -> tuple[list[Transition], list[Transition],
                                                            float]:
    paths = [tmp_path / "hi.jsonl", tmp_path / "med.jsonl"]
    procs = []
    for path in paths:
        path.touch()
        s = config.from_dict({"lights": {"backend": "file", "file_path": str(path)}}).lights
        procs.append(LightsProcess(s))
    try:
        for p in procs:
            assert p.priority()  # both children up
        t0 = time.monotonic()  # before the children can start a pattern
        procs[0].show(HIGH)
        procs[1].show(MEDIUM)
        time.sleep(seconds)
    finally:
        for p in procs:
            p.close()
    return read_transitions(paths[0]), read_transitions(paths[1]), t0


@pytest.mark.parametrize("load,where", [("idle", "thread"), ("dsp", "thread"),
                                        ("dsp", "process")])
def test_flash_rate_duty_and_bursts_within_standard(load, where, request, tmp_path,
                                                    record_property):
    if load == "dsp":
        counter = request.getfixturevalue("busy_numpy")
    if where == "thread":
        hi, med, t0 = record_in_threads(RECORD_S)
    else:
        hi, med, t0 = record_in_processes(RECORD_S, tmp_path)
    if load == "dsp":
        assert counter[0] > 10  # the workload really ran alongside

    # Every flash inside the standard where it is guaranteed (idle, or the lights process the
    # service runs). A lights *thread* beside a numpy workload has been seen to stretch one
    # on-phase by ~65 ms (duty 0.63 once in 14 flashes on a loaded 2-core machine): there the
    # typical flash must be inside and the outlier is recorded (docs/alarms.md).
    strict = load == "idle" or where == "process"
    period, duty = flash_timing(of(hi, "red", t0))
    assert period.size >= 12
    record_property("red_duty_worst", float(np.max(np.abs(duty - 0.5))) + 0.5)
    m_period, m_duty = flash_timing(of(med, "yellow", t0))
    assert m_period.size >= 3
    for p, d, lo_hz, hi_hz in ((period, duty, 1.4, 2.8), (m_period, m_duty, 0.4, 0.8)):
        if strict:
            assert np.all((p >= 1 / hi_hz) & (p <= 1 / lo_hz)), p
            assert np.all((d >= 0.2) & (d <= 0.6)), d
        else:
            assert 1 / hi_hz <= np.median(p) <= 1 / lo_hz, p
            assert 0.2 <= np.median(d) <= 0.6, d
            assert np.mean((d >= 0.2) & (d <= 0.6)) >= 0.8, d
    # the other lamps stay dark: the priority has one colour
    assert not any(t.state for t in of(hi, "yellow", 0) + of(med, "red", 0))

    # Buzzer: the burst's shape always; its pulse timing (td 75-200 ms, ts 50-125 ms high /
    # 125-250 ms medium) only where it is guaranteed: idle, or in the lights process. In a
    # thread under this load a GIL stall of tens of ms can push ts out (docs/alarms.md).
    hb = bursts(of(hi, "buzzer", t0))
    assert len(hb) >= 2
    for starts, ends in hb[:-1]:  # whole bursts
        assert starts.size == 10 and group_sizes(starts, ends) == [3, 2, 3, 2]
        gaps = starts[1:] - ends[:-1]
        assert 0.35 <= gaps[4] <= 1.3  # between the halves
        if strict:
            assert np.all((ends - starts >= 0.075) & (ends - starts <= 0.2))  # td
            ts = gaps[[0, 1, 3, 5, 6, 8]]
            assert np.all((ts >= 0.05) & (ts <= 0.125)), ts
    silence = hb[1][0][0] - hb[0][1][-1]
    assert 2.5 <= silence <= 4.0
    mb = bursts(of(med, "buzzer", t0))
    assert len(mb) >= 2 and all(s.size == 3 for s, _ in mb[:-1])
    for starts, ends in mb[:-1]:
        if strict:
            assert np.all((ends - starts >= 0.075) & (ends - starts <= 0.2))
            assert np.all((starts[1:] - ends[:-1] >= 0.125) & (starts[1:] - ends[:-1] <= 0.25))
    assert 2.5 <= mb[1][0][0] - mb[0][1][-1] <= 4.0

    jitter_ms = 1000 * max(np.abs(period - 0.5).max(), np.abs(m_period - 2.0).max(),
                           np.abs(duty * period - 0.25).max())
    record_property(f"lights_worst_jitter_ms_{load}_{where}", round(float(jitter_ms), 3))
    print(f"worst flash jitter ({load}, {where}): {jitter_ms:.2f} ms")


def shown(backend: RecordingBackend, name: str, since_s: float) -> str:
    """'off', 'on' or 'flashing' from the recorded changes of `name` since `since_s`."""
    t, s = backend.edges(name, since_s)
    last = backend.history(name)
    level = last[-1].state if last else False
    if t.size >= 2:
        return "flashing"
    return "on" if level else "off"


def lamps(backend: RecordingBackend, since_s: float) -> dict[str, str]:
    return {n: shown(backend, n, since_s) for n in ("red", "yellow", "cyan", "paused")}


CASES = [
    (Display(highest=Priority.LOW, highest_physiological=Priority.LOW),
     {"red": "off", "yellow": "on", "cyan": "off", "paused": "off"}),
    (Display(highest=Priority.LOW, highest_technical=Priority.LOW),
     {"red": "off", "yellow": "off", "cyan": "on", "paused": "off"}),
    # technical high: red flashing plus cyan, never red alone
    (Display(highest=Priority.HIGH, highest_technical=Priority.HIGH),
     {"red": "flashing", "yellow": "off", "cyan": "on", "paused": "off"}),
    (Display(highest=Priority.MEDIUM, highest_technical=Priority.MEDIUM),
     {"red": "off", "yellow": "flashing", "cyan": "on", "paused": "off"}),
    (Display(highest=Priority.HIGH, highest_physiological=Priority.HIGH, audio_paused=True),
     {"red": "flashing", "yellow": "off", "cyan": "off", "paused": "on"}),
    (Display(), {"red": "off", "yellow": "off", "cyan": "off", "paused": "off"}),
]


def test_encoding_of_each_display(light_recorder):
    pins = {"red": 17, "yellow": 27, "cyan": 22, "paused": 18}
    with Lights(light_recorder, pins) as lights:
        for display, expected in CASES:
            lights.show(Display())
            time.sleep(0.05)
            t0 = time.monotonic()
            lights.show(display)
            time.sleep(0.8)  # > one red period, < one yellow period (yellow: first edge only)
            got = lamps(light_recorder, t0)
            if expected["yellow"] == "flashing":
                t, s = light_recorder.edges("yellow", t0)
                got["yellow"] = "flashing" if s.tolist() == [True] else got["yellow"]
            assert got == expected, display


def test_highest_priority_wins_end_to_end(manager, cond, light_recorder, clock):
    from appliance.conditions import Kind

    manager.update(cond("low", Kind.PHYSIOLOGICAL, Priority.LOW))
    manager.update(cond("med", Kind.PHYSIOLOGICAL, Priority.MEDIUM))
    manager.update(cond("high", Kind.PHYSIOLOGICAL, Priority.HIGH))
    pins = {"red": 17, "yellow": 27, "cyan": 22}
    t0 = time.monotonic()
    with Lights(light_recorder, pins, source=manager.display):
        time.sleep(1.2)  # the thread polls the manager (show() every 50 ms keeps the rhythm)
        period, _ = light_recorder.flash_timing("red", t0)
        assert period.size >= 1 and np.all(np.abs(period - 0.5) < 0.05)
        assert shown(light_recorder, "yellow", t0) == "off"
        assert shown(light_recorder, "cyan", t0) == "off"  # nothing technical
        manager.acknowledge("button")  # still present: lights stay
        manager.update(cond("high", active=False))
        time.sleep(0.3)
        # high ended after acknowledgement: medium (yellow flashing) now wins
        t1 = time.monotonic()
        time.sleep(0.3)
        assert shown(light_recorder, "red", t1) == "off"
        assert light_recorder.history("yellow")[-1].state is True


def test_audio_pause_shown_and_buzzer_silenced(manager, cond, light_recorder):
    manager.update(cond())
    pins = {"red": 17, "paused": 18, "buzzer": 24}
    with Lights(light_recorder, pins, source=manager.display):
        t_start = time.monotonic()
        time.sleep(0.3)
        assert shown(light_recorder, "buzzer", t_start) == "flashing"  # buzzing
        manager.audio_pause("button")
        time.sleep(0.15)
        t0 = time.monotonic()
        time.sleep(1.0)
        assert shown(light_recorder, "paused", t0) == "on"
        assert shown(light_recorder, "buzzer", t0) == "off"
        assert shown(light_recorder, "red", t0) == "flashing"  # the light continues


def test_green_goes_dark_within_timeout_when_not_renewed(light_recorder):
    with Lights(light_recorder, {"green": 23}, monitoring_timeout_s=1.0) as lights:
        for _ in range(6):
            lights.set_monitoring(True)
            time.sleep(0.2)
        assert [t.state for t in light_recorder.history("green")] == [False, True]
        last_renew = time.monotonic()
        lights.set_monitoring(True)
        time.sleep(1.3)
        off = light_recorder.history("green")[-1]
        assert off.state is False
        assert 0.9 <= off.t_s - last_renew <= 1.1
        lights.set_monitoring(True)
        time.sleep(0.05)
        t_drop = time.monotonic()
        lights.set_monitoring(False)  # cannot see the patient: dark at once
        time.sleep(0.1)
        off = light_recorder.history("green")[-1]
        assert off.state is False and off.t_s - t_drop < 0.05


def test_lamp_test_lights_everything(light_recorder):
    pins = {"red": 17, "yellow": 27, "cyan": 22, "green": 23, "paused": 18, "buzzer": 24}
    with Lights(light_recorder, pins) as lights:
        t0 = time.monotonic()
        lights.lamp_test(1.0)
        hist = [t for t in light_recorder.transitions if t.t_s >= t0]
        for name in pins:
            assert any(t.name == name and t.state for t in hist), name
        # replay: all lamps on together once, each alone once, and all off at the end
        lamps_ = set(pins) - {"buzzer"}
        level = dict.fromkeys(pins, False)
        together, alone = False, set()
        for t in hist:
            level[t.name] = t.state
            on = {n for n, v in level.items() if v and n != "buzzer"}
            together = together or on == lamps_
            if len(on) == 1:
                alone |= on
        assert together
        assert alone == lamps_
        assert not any(level.values())


def test_active_low_outputs_invert(light_recorder):
    with Lights(light_recorder, {"cyan": 22}, active_high=False) as lights:
        lights.show(Display(highest=Priority.LOW, highest_technical=Priority.LOW))
        time.sleep(0.1)
    states = [t.state for t in light_recorder.history("cyan")]
    assert states == [True, False, True]  # off (high), on (low), off at close (high)


def test_new_display_shows_at_once(light_recorder):
    """A show() is never lost: each change appears promptly, not at the next 1 s wake-up."""
    with Lights(light_recorder, {"cyan": 22}) as lights:
        tech_low = Display(highest=Priority.LOW, highest_technical=Priority.LOW)
        lags = []
        for i in range(40):
            want = i % 2 == 0
            t = time.monotonic()
            lights.show(tech_low if want else Display())
            while light_recorder.history("cyan")[-1].state != want:
                assert time.monotonic() - t < 0.5, f"change {i} not shown within 0.5 s"
                time.sleep(0.001)
            lags.append(light_recorder.history("cyan")[-1].t_s - t)
        assert max(lags) < 0.2, lags

"""The production front-end code path end to end: the register-level ADS1299 emulator behind the
SPI interface (frontend.kind = "ads1299-emulated", the simulated patient as its analog input)
-> driver and frame decoding in the acquisition process -> Monitor -> alarm -> red lamp."""

from __future__ import annotations

from pathlib import Path

from e2e_helpers import CHANNELS, DROP_AT_S, N_SWEEPS_S, config_dict, start_appliance, wait_for

ALARM = "ssep.amplitude:L median:C4'-Fz"


def test_e2e_ads1299_emulator_ssep_drop_turns_red_within_1_s(tmp_path: Path, notify) -> None:
    d = config_dict(tmp_path, None, realtime=True)
    d["frontend"]["kind"] = "ads1299-emulated"
    # step-wise: zero missed samples is asserted below, and the faithful chip clock loses some to
    # this shared machine's scheduling (counted; tests/frontend/ads1299/test_ads1299_faithful.py)
    d["frontend"]["faithful_emulator"] = False
    d["frontend"]["channels"] = [*CHANNELS, "X6", "X7", "X8"]  # the chip's 8 inputs
    app, backend, runner = start_appliance(d, tmp_path)
    try:
        assert wait_for(lambda: ALARM in app.timeline.detected_s, 60.0), app.status_line()
        detected = app.timeline.detected_s[ALARM]
        assert DROP_AT_S < app.timeline.detected_t_s[ALARM] <= DROP_AT_S + 2 * N_SWEEPS_S
        assert wait_for(lambda: len(backend.edges("red", detected)[0]) >= 1, 2.0)
        t_red, s_red = backend.edges("red", since_s=detected)
        assert s_red[0] and t_red[0] - detected <= 1.0
        health = app.acquisition.health()
        assert health.missed_samples == 0 and health.corrupt_frames == 0, health
        assert notify.first("READY=1") is not None
    finally:
        app.request_stop()
        runner.join(20.0)
    assert not runner.is_alive()

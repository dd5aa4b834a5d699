"""The simulated patient (engineer C's Patient) served by the Cyton emulator: our driver gets
the patient's µV (to half an ADC count) and its stimulus trigger bits on the same samples.
Also the board's own channel on/off and internal test-signal commands."""

from __future__ import annotations

import time

import numpy as np

from appliance.frontend.cyton import protocol as proto
from appliance.frontend.cyton.driver import CytonLink
from appliance.frontend.cyton.sources import GeneratorSource
from appliance.frontend.simulated.patient import Patient
from appliance.settings.analysis import SiteSettings
from appliance.settings.frontend import FrontendSettings

SITES = (
    SiteSettings("L median", "ssep_upper", ("C4'-Fz", "Erb-L"), trigger_bit=0, rate_hz=4.7),
    SiteSettings("R median", "ssep_upper", ("C3'-Fz", "Erb-R"), trigger_bit=4, rate_hz=5.1),
)


def _patient() -> Patient:
    return Patient(FrontendSettings().channels, 250.0, SITES, seed=11)


def test_patient_stream_reaches_the_driver(cyton_emulator, cyton_front_end, read_blocks):
    n = 1250
    want_uv, want_trig = _patient().generate(n)  # same seed: the same stream
    emu = cyton_emulator(GeneratorSource(_patient()))
    fe = cyton_front_end(emu.link, channels=FrontendSettings().channels)
    fe.start()
    blocks = read_blocks(fe, n)
    data = np.concatenate([b.data_uv for b in blocks], axis=1)[:, :n]
    trig = np.concatenate([b.trigger for b in blocks])[:n]
    assert blocks[0].first_sample == 0 and data.shape == (8, n)
    assert np.abs(data - want_uv).max() <= proto.uv_per_count(24) / 2 + 1e-9
    assert np.array_equal(trig, want_trig)
    assert (trig & 1).sum() >= 20 and (trig & 16).sum() >= 20  # both sites' stimuli arrived


def test_channel_off_on_and_internal_test_signal(cyton_emulator):
    emu = cyton_emulator(GeneratorSource(_patient()))
    link = CytonLink(str(emu.link), reply_timeout_s=1.0)
    try:
        link.handshake()
        link.send("3")  # channel 3 off (no reply)
        assert link.command("-") == "Success: Configured internal test signal.$$$"
        link.start()
        parser, got = proto.PacketParser(), []
        deadline = time.monotonic() + 3.0
        while sum(map(len, got)) < 300 and time.monotonic() < deadline:
            got.append(parser.feed(link.read(0.05)))
        counts = np.concatenate([g.counts for g in got])
        link.stop()
    finally:
        link.close()
    uv = counts * proto.uv_per_count(24)
    assert counts.shape[0] >= 300
    assert not counts[:, 2].any()  # powered down
    on = np.delete(uv, 2, axis=1)
    assert np.allclose(np.abs(on), 1875.0, atol=0.02)  # 1.875 mV square on every other channel
    assert set(np.sign(on[:, 0]).tolist()) == {-1.0, 1.0}

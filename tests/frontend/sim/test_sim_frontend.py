"""SimulatedFrontEnd: contiguous blocks of block_ms, ADC clipping as saturation, lead-off,
dropouts, stalls and a finite end; the factory picks it by kind and names what is missing."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest

from appliance.errors import FrontEndError
from appliance.frontend import factory
from appliance.frontend.simulated.frontend import SimulatedFrontEnd


def test_blocks_are_contiguous_and_carry_the_stream(make_cfg):
    cfg = make_cfg(realtime=False, sample_rate_hz=2000, block_ms=16.0)
    fe = SimulatedFrontEnd.from_config(cfg)
    assert fe.channel_names == cfg.frontend.channels and fe.sample_rate_hz == 2000
    with fe:
        blocks = [fe.read_block(0.1) for _ in range(200)]
    assert all(b.n_samples == 32 and b.n_channels == 8 for b in blocks)
    assert [b.first_sample for b in blocks] == list(range(0, 200 * 32, 32))
    trig = np.concatenate([b.trigger for b in blocks])
    stims = [e.sample for e in fe.patient.events if e.sample < len(trig)]
    assert list(np.flatnonzero(trig)) == stims and len(stims) > 30
    lsb = 4.5e6 / 24 / 2**23
    data = np.hstack([b.data_uv for b in blocks])
    assert np.allclose(data / lsb, np.round(data / lsb))  # 24-bit steps at gain 24
    assert fe.health.samples == 6400 and fe.health.missed_samples == 0


def test_lead_off_appears_in_blocks_and_saturates_at_gain_24(make_cfg):
    cfg = make_cfg('[[event]]\ntype = "lead_off"\nchannel = "Erb-L"\nat_s = 0.5\nuntil_s = 1.0\n',
                   realtime=False)
    with SimulatedFrontEnd.from_config(cfg) as fe:
        blocks = [fe.read_block(0.1) for _ in range(100)]
    c = cfg.frontend.channels.index("Erb-L")
    off = np.array([b.lead_off[c] for b in blocks])
    t = np.array([b.first_sample / 1000 for b in blocks])
    assert off[(t > 0.52) & (t < 0.98)].all() and not off[(t < 0.48) | (t > 1.0)].any()
    assert not np.array([np.delete(b.lead_off, c) for b in blocks]).any()
    sat = np.hstack([b.saturated for b in blocks])
    assert sat[c, 600:900].all() and not sat[:, :400].any()
    full = 4.5e6 / 24
    data = np.hstack([b.data_uv for b in blocks])
    assert data[c, 600:900].max() == pytest.approx(full, rel=1e-6)  # clipped at full scale


def test_no_saturation_at_gain_1_for_the_same_lead_off(make_cfg):
    cfg = make_cfg('[[event]]\ntype = "lead_off"\nchannel = "Erb-L"\nat_s = 0.1\n',
                   realtime=False, gain=1)
    with SimulatedFrontEnd.from_config(cfg) as fe:
        blocks = [fe.read_block(0.1) for _ in range(30)]
    assert not np.hstack([b.saturated for b in blocks]).any()
    assert blocks[-1].lead_off[cfg.frontend.channels.index("Erb-L")]


def test_dropout_leaves_a_gap_and_is_counted(make_cfg):
    cfg = make_cfg('[[event]]\ntype = "dropout"\nat_s = 0.1\nsamples = 250\n', realtime=False)
    with SimulatedFrontEnd.from_config(cfg) as fe:
        blocks = [fe.read_block(0.1) for _ in range(20)]
    gaps = [b.first_sample - a.end_sample for a, b in zip(blocks, blocks[1:], strict=False)]
    assert sorted(gaps)[-1] == 250 and sum(gaps) == 250
    assert fe.health.missed_samples == 250


def test_finite_source_ends(make_cfg):
    cfg = make_cfg("duration_s = 0.1\n", realtime=False)
    with SimulatedFrontEnd.from_config(cfg) as fe:
        blocks = []
        while (b := fe.read_block(0.1)) is not None:
            blocks.append(b)
    assert fe.finished and blocks[-1].end_sample == 100
    assert sum(b.n_samples for b in blocks) == 100


def test_stall_returns_none_within_timeout_then_loses_the_samples(make_cfg):
    cfg = make_cfg('[[event]]\ntype = "stall"\nat_s = 0.1\nduration_s = 0.3\n', realtime=True)
    with SimulatedFrontEnd.from_config(cfg) as fe:
        got, nones = [], 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.8:
            t = time.monotonic()
            b = fe.read_block(0.05)
            assert time.monotonic() - t < 0.5  # never blocks much past its timeout
            if b is None:
                nones += 1
            else:
                got.append(b)
    assert nones >= 3 and fe.health.stalls == 1
    gaps = [b.first_sample - a.end_sample for a, b in zip(got, got[1:], strict=False)]
    assert max(gaps) >= 200  # about 0.3 s at 1 kHz kept converting during the stall
    assert fe.health.missed_samples == sum(gaps)


def test_realtime_pacing_follows_the_clock(make_cfg):
    cfg = make_cfg(realtime=True)
    with SimulatedFrontEnd.from_config(cfg) as fe:
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 0.5:
            b = fe.read_block(0.1)
            n = b.end_sample if b is not None else n
    # a real-time source cannot run ahead of the wall clock
    assert 0.3 * 1000 <= n <= 0.5 * 1000 + 16


def test_read_before_start_is_an_error(make_cfg):
    fe = SimulatedFrontEnd.from_config(make_cfg())
    with pytest.raises(FrontEndError, match="start"):
        fe.read_block(0.1)


def test_factory_opens_the_simulated_front_end(make_cfg):
    fe = factory.open_frontend(make_cfg(realtime=False))
    assert isinstance(fe, SimulatedFrontEnd)


def test_factory_names_a_kind_whose_module_is_missing(make_cfg, monkeypatch):
    monkeypatch.setitem(factory.KINDS, "recording",
                        ("appliance.frontend.no_such_module", "RecordingFrontEnd", {}))
    cfg = make_cfg()
    cfg = replace(cfg, frontend=replace(cfg.frontend, kind="recording"))
    with pytest.raises(FrontEndError, match="recording.*no_such_module"):
        factory.open_frontend(cfg)
    with pytest.raises(FrontEndError, match="frontend.kind.*'bogus'"):
        factory.frontend_class("bogus")


@pytest.mark.parametrize("kind", ["ads1299", "ads1299-emulated", "cyton", "recording"])
def test_factory_knows_every_configured_kind(kind):
    from appliance.settings.frontend import FRONTEND_KINDS

    assert kind in FRONTEND_KINDS and kind in factory.KINDS
    try:
        cls, _ = factory.frontend_class(kind)
    except FrontEndError as e:  # not built yet, or a hardware module missing: said clearly
        assert kind in str(e) and "missing module" in str(e)
    else:
        assert callable(cls.from_config)

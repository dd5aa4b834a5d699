"""Driver and front end on the emulator: init sequence, ID check, reconfigure while streaming,
16 channels on two chips, blocks, stalls, missed samples and corrupt frames."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from ads1299_helpers import Ramp, SpiTap

from appliance.config import from_dict
from appliance.errors import FrontEndError
from appliance.frontend.ads1299.driver import Ads1299Chip, ChipConfig
from appliance.frontend.ads1299.emulator import EmulatedBoard
from appliance.frontend.ads1299.frontend import Ads1299FrontEnd
from appliance.frontend.ads1299.registers import Command, Reg, chnset, config1, uv_per_count


def test_init_sequence_on_the_bus(sim_ads1299):
    board = sim_ads1299()
    tap = SpiTap(board.spi(0))
    fe = Ads1299FrontEnd([tap], board.drdy(0), ("a", "b", "c"), 2000, 12, sleep=board.sleep)
    fe.start()
    sent = [mosi for mosi, _ in tap.log]
    assert sent[0] == [Command.RESET]
    assert sent[1] == [Command.SDATAC]
    assert sent[2] == [Command.RREG | Reg.ID, 0, 0] and tap.log[2][1][2] == 0x3E
    assert sent[3] == [Command.WREG | Reg.CONFIG3, 0, 0xE0]  # reference first
    burst = sent[4]
    assert burst[:2] == [Command.WREG | Reg.CONFIG1, 0x16]
    regs = dict(zip(range(1, 0x18), burst[2:], strict=True))
    assert regs[Reg.CONFIG1] == config1(2000) == 0x93
    assert [regs[Reg.CH1SET + c] for c in range(3)] == [chnset(12)] * 3 == [0x50] * 3
    assert [regs[Reg.CH1SET + c] for c in range(3, 8)] == [0xD1] * 5  # off, shorted
    assert regs[Reg.LOFF_SENSP] == regs[Reg.LOFF_SENSN] == 0b111
    assert regs[Reg.CONFIG4] == 0x02 and regs[Reg.GPIO] == 0x0F
    assert sent[5][0] == Command.RREG | Reg.CONFIG1  # read back to verify
    assert sent[-2:] == [[Command.RDATAC], [Command.START]]
    chip = board.spi(0)
    assert chip.rdatac and chip.running and chip.regs[Reg.CONFIG3] == 0xEC


def test_driver_must_wait_for_reset(sim_ads1299):
    board = sim_ads1299()
    chip = Ads1299Chip(board.spi(0), "emu", sleep=lambda s: None)  # a driver that never waits
    with pytest.raises(FrontEndError, match="ID register read 0x00"):
        chip.power_up(ChipConfig())


@pytest.mark.parametrize("chip_id", [0x00, 0xFF, 0x92])
def test_id_mismatch_names_expected_and_read_id(sim_ads1299, chip_id):
    board = sim_ads1299(chip_ids=(chip_id,))
    fe = Ads1299FrontEnd(list(board.chips), board.drdy(0), ("a",), sleep=board.sleep)
    with pytest.raises(FrontEndError) as e:
        fe.start()
    msg = str(e.value)
    assert f"read 0x{chip_id:02X}" in msg and "expected 0x3E" in msg and "spi chip 1" in msg


def test_ads1299_4_and_6_variants(sim_ads1299):
    board = sim_ads1299(lambda n: np.full((8, n), 20.0), chip_ids=(0x3C,))
    fe = Ads1299FrontEnd(list(board.chips), board.drdy(0), ("a", "b"), sleep=board.sleep)
    fe.start()
    assert fe.chips[0].n_channels == 4 and fe.chips[0].id_byte == 0x3C
    assert len(fe.chips[0].read_frame()) == 15  # 3 status + 4 x 3 bytes
    b = fe.read_block()
    assert b.data_uv.shape == (2, fe.block_samples)
    assert np.allclose(b.data_uv, 20.0, atol=uv_per_count(24))
    board = sim_ads1299(chip_ids=(0x3D,))  # ADS1299-6 cannot serve 8 names
    fe = Ads1299FrontEnd(list(board.chips), board.drdy(0), tuple("abcdefgh"),
                         sleep=board.sleep)
    with pytest.raises(FrontEndError, match="names 8 channels but the spi chip 1 has 6"):
        fe.start()


def test_register_readback_mismatch_is_an_error(sim_ads1299):
    board = sim_ads1299()
    board.spi(0).mode = 0  # wrong SPI mode: every byte read back is shifted
    fe = Ads1299FrontEnd(list(board.chips), board.drdy(0), ("a",), sleep=board.sleep)
    with pytest.raises(FrontEndError, match="ID register read 0x1F"):
        fe.start()


def test_blocks_carry_the_source_triggers_and_lead_off(make_frontend):
    ramp = Ramp(8)
    fe, board = make_frontend(source=ramp, rate_hz=1000, block_ms=20)
    fe.start()
    blocks = [fe.read_block() for _ in range(10)]
    assert [b.n_samples for b in blocks] == [20] * 10
    assert [b.first_sample for b in blocks] == list(range(0, 200, 20))
    data = np.concatenate([b.data_uv for b in blocks], axis=1)
    src = Ramp.phase(data) + np.arange(200)  # source sample of each ADC sample
    assert np.allclose(data, ramp.expected(src), atol=uv_per_count(24))
    trig = np.concatenate([b.trigger for b in blocks])
    assert np.flatnonzero(trig & 1).tolist() == np.flatnonzero(src % 50 == 0).tolist()
    assert np.flatnonzero(trig & 4).tolist() == np.flatnonzero(src % 25 == 7).tolist()
    assert np.count_nonzero(trig & 1) >= 3
    assert not any(b.lead_off.any() for b in blocks)
    board.set_lead_off(6, side="N")
    b = fe.read_block()
    assert b.lead_off.tolist() == [c == 6 for c in range(8)]
    assert fe.health.samples == 220 and fe.health.missed_samples == 0


def test_reconfigure_while_streaming(make_frontend):
    fe, board = make_frontend(source=lambda n: np.full((8, n), 1000.0), rate_hz=500)
    fe.start()
    b = fe.read_block()
    assert np.allclose(b.data_uv, 1000.0, atol=0.03)
    fe.set_gain(1)
    chip = board.spi(0)
    assert chip.rdatac and chip.running
    assert chip.regs[Reg.CH1SET] == chnset(1)
    b = fe.read_block()
    assert np.allclose(b.data_uv, 1000.0, atol=uv_per_count(1))  # decoded with the new gain
    fe.reconfigure([replace(fe.configs[0], sample_rate_hz=250)])  # data rate: DRDY period too
    t0 = board.now
    fe.read_block()
    assert (board.now - t0) == pytest.approx(fe.block_samples * 2_048_000 / 250, abs=8192)
    assert fe.health.missed_samples == 0 and fe.health.stalls == 0


def test_commands_sent_in_rdatac_to_registers_are_ignored_by_the_chip(make_frontend):
    fe, board = make_frontend()
    fe.start()
    fe.chips[0].wreg(Reg.CH1SET, [0x00])  # forgot SDATAC: the chip ignores it
    fe.chips[0].stop()
    assert fe.chips[0].rreg(Reg.CH1SET) == [chnset(24)]


def test_sixteen_channels_on_two_chips(make_frontend):
    ramp = Ramp(16)
    fe, board = make_frontend(n_channels=16, source=ramp, rate_hz=500)
    fe.start()
    assert [c.config.clk_out for c in fe.chips] == [True, False]
    blocks = [fe.read_block() for _ in range(5)]
    data = np.concatenate([b.data_uv for b in blocks], axis=1)
    assert data.shape == (16, 40)
    src = Ramp.phase(data) + np.arange(40)
    assert np.allclose(data, ramp.expected(src), atol=uv_per_count(24))
    board.set_lead_off(12, side="P")
    assert fe.read_block().lead_off.tolist() == [c == 12 for c in range(16)]


def test_drdy_stall_is_detected_within_half_a_second(make_frontend):
    fe, board = make_frontend(rate_hz=1000)
    fe.start()
    assert fe.read_block() is not None
    board.chips[0].faults.drdy_stalled = True
    t0 = board.now_s
    assert fe.read_block() is None
    assert fe.health.stalls == 1 and board.now_s - t0 <= 0.5 + 0.02
    assert "no DRDY" in fe.health.last_error
    assert fe.read_block() is None and fe.health.stalls == 1  # same episode
    board.chips[0].faults.drdy_stalled = False
    assert fe.read_block() is not None
    board.chips[0].faults.drdy_stalled = True
    for _ in range(4):  # short caller timeouts add up to a stall
        assert fe.read_block(timeout_s=0.1) is None
    assert fe.health.stalls == 1
    assert fe.read_block(timeout_s=0.1) is None
    assert fe.health.stalls == 2


def test_missed_samples_counted_from_drdy_sequence(make_frontend):
    fe, board = make_frontend(source=Ramp(8), rate_hz=1000, block_ms=10)
    fe.start()
    first = fe.read_block()
    phase = Ramp.phase(first.data_uv)
    board.drdy(0).miss_next(3)
    a = fe.read_block()
    assert fe.health.missed_samples == 3
    assert a.first_sample == first.end_sample + 3  # a gap starts a new block
    src = phase + np.arange(a.first_sample, a.end_sample)
    assert np.allclose(a.data_uv, Ramp(8).expected(src), atol=0.03)
    board.sleep(0.0205)  # 20 conversions while the reader is away: it gets the last, 19 lost
    b = fe.read_block()
    assert fe.health.missed_samples == 3 + 19
    assert b.first_sample == a.end_sample + 19


def test_corrupt_frames_are_counted_and_never_delivered(make_frontend):
    fe, board = make_frontend(source=Ramp(8), rate_hz=1000, block_ms=10)
    fe.start()
    phase = Ramp.phase(fe.read_block().data_uv)
    chip = board.chips[0]
    chip.faults.corrupt_status = True
    chip.invalidate()
    assert fe.read_block() is None  # every frame of this block was corrupt
    assert fe.health.corrupt_frames == 10
    chip.faults.corrupt_status = False
    chip.invalidate()
    b = fe.read_block()
    assert b.first_sample == 20  # the corrupt samples are a gap, not data
    assert np.allclose(b.data_uv, Ramp(8).expected(phase + np.arange(20, 30)), atol=0.03)
    assert fe.health.samples == 20 and fe.health.missed_samples == 0


def test_from_config_emulated_uses_the_simulated_patient():
    cfg = from_dict({
        "frontend": {"kind": "ads1299-emulated", "sample_rate_hz": 2000, "realtime": False,
                     "channels": ["C3'-Fz", "C4'-Fz", "Erb-L", "Erb-R"]},
        "analysis": {"sites": [{"name": "L median", "modality": "ssep_upper",
                                "channels": ["C4'-Fz", "Erb-L"], "trigger_bit": 1,
                                "rate_hz": 4.7}]},
    })
    with Ads1299FrontEnd.from_config(cfg, emulated=True) as fe:
        fe.start()
        blocks = [fe.read_block() for _ in range(200)]  # 3.2 s
        assert type(fe.board.source).__name__ == "Patient"
        assert all(b.n_samples == 32 and b.data_uv.shape == (4, 32) for b in blocks)
        trig = np.concatenate([b.trigger for b in blocks])
        n_stim = np.count_nonzero(trig & 2)
        assert 12 <= n_stim <= 18  # ~4.7 Hz for 3.2 s
        data = np.concatenate([b.data_uv for b in blocks], axis=1)
        assert 0.5 < data.std(axis=1).min() and np.abs(data).max() < 1e5
    assert fe.health.connected is False


def test_emulated_board_realtime_pacing_tracks_the_wall_clock():
    import time

    board = EmulatedBoard(None, 1000, realtime=True)
    t0 = time.monotonic()
    board.sleep(0.05)
    assert time.monotonic() - t0 >= 0.045


def test_scenario_stall_and_dropout_reach_the_emulated_chip(tmp_path):
    sc = tmp_path / "faults.toml"
    sc.write_text('name = "faults"\n'
                  '[[event]]\ntype = "dropout"\nat_s = 0.5\nsamples = 7\n'
                  '[[event]]\ntype = "stall"\nat_s = 1.0\nduration_s = 0.8\n')
    cfg = from_dict({"frontend": {"kind": "ads1299-emulated", "sample_rate_hz": 1000,
                                  "realtime": False, "channels": ["C3'-Fz", "C4'-Fz"],
                                  "scenario": str(sc)}})
    with Ads1299FrontEnd.from_config(cfg, emulated=True) as fe:
        fe.start()
        results = [fe.read_block() for _ in range(150)]
        assert fe.health.missed_samples >= 7
        assert fe.health.stalls == 1
        assert results.count(None) >= 1
        blocks = [b for b in results if b is not None]
        gaps = [b.first_sample - a.end_sample for a, b in zip(blocks, blocks[1:], strict=False)]
        assert 7 in gaps  # the dropout
        assert max(gaps) >= 700  # the 0.8 s stall: the chip kept converting, unread


def test_real_spi_that_cannot_open_names_the_device():
    """Here (no Pi) the real path must fail loudly, never fall back to the emulator."""
    from appliance.frontend.ads1299.spi import SpidevSpi, open_drdy

    with pytest.raises(FrontEndError, match="/dev/spidev0.1"):
        SpidevSpi(0, 1)
    cfg = from_dict({"frontend": {"kind": "ads1299", "spi_device": 0}})
    with pytest.raises(FrontEndError, match="spidev0.0"):
        Ads1299FrontEnd.from_config(cfg, emulated=False)
    try:
        import gpiod  # noqa: F401
    except ImportError:
        with pytest.raises(FrontEndError, match="gpiod>=2"):
            open_drdy(26)


def test_chip_reset_by_a_brown_out_is_reinitialised(make_frontend):
    fe, board = make_frontend(source=Ramp(8), rate_hz=1000, block_ms=10)
    fe.start()
    first = fe.read_block()
    board.chips[0].power_cycle()  # registers back to defaults, no conversions
    results = [fe.read_block(timeout_s=0.1) for _ in range(12)]
    assert results[:10] == [None] * 10 and fe.health.stalls == 1
    assert fe.health.reconnects == 1 and fe.health.connected
    b = next(r for r in results if r is not None)
    assert board.chips[0].regs[Reg.CH1SET] == chnset(24)  # configured again
    # the second of silence is a gap in the sample index, not glued-together data
    assert b.first_sample - first.end_sample >= 950
    src = Ramp.phase(b.data_uv) + np.arange(b.n_samples)
    assert np.allclose(b.data_uv, Ramp(8).expected(src), atol=0.03)


def test_failed_recovery_keeps_trying_and_says_why(make_frontend):
    fe, board = make_frontend(rate_hz=1000, noise_uv_rms=1.0)
    fe.start()
    fe.read_block()
    chip = board.chips[0]
    chip.chip_id = 0xFF  # the chip is gone: MISO floats high
    chip.power_cycle()
    for _ in range(40):  # 4 s of 0.1 s waits
        assert fe.read_block(timeout_s=0.1) is None
    assert fe.health.stalls == 1 and fe.health.reconnects == 0
    assert not fe.health.connected and "read 0xFF" in fe.health.last_error
    chip.chip_id = 0x3E  # seated again
    for _ in range(30):
        if fe.read_block(timeout_s=0.1) is not None:
            break
    assert fe.health.reconnects == 1 and fe.health.connected


def test_spi_clock_too_fast_for_back_to_back_command_bytes_fails_clearly():
    cfg = from_dict({"frontend": {"kind": "ads1299-emulated", "spi_speed_hz": 8_000_000,
                                  "realtime": False}})
    fe = Ads1299FrontEnd.from_config(cfg, emulated=True)
    with pytest.raises(FrontEndError,
                       match=r"register CONFIG1 reads 0x00 after writing 0x92.*speed"):
        fe.start()
    fe.close()
    cfg = from_dict({"frontend": {"kind": "ads1299-emulated", "spi_speed_hz": 4_000_000,
                                  "realtime": False}})
    with Ads1299FrontEnd.from_config(cfg, emulated=True) as fe:
        fe.start()  # 4 MHz is within the datasheet's limit
        assert fe.read_block() is not None


def test_a_reader_returning_frames_early_gives_the_same_blocks():
    """The seam allows a reader (the compiled one) to return fewer frames than asked: the front
    end keeps draining until a block is full and takes only an empty batch for a timeout."""
    from appliance.frontend.ads1299.reader import PythonFrameReader

    class FewAtATime(PythonFrameReader):
        def drain(self, max_frames, timeout_s):
            return super().drain(min(max_frames, 3), timeout_s)

    blocks = []
    for few in (False, True):
        board = EmulatedBoard(Ramp(8), 1000, noise_uv_rms=0.0)
        reader = FewAtATime(board.chips, board.drdy(0), 27, 1000, threaded=False) if few else None
        fe = Ads1299FrontEnd(list(board.chips), board.drdy(0), tuple("abcdefgh"), 1000,
                             block_ms=10, sleep=board.sleep, board=board, reader=reader)
        fe.start()
        blocks.append([fe.read_block() for _ in range(5)])
        fe.close()
    for a, b in zip(*blocks, strict=True):
        assert a.first_sample == b.first_sample and a.n_samples == b.n_samples == 10
        np.testing.assert_array_equal(a.data_uv, b.data_uv)
    assert fe.health.missed_samples == 0 and fe.health.stalls == 0

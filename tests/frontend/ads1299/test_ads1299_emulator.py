"""Register-level behaviour of the ADS1299 emulator, driven by raw SPI bytes as a host would."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.frontend.ads1299.decode import decode_frames
from appliance.frontend.ads1299.registers import (
    F_CLK_HZ,
    N_REGISTERS,
    RESET_DEFAULTS,
    Command,
    Reg,
    chnset,
    config1,
    uv_per_count,
)

RREG, WREG = Command.RREG, Command.WREG


def rreg(chip, addr, count=1):
    return chip.xfer2([RREG | addr, count - 1] + [0] * count)[2:]


def wreg(chip, addr, values):
    chip.xfer2([WREG | addr, len(values) - 1] + list(values))


def sdatac(chip, board):
    board.sleep(1e-3)  # let any RESET finish
    chip.xfer2([Command.SDATAC])


def test_powers_up_in_rdatac_and_ignores_register_access(sim_ads1299):
    board = sim_ads1299()
    chip = board.spi(0)
    assert rreg(chip, Reg.ID) == [0]  # RREG ignored in RDATAC
    wreg(chip, Reg.CONFIG1, [0x95])  # WREG ignored in RDATAC
    sdatac(chip, board)
    assert rreg(chip, Reg.ID) == [0x3E]
    assert rreg(chip, Reg.CONFIG1) == [0x96]


def test_reset_defaults_read_as_a_range(sim_ads1299):
    board = sim_ads1299()
    chip = board.spi(0)
    sdatac(chip, board)
    assert rreg(chip, 0, N_REGISTERS) == [RESET_DEFAULTS[Reg(a)] for a in range(N_REGISTERS)]


def test_wreg_range_and_read_only_registers(sim_ads1299):
    board = sim_ads1299()
    chip = board.spi(0)
    sdatac(chip, board)
    wreg(chip, Reg.CH1SET, [0x00, 0x10, 0x20, 0x30])
    assert rreg(chip, Reg.CH1SET, 5) == [0x00, 0x10, 0x20, 0x30, 0x61]
    wreg(chip, Reg.ID, [0x12])
    wreg(chip, Reg.LOFF_STATP, [0xFF, 0xFF])
    assert rreg(chip, Reg.ID) == [0x3E]
    assert rreg(chip, Reg.LOFF_STATP, 2) == [0, 0]


def test_raising_cs_abandons_a_partial_command(sim_ads1299):
    board = sim_ads1299()
    chip = board.spi(0)
    sdatac(chip, board)
    chip.xfer2([WREG | Reg.CONFIG2, 0])  # data byte never sent: CS went high
    chip.xfer2([0xD5])  # a new transaction: not a WREG data byte, not an opcode
    assert rreg(chip, Reg.CONFIG2) == [0xC0]


def test_reset_restores_defaults_returns_to_rdatac_and_needs_18_tclk(sim_ads1299):
    board = sim_ads1299()
    chip = board.spi(0)
    sdatac(chip, board)
    wreg(chip, Reg.CONFIG1, [0x95])
    chip.xfer2([Command.RESET])
    chip.xfer2([Command.SDATAC])  # sent too soon: ignored while RESET executes
    assert rreg(chip, Reg.CONFIG1) == [0]  # still in RDATAC
    board.advance(18)
    chip.xfer2([Command.SDATAC])
    assert rreg(chip, Reg.CONFIG1) == [0x96]


def test_start_in_rdatac_streams_and_stop_works_in_sdatac(sim_ads1299):
    board = sim_ads1299()
    chip, drdy = board.spi(0), board.drdy(0)
    assert not drdy.wait(0.01)  # no conversions before START
    chip.xfer2([Command.START])  # system command accepted in RDATAC
    assert drdy.wait(0.01)
    assert len(chip.readbytes(27)) == 27
    chip.xfer2([Command.SDATAC, Command.STOP])
    assert not drdy.wait(0.01)


@pytest.mark.parametrize("rate", [250, 500, 1000, 2000, 4000, 8000, 16000])
def test_drdy_period_follows_config1(sim_ads1299, rate):
    board = sim_ads1299()
    chip, drdy = board.spi(0), board.drdy(0)
    sdatac(chip, board)
    wreg(chip, Reg.CONFIG1, [config1(rate)])
    chip.xfer2([Command.START])
    assert drdy.wait(1.0)
    t0, s0 = board.now, drdy.sequence
    for _ in range(10):
        assert drdy.wait(1.0)
    assert board.now - t0 == 10 * F_CLK_HZ // rate
    assert drdy.sequence - s0 == 10


def test_late_reader_sees_a_sequence_jump(sim_ads1299):
    board = sim_ads1299()
    chip, drdy = board.spi(0), board.drdy(0)
    chip.xfer2([Command.START])
    assert drdy.wait(0.1)
    s = drdy.sequence
    board.sleep(5.5 / 250)  # busy elsewhere for 5.5 periods (CONFIG1 default: 250 SPS)
    assert drdy.wait(0.1)
    assert drdy.sequence - s == 5
    drdy.miss_next(3)
    assert drdy.wait(0.1)
    assert drdy.sequence - s == 9


def stream(board, regs: dict[int, int], n: int) -> bytes:
    """Configure in SDATAC, then RDATAC + START and read n frames on DRDY."""
    chip, drdy = board.spi(0), board.drdy(0)
    sdatac(chip, board)
    for addr, value in regs.items():
        wreg(chip, addr, [value])
    chip.xfer2([Command.RDATAC, Command.START])
    out = bytearray()
    for _ in range(n):
        assert drdy.wait(0.5)
        out += bytes(chip.xfer2([0] * 27))
    return bytes(out)


def test_internal_test_signal_is_1875_uv_square_at_fclk_over_2_21(sim_ads1299):
    board = sim_ads1299()
    raw = stream(board, {Reg.CONFIG1: config1(250), Reg.CONFIG2: 0xD0,
                         **{Reg.CH1SET + c: 0x05 for c in range(8)}}, 1000)  # 4 s at gain 1
    f = decode_frames(raw, gains=1)
    x = f.data_uv[0]
    assert np.allclose(np.abs(x), 1875.0, atol=uv_per_count(1))
    edges = np.flatnonzero(np.diff(np.sign(x)))
    half_period_s = np.diff(edges).mean() / 250
    assert half_period_s == pytest.approx(2**20 / F_CLK_HZ, rel=0.01)  # ~0.98 Hz square


def test_temperature_mvdd_shorted_and_power_down(sim_ads1299):
    board = sim_ads1299(temperature_c=30.0, noise_uv_rms=1.0)
    raw = stream(board, {Reg.CH1SET: chnset(1, mux=4), Reg.CH2SET: chnset(1, mux=3),
                         Reg.CH3SET: chnset(1, mux=3), Reg.CH4SET: chnset(24, mux=1),
                         Reg.CH5SET: chnset(24, power_down=True)}, 2000)
    f = decode_frames(raw, gains=np.array([1, 1, 1, 24, 24, 24, 24, 24]))
    assert f.data_uv[0].mean() == pytest.approx(145_300 + 490 * 5, abs=1)
    assert f.data_uv[1].mean() == pytest.approx(2.5e6, abs=2)  # (AVDD + AVSS) / 2
    assert f.data_uv[2].mean() == pytest.approx(3.3e6 / 4, abs=2)  # DVDD / 4 on channel 3
    assert f.data_uv[3].std() == pytest.approx(1.0, rel=0.1)  # shorted: input noise only
    assert np.all(f.counts[4] == 0)  # powered down


def test_normal_input_gain_and_clipping(sim_ads1299):
    def source(n):  # 100 µV on ch1, -1 V on ch2 (beyond full scale at any gain), ramp on ch3
        uv = np.zeros((8, n))
        uv[0], uv[1], uv[2] = 100.0, -1e6, np.linspace(-1000, 1000, n)
        return uv

    board = sim_ads1299(source, 250)
    raw = stream(board, {Reg.CONFIG1: config1(250)}, 100)  # reset CHnSET: gain 24, MUX 001...
    f = decode_frames(raw, gains=24)
    assert np.all(f.counts[0] == 0)  # ...and the default MUX is 'shorted', not the electrode
    board2 = sim_ads1299(source, 250)
    raw = stream(board2, {Reg.CONFIG1: config1(250),
                          **{Reg.CH1SET + c: chnset(24) for c in range(8)}}, 100)
    f = decode_frames(raw, gains=24)
    assert np.allclose(f.data_uv[0], 100.0, atol=uv_per_count(24))
    assert np.all(f.counts[1] == -0x800000) and np.all(f.saturated[1])
    assert not f.saturated[0].any()


def test_lead_off_bits_only_with_comparators_on(sim_ads1299):
    board = sim_ads1299()
    board.set_lead_off(2, side="P")
    board.set_lead_off(5, side="N")
    regs = {Reg.LOFF_SENSP: 0xFF, Reg.LOFF_SENSN: 0xFF}
    f = decode_frames(stream(board, regs, 5), gains=24)
    assert not f.lead_off_p.any() and not f.lead_off_n.any()  # CONFIG4.PD_LOFF_COMP = 0
    board = sim_ads1299()
    board.set_lead_off(2, side="P")
    board.set_lead_off(5, side="N")
    f = decode_frames(stream(board, {**regs, Reg.CONFIG4: 0x02}, 5), gains=24)
    assert f.lead_off_p[:, 0].tolist() == [c == 2 for c in range(8)]
    assert f.lead_off_n[:, 0].tolist() == [c == 5 for c in range(8)]
    chip = board.spi(0)
    chip.xfer2([Command.SDATAC])
    assert rreg(chip, Reg.LOFF_STATP, 2) == [0x04, 0x20]


def test_gpio_inputs_carry_source_triggers(sim_ads1299):
    def make_source():
        state = {"i": 0}

        def source(n):
            idx = state["i"] + np.arange(n)
            state["i"] += n
            return np.zeros((8, n)), np.where(idx % 10 == 3, 0b0101, 0).astype(np.uint16)

        return source

    board = sim_ads1299(make_source(), 250)
    f = decode_frames(stream(board, {Reg.CONFIG1: config1(250), Reg.GPIO: 0x0F}, 40))
    assert np.flatnonzero(f.trigger).tolist() == [3, 13, 23, 33]
    assert set(f.trigger.tolist()) == {0, 5}
    board = sim_ads1299(make_source(), 250)  # GPIO as outputs driving 1010: triggers not seen
    f = decode_frames(stream(board, {Reg.CONFIG1: config1(250), Reg.GPIO: 0xA0}, 40))
    assert set(f.trigger.tolist()) == {0b1010}


def test_wrong_spi_mode_misaligns_miso(sim_ads1299):
    board = sim_ads1299()
    chip = board.spi(0)
    sdatac(chip, board)
    chip.mode = 0
    assert rreg(chip, Reg.ID) == [0x3E >> 1]


def test_rdata_in_sdatac_and_standby_wakeup(sim_ads1299):
    board = sim_ads1299(lambda n: np.full((8, n), 50.0), 250)
    chip, drdy = board.spi(0), board.drdy(0)
    sdatac(chip, board)
    wreg(chip, Reg.CH1SET, [chnset(24)])
    chip.xfer2([Command.START])  # conversions run in SDATAC too
    assert drdy.wait(0.1)
    assert chip.readbytes(27) == [0] * 27  # no RDATAC: nothing is clocked out
    rx = chip.xfer2([Command.RDATA] + [0] * 27)[1:]  # RDATA, then the frame
    f = decode_frames(bytes(rx))
    assert f.valid[0] and f.data_uv[0, 0] == pytest.approx(50.0, abs=uv_per_count(24))
    chip.xfer2([Command.STANDBY])
    assert not drdy.wait(0.1)
    chip.xfer2([Command.WAKEUP, Command.START])
    assert drdy.wait(0.1)


def test_dc_test_signal_is_minus_vref_over_2400_and_x2(sim_ads1299):
    board = sim_ads1299()
    regs = {Reg.CONFIG1: config1(250), Reg.CONFIG2: 0xD7,  # internal, x2, DC
            **{Reg.CH1SET + c: 0x05 for c in range(8)}}
    f = decode_frames(stream(board, regs, 10), gains=1)
    assert np.allclose(f.data_uv, -3750.0, atol=uv_per_count(1))

"""Our driver against the emulator on a pty: handshake errors, channel settings and their
replies, board mode digital with sample-accurate trigger bits, the emulator's command set."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from appliance import config
from appliance.errors import ConfigError, FrontEndError
from appliance.frontend.cyton import protocol as proto
from appliance.frontend.cyton.driver import CytonLink
from appliance.frontend.cyton.emulator import BOOT_TEXT
from appliance.frontend.cyton.frontend import CytonFrontEnd
from appliance.frontend.cyton.sources import CountsSource, GeneratorSource


def test_board_off_is_a_clear_error(cyton_emulator, cyton_front_end):
    emu = cyton_emulator(board_on=False)
    fe = cyton_front_end(emu.link)
    with pytest.raises(FrontEndError, match="board is off") as e:
        fe.start()
    assert "Device failed to poll Host" in str(e.value) and str(emu.link) in str(e.value)
    assert not fe.health.connected


def test_silent_port_is_a_clear_error(tmp_path, cyton_front_end):
    master, slave = os.openpty()  # a serial port where nothing answers
    try:
        fe = cyton_front_end(os.ttyname(slave), reply_timeout_s=0.3)
        t0 = time.monotonic()
        with pytest.raises(FrontEndError, match="no reply to 'v' within 0.3 s"):
            fe.start()
        assert time.monotonic() - t0 < 2.0
    finally:
        os.close(master)
        os.close(slave)


def test_missing_port_is_a_clear_error(tmp_path, cyton_front_end):
    with pytest.raises(FrontEndError, match="cannot open it"):
        cyton_front_end(tmp_path / "ttyNOTHERE").start()


def test_not_an_openbci_reply(tmp_path, cyton_front_end):
    master, slave = os.openpty()
    try:
        fe = cyton_front_end(os.ttyname(slave), reply_timeout_s=0.5)

        def answer() -> None:
            time.sleep(0.15)
            os.write(master, b"OK\r\nATZ$$$")  # something that is not a Cyton answers 'v'

        threading.Thread(target=answer, daemon=True).start()
        with pytest.raises(FrontEndError, match="not an OpenBCI boot text"):
            fe.start()
    finally:
        os.close(master)
        os.close(slave)


def test_channel_settings_sent_and_acknowledged(cyton_emulator, cyton_front_end):
    emu = cyton_emulator()
    fe = cyton_front_end(emu.link, channels=("a", "b", "c"), gain=8)
    fe.start()
    assert fe.firmware == "v3.1.2"
    # gain 8 = code 4 on the three used channels; the rest powered down and out of bias/SRB2
    assert emu.commands[:2] == ["s", "v"]
    assert emu.commands[2:10] == [f"x{c}040110X" for c in "123"] + [f"x{c}140000X" for c in "45678"]
    deadline = time.monotonic() + 2.0
    while len(emu.commands) < 12 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emu.commands[10:] == ["/3", "b"] and emu.streaming
    assert emu.board_mode == "digital"
    assert emu.channels[0] == "040110" and emu.channels[7] == "140000"


def test_link_replies_from_the_emulator(cyton_emulator):
    emu = cyton_emulator()
    link = CytonLink(str(emu.link), reply_timeout_s=1.0)
    try:
        assert link.handshake() == BOOT_TEXT.decode()
        assert link.command("D") == "060110$$$"
        assert link.command("d") == "updating channel settings to default$$$"
        assert link.command("x3160110X") == "Success: Channel set for 3$$$"
        assert link.command("z311Z") == "Success: Lead off set for 3$$$"
        assert link.command("//") == "default$$$"
        assert link.command("/4") == "Success: marker$$$"
        assert link.command("~~") == "Sample rate is 250Hz$$$"
        assert link.command("~6") == "Success: Sample rate is 250Hz$$$"
        assert link.command("~4").startswith("Failure: 1000Hz needs the WiFi shield")
        dump = link.command("?")
        assert "ADS_ID, 00, 3E" in dump and "CH3SET, 07, E8" in dump  # PD=1, gain 24, SRB2 1
        with pytest.raises(
            FrontEndError, match="'x1090110X' failed: .Failure: Err: invalid channel setting"
        ):
            link.expect_success("x1090110X")  # gain code 9 does not exist
        with pytest.raises(FrontEndError, match="invalid channel '9'"):
            link.expect_success("x9060110X")
        with pytest.raises(FrontEndError, match="gain 3 is not one of"):
            link.set_channel(1, 3)
    finally:
        link.close()


def test_digital_mode_trigger_bits_arrive_sample_accurately(
    cyton_emulator, cyton_front_end, read_blocks
):
    n = 2000
    rng = np.random.default_rng(7)
    counts = rng.integers(-(1 << 20), 1 << 20, (n, 8))
    trigger = np.zeros(n, np.uint16)
    at = np.sort(rng.choice(n, 60, replace=False))
    trigger[at] = 1 << rng.integers(0, 5, at.size)  # D11, D12, D13, D17, D18
    trigger[at[:5]] = 0b11111  # all five inputs at once
    emu = cyton_emulator(CountsSource(counts, trigger))
    fe = cyton_front_end(emu.link)
    fe.start()
    blocks = read_blocks(fe, n)
    got = np.concatenate([b.trigger for b in blocks])
    first = np.array([b.first_sample for b in blocks])
    assert got.dtype == np.uint16 and np.array_equal(got, trigger)
    idx = np.concatenate([b.first_sample + np.arange(b.n_samples) for b in blocks])
    assert np.array_equal(idx[got != 0], at) and first[0] == 0
    data = np.concatenate([b.data_uv for b in blocks], axis=1)
    assert np.array_equal(np.round(data.T / proto.uv_per_count(24)), counts)


class _Sine:
    """A µV generator (what a simulated patient offers): 8 channels of 500 µV at 7 Hz."""

    def __init__(self) -> None:
        self.n = 0

    def generate(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        t = (self.n + np.arange(n)) / 250.0
        self.n += n
        uv = 500.0 * np.sin(2 * np.pi * 7.0 * t) * np.arange(1, 9)[:, None]
        return uv, (np.arange(self.n - n, self.n) % 50 == 0).astype(np.uint16)


@pytest.mark.parametrize("gain", [1, 8, 24])
def test_gain_applied_by_board_and_driver(cyton_emulator, cyton_front_end, read_blocks, gain):
    emu = cyton_emulator(GeneratorSource(_Sine()))
    fe = cyton_front_end(emu.link, gain=gain)
    fe.start()
    blocks = read_blocks(fe, 500)
    data = np.concatenate([b.data_uv for b in blocks], axis=1)[:, :500]
    t = (blocks[0].first_sample + np.arange(500)) / 250.0
    want = 500.0 * np.sin(2 * np.pi * 7.0 * t) * np.arange(1, 9)[:, None]
    # within half a count at that gain (0.27 µV at gain 1, 0.011 µV at 24)
    assert np.abs(data - want).max() <= proto.uv_per_count(gain) / 2 + 1e-9
    assert emu.channels[0][1] == str(proto.CODE_BY_GAIN[gain])


def test_saturation_flagged_at_full_scale(cyton_emulator, cyton_front_end, read_blocks):
    counts = np.zeros((40, 8), np.int64)
    counts[10, 2], counts[11, 5], counts[12, 0] = (1 << 23) - 1, -(1 << 23), (1 << 23) - 2
    emu = cyton_emulator(CountsSource(counts))
    fe = cyton_front_end(emu.link)
    fe.start()
    blocks = read_blocks(fe, 40)
    sat = np.concatenate([b.saturated for b in blocks], axis=1)
    assert sat.sum() == 2 and sat[2, 10] and sat[5, 11] and not sat[0, 12]


def test_from_config(cyton_emulator):
    emu = cyton_emulator()
    base = {"kind": "cyton", "port": str(emu.link), "sample_rate_hz": 250, "block_ms": 20.0}
    fe = CytonFrontEnd.from_config(config.from_dict({"frontend": base}))
    assert fe.block_samples == 5 and fe.sample_rate_hz == 250.0 and len(fe.channel_names) == 8
    with pytest.raises(ConfigError, match="frontend.sample_rate_hz: got 4000, allowed: 250"):
        CytonFrontEnd.from_config(config.from_dict({"frontend": {**base, "sample_rate_hz": 4000}}))
    with pytest.raises(ConfigError, match="frontend.port: got ''"):
        CytonFrontEnd.from_config(config.from_dict({"frontend": {**base, "port": ""}}))
    nine = [f"c{i}" for i in range(9)]
    with pytest.raises(ConfigError, match="frontend.channels: got 9 names"):
        CytonFrontEnd.from_config(config.from_dict({"frontend": {**base, "channels": nine}}))

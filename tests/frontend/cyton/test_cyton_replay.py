"""The OpenBCI recording replayed as Cyton packets on a pty: our driver and BrainFlow (an
independent Cyton client) both get the values the board sent."""

from __future__ import annotations

import time

import numpy as np
import pytest
from brainflow.board_shim import BoardIds, BoardShim, BrainFlowInputParams

from appliance.errors import RecordingError
from appliance.frontend.cyton.protocol import uv_per_count
from appliance.frontend.cyton.sources import CountsSource, load_openbci_txt

SCALE = uv_per_count(24)


def test_recording_through_emulator_and_driver(
    cyton_emulator, cyton_front_end, cyton_recording, read_blocks
):
    uv_file, counts = cyton_recording
    emu = cyton_emulator(CountsSource(counts))
    fe = cyton_front_end(emu.link)
    fe.start()
    blocks = read_blocks(fe, counts.shape[0])
    data = np.concatenate([b.data_uv for b in blocks], axis=1).T
    assert data.shape == counts.shape
    # consecutive, gap-free sample indices from 0
    firsts = np.array([b.first_sample for b in blocks])
    sizes = np.array([b.n_samples for b in blocks])
    assert firsts[0] == 0 and np.array_equal(firsts[1:], np.cumsum(sizes)[:-1])
    assert fe.health.missed_samples == 0 and fe.health.corrupt_frames == 0
    # exactly the counts the board sent ...
    ours = data / SCALE
    assert np.abs(ours - np.round(ours)).max() < 1e-6
    assert np.array_equal(np.round(ours).astype(np.int64), counts)
    # ... and the file's µV within its 0.01 µV rounding. The OpenBCI GUI computed in float32
    # (Java float), so model that for the tight bound; in float64 the gap adds a float32 ulp.
    gui = (np.round(ours).astype(np.float32) * np.float32(SCALE)).astype(np.float64)
    assert np.abs(gui - uv_file).max() <= 0.005 + 1e-9
    ulp32 = np.spacing(np.abs(uv_file).astype(np.float32)).astype(np.float64)
    assert np.all(np.abs(data - uv_file) <= 0.005 + 1.5 * ulp32)
    assert not np.any(np.concatenate([b.trigger for b in blocks]))


def test_brainflow_reads_the_same_stream_and_digital_inputs(cyton_emulator, cyton_recording):
    uv_file, counts = cyton_recording
    n = 250 * 15  # the whole 15 s file: plenty for an independent client
    trigger = np.random.default_rng(5).integers(0, 32, n).astype(np.uint16)  # D11..D18
    emu = cyton_emulator(CountsSource(counts[:n], trigger))
    BoardShim.disable_board_logger()
    params = BrainFlowInputParams()
    params.serial_port = str(emu.link)
    board = BoardShim(BoardIds.CYTON_BOARD, params)
    board.prepare_session()
    try:
        assert board.config_board("/3") == "Success: digital$$$"
        board.start_stream()
        assert emu.source_exhausted.wait(20)
        deadline = time.monotonic() + 10
        while board.get_board_data_count() < n and time.monotonic() < deadline:
            time.sleep(0.05)
        board.stop_stream()
        data = board.get_board_data()
    finally:
        board.release_session()
    assert emu.commands[:3] == ["v", "d", "/3"] and "b" in emu.commands
    eeg = data[BoardShim.get_eeg_channels(BoardIds.CYTON_BOARD)].T
    assert eeg.shape == (n, 8)
    # BrainFlow scales with gain 24: 4.5 / 24 / (2^23 - 1) * 1e6 µV per count
    assert np.array_equal(np.round(eeg / SCALE).astype(np.int64), counts[:n])
    assert np.abs(eeg - counts[:n] * SCALE).max() < 1e-6
    assert np.abs(eeg - uv_file[:n]).max() < 0.012
    seq = data[BoardShim.get_package_num_channel(BoardIds.CYTON_BOARD)]
    assert np.array_equal(seq, np.arange(n) % 256)
    # BrainFlow reads footer C1 aux as three big-endian words: D11<<8|D12, D13<<8|D17, D18
    words = data[BoardShim.get_analog_channels(BoardIds.CYTON_BOARD)].astype(np.int64)
    bit = [(trigger >> b) & 1 for b in range(5)]
    assert np.array_equal(words[0], (bit[0] << 8) | bit[1])
    assert np.array_equal(words[1], (bit[2] << 8) | bit[3])
    assert np.array_equal(words[2], bit[4])


def test_openbci_text_loader_for_ionm_emulate_replay(recordings_dir, cyton_recording, tmp_path):
    _, counts = cyton_recording
    src = load_openbci_txt(str(recordings_dir / "openbci-cyton-250hz-blinks-jaw-alpha-15s.txt"))
    assert np.array_equal(src.counts, counts) and not src.trigger.any()
    bad = tmp_path / "bad.txt"
    bad.write_text("%OpenBCI Raw EXG Data\n" * 5 + "0, 1.0, oops\n")
    with pytest.raises(RecordingError, match="bad.txt"):
        load_openbci_txt(str(bad))

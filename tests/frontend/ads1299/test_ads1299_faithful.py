"""The front end against the faithful emulator: the chip converts on its own real-time clock,
overwrites what is not read in time, mixes bytes when a read overlaps the next update, and charges
SPI bus time. A reader that is too slow fails here (issue 11's "Must show")."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from ads1299_helpers import Ramp, SpiTap

from appliance.frontend.ads1299.emulator import EmulatedBoard
from appliance.frontend.ads1299.frontend import Ads1299FrontEnd

pytestmark = pytest.mark.timeout(60)


def faithful_frontend(n_channels: int = 8, rate_hz: int = 4000, sclk_hz: int = 4_000_000,
                      **kw) -> tuple[Ads1299FrontEnd, EmulatedBoard, Ramp]:
    ramp = Ramp(n_channels)
    board = EmulatedBoard(ramp, rate_hz, n_chips=(n_channels + 7) // 8, noise_uv_rms=0.0,
                          faithful=True)
    for chip in board.chips:
        chip.max_speed_hz = sclk_hz
    names = tuple(f"ch{i + 1}" for i in range(n_channels))
    fe = Ads1299FrontEnd(list(board.chips), board.drdy(0), names, rate_hz, 24, block_ms=16.0,
                         sleep=board.sleep, board=board, **kw)
    return fe, board, ramp


def busy_ms(ms: float) -> None:
    """Pure-Python work that holds the GIL, as decoding, analysis and file writing do."""
    end = time.perf_counter() + ms / 1000
    x = 0
    while time.perf_counter() < end:
        x += 1


def chip_lags(board: EmulatedBoard, n_channels: int) -> np.ndarray:
    """(n_channels, 1) source samples each channel's chip lags chip 1 by, from the emulator's own
    START ticks (call while streaming: STOP moves them), never from the data. START goes to each
    chip by its own command, so chip 2 samples the input up to the start skew earlier: across a
    source-sample boundary its conversion k holds the source's previous sample, as a real chip
    started earlier samples a stepped input earlier."""
    starts = np.array([c._t_start // board.period_src for c in board.chips])
    return (starts - starts[0])[np.arange(n_channels) // 8][:, None]


def check_exact(blocks, ramp: Ramp, lag: np.ndarray | int = 0) -> int:
    """Every delivered sample is the conversion its index says (no mixed, duplicated or shifted
    sample), triggers included, on every chip (`lag`: from `chip_lags`). Returns the number of
    samples checked."""
    phase = Ramp.phase(blocks[0].data_uv) - blocks[0].first_sample
    for b in blocks:
        idx = phase + b.first_sample + np.arange(b.n_samples)
        np.testing.assert_allclose(b.data_uv, ramp.expected(idx + lag), atol=0.05)
        want_trig = ((idx % 50 == 0) * 1 | (idx % 25 == 7) * 4).astype(np.uint16)
        np.testing.assert_array_equal(b.trigger, want_trig)
    return sum(b.n_samples for b in blocks)


def read_for(fe: Ads1299FrontEnd, seconds: float, blocks: list, each=None,
             min_blocks: int = 0) -> None:
    """Read blocks for `seconds` (and at least `min_blocks`); each(block, n) after each."""
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end or len(blocks) < min_blocks:
        b = fe.read_block(timeout_s=0.5)
        assert b is not None, fe.health.last_error
        blocks.append(b)
        if each is not None:
            each(b, len(blocks))


def lost_conversions(blocks) -> int:
    """Conversions missing from the delivered blocks (from conversion 0 to the last one)."""
    return blocks[0].first_sample + sum(
        b.first_sample - a.end_sample for a, b in zip(blocks, blocks[1:], strict=False))


def test_slow_consumer_keeps_the_reader_reading_at_4ksps():
    """The consumer spends 24 ms after every 16 ms block away (decoding, writing to disk): the
    per-sample loop must keep reading meanwhile (the ring holds 2 s). The loop before issue 11
    read only inside read_block: it cannot read 60 % of the time, and it delivered mixed and
    mislabelled frames as data (measured with 6 ms away: 36-48 % lost, 19-24 wrong samples)."""
    fe, board, ramp = faithful_frontend()
    fe.start()
    blocks: list = []
    try:
        read_for(fe, 1.5, blocks, each=lambda b, n: time.sleep(0.024))
    finally:
        fe.close()
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the consumer's SCHED_FIFO is undone
    n = check_exact(blocks, ramp)
    counts = fe.reader.counts()
    lost = lost_conversions(blocks)
    span = blocks[-1].end_sample
    assert n + lost == span
    # every missing conversion is accounted for: overwritten, not drained, or corrupt (read too
    # late, or its bytes shifted out by an earlier late read: a bad status, never data)
    assert counts["frames"] + counts["overwritten"] + counts["late"] + counts["ring_overflow"] \
        == counts["seen"]
    missing = counts["overwritten"] + counts["ring_overflow"] + fe.health.corrupt_frames
    assert lost <= missing  # the reader ran on a little after the last block
    # wake-up jitter on a loaded 2-core machine costs some (0-25 % measured at load 6-10 on
    # 2 cores, 0 when idle); the old loop could not read for 60 % of the time at all
    assert lost < 0.4 * span, counts




def gaps_of(blocks) -> list[tuple[int, int]]:
    """(first missing sample, length) of every gap between delivered blocks."""
    return [(a.end_sample, b.first_sample - a.end_sample)
            for a, b in zip(blocks, blocks[1:], strict=False) if b.first_sample != a.end_sample]


@pytest.mark.flaky(reruns=2)  # a Python reader on a loaded 2-vCPU VM: docs/ads1299.md
def test_stalled_reader_gap_is_counted_exactly_and_marked_in_the_recording(tmp_path):
    """The reader thread is held for 200 conversions (as a descheduled reader would be): those
    conversions are overwritten; the reader counts them from the DRDY sequence jump, the blocks
    jump by them (never glued: every sample after the gap is the conversion its index says) and
    the recording marks the gap as no data."""
    from appliance.frontend.bdf import BdfWriter, read_recording

    fe, board, ramp = faithful_frontend()
    fe.start()
    blocks: list = []
    try:
        read_for(fe, 0.8, blocks, min_blocks=40,
                 each=lambda b, n: n == 20 and board.drdy(0).miss_next(200))
    finally:
        fe.close()
    check_exact(blocks, ramp)
    counts = fe.reader.counts()
    assert counts["frames"] + counts["overwritten"] + counts["late"] + counts["ring_overflow"] \
        == counts["seen"]
    # the held conversions are lost: overwritten, or the first one after the hold read while
    # the next conversion updated it (late: counted, never data)
    lost = counts["overwritten"] + counts["late"]
    assert lost >= 200
    # where the reader was held (after block 20; a loaded machine may add gaps elsewhere)
    big = [g for g in gaps_of(blocks) if g[1] >= 200 and g[0] >= blocks[19].end_sample]
    assert len(big) >= 1 and big[0][1] <= lost, (gaps_of(blocks), blocks[19].end_sample, counts)

    out = tmp_path / "stall.bdf"
    w = BdfWriter(out, fe.channel_names, fe.sample_rate_hz, fsync=False,
                  max_annotations_per_s=512)
    for b in blocks:
        w.write(b)
    w.close()
    rec = read_recording(out)
    start = blocks[0].first_sample
    marked = {(round(a.onset_s * 4000) + start, int(a.text.split()[2]))
              for a in rec.annotations if a.text.startswith("BAD_ACQ_SKIP gap:")}
    assert marked == set(gaps_of(blocks))  # every gap annotated where it is, with its length
    lo = big[0][0] - start
    assert rec.saturated[:, lo:lo + big[0][1]].all()  # no data, never a held value


def test_consumer_that_stops_draining_overflows_the_ring_counted_exactly():
    """The consumer stops for 0.4 s (1600 conversions) with a 512-frame ring: the reader keeps
    reading, drops what does not fit and counts each drop; the blocks show the gap."""
    from appliance.frontend.ads1299.reader import PythonFrameReader

    ramp = Ramp(8)
    board = EmulatedBoard(ramp, 4000, noise_uv_rms=0.0, faithful=True)
    board.chips[0].max_speed_hz = 4_000_000
    reader = PythonFrameReader(board.chips, board.drdy(0), 27, 4000, ring_frames=512)
    fe = Ads1299FrontEnd(list(board.chips), board.drdy(0), tuple(f"ch{i}" for i in range(8)),
                         4000, 24, sleep=board.sleep, board=board, reader=reader)
    fe.start()
    blocks: list = []
    try:
        read_for(fe, 0.8, blocks, min_blocks=40, each=lambda b, n: n == 20 and time.sleep(0.4))
    finally:
        fe.close()
    check_exact(blocks, ramp)
    counts = reader.counts()
    assert counts["frames"] + counts["overwritten"] + counts["late"] + counts["ring_overflow"] \
        == counts["seen"]
    assert counts["ring_overflow"] > 300  # up to 1600 - 512 did not fit (fewer if also lost)
    assert max(g[1] for g in gaps_of(blocks)) >= counts["ring_overflow"]
    assert fe.health.extra["ring_overflow"] == counts["ring_overflow"]


def test_sclk_too_slow_for_the_rate_delivers_nothing_and_says_why():
    """16 channels at 4 kSPS with SCLK 1 MHz: the two 27-byte transfers alone take 432 µs of
    the 250 µs period, so every read overlaps the next update. Nothing is delivered as data,
    the chips are not re-initialised as if dead, and the error names the setting."""
    fe, board, _ = faithful_frontend(n_channels=16, sclk_hz=1_000_000)
    fe.start()
    try:
        results = [fe.read_block(timeout_s=0.2) for _ in range(3)]
    finally:
        fe.close()
    counts = fe.reader.counts()
    assert results == [None] * 3 and counts["frames"] == 0 and counts["late"] > 100
    assert "frontend.spi_speed_hz" in fe.health.last_error and fe.health.reconnects == 0
    assert sum(c.mixed_reads for c in board.chips) > 0  # the chips did hand out mixed bytes


# a Python reader on a 2-vCPU VM: how many reads come late depends on the host (alone on an
# idle machine these failed 1 run in 2-3 on 2026-12-06, on the base commit too); what must
# hold every time is that nothing late is ever data (check_exact, the gaps marked)
@pytest.mark.flaky(reruns=2)
@pytest.mark.parametrize("n_channels", [8, 16])
def test_4ksps_recorded_while_filtering_is_exact_in_the_file(tmp_path, n_channels):
    """4 kSPS on one and two chips, each block filtered (the analysis' first step) and written
    to BDF+ as it comes: the file holds every conversion that was read, sample-exact with its
    trigger bits, and each missing one as a marked gap, never as data."""
    from scipy.signal import butter, sosfilt

    from appliance.frontend.bdf import BdfWriter, read_recording

    fe, board, ramp = faithful_frontend(n_channels=n_channels)
    sos = butter(4, [30, 1500], btype="band", fs=4000, output="sos")
    out = tmp_path / "r.bdf"
    w = BdfWriter(out, fe.channel_names, 4000, fsync=False, max_annotations_per_s=512)
    fe.start()
    lag = chip_lags(board, n_channels)
    blocks: list = []
    try:
        read_for(fe, 1.2, blocks, each=lambda b, n: (sosfilt(sos, b.data_uv, axis=1), w.write(b)))
    finally:
        fe.close()
        w.close()
    check_exact(blocks, ramp, lag)
    rec = read_recording(out)
    start = blocks[0].first_sample
    got = np.zeros(rec.n_samples, bool)
    for b in blocks:
        lo = b.first_sample - start
        np.testing.assert_allclose(rec.data_uv[:, lo:lo + b.n_samples], b.data_uv, atol=0.05)
        np.testing.assert_array_equal(rec.trigger[lo:lo + b.n_samples], b.trigger)
        got[lo:lo + b.n_samples] = True
    assert rec.saturated[:, ~got].all()  # every other sample is marked no data
    lost = lost_conversions(blocks) - start
    assert lost == int(np.count_nonzero(~got[:blocks[-1].end_sample - start]))
    # the bound only keeps the checks above meaningful (most of the run was read and checked):
    # how much a Python reader loses at 4 kSPS x 16 is the host's (41-44 % alone on this VM on
    # 2026-12-06, base commit included; the compiled reader is the 4-kSPS path, docs/ads1299.md)
    assert lost < 0.6 * (blocks[-1].end_sample - start), fe.reader.counts()


def test_two_chips_start_together_and_the_skew_comes_off_the_deadline():
    """START by command (no shared START pin): chip 2 converts ahead of chip 1 by the time
    between the two commands. It is measured, kept small, and taken off the reader's deadline,
    so a read of chip 2 that would overlap chip 2's own update counts as late."""
    from appliance.frontend.ads1299.frontend import MAX_START_SKEW_NS
    from appliance.frontend.ads1299.reader import read_deadline_ns
    from appliance.frontend.ads1299.registers import F_CLK_HZ

    fe, board, _ = faithful_frontend(n_channels=16)
    fe.start()
    try:
        true_skew_ns = (board.chips[0]._t_start - board.chips[1]._t_start) * 1e9 / F_CLK_HZ
        assert 0 <= fe.start_skew_ns <= MAX_START_SKEW_NS
        assert true_skew_ns <= fe.start_skew_ns + 1e9 / F_CLK_HZ  # within one tCLK
        assert fe.reader.deadline_ns == read_deadline_ns(4000) - fe.start_skew_ns
        fe.set_gain(12)  # a reconfiguration restarts both chips together again
        assert board.chips[0]._t_start - board.chips[1]._t_start <= fe.start_skew_ns * 2.048e-3 + 1
    finally:
        fe.close()


class StartAcrossBoundary(SpiTap):
    """The bus of chip 2, held by the host as a descheduled host holds it: chip 2's START lands
    a few tCLK before a boundary of the stepped test input, chip 1's after it."""

    def __init__(self, dev, board: EmulatedBoard) -> None:
        super().__init__(dev)
        self.board = board

    def xfer2(self, data: list[int]) -> list[int]:
        from appliance.frontend.ads1299.registers import Command

        board, period = self.board, self.board.period_src
        if data == [Command.RDATAC]:  # the last command before the STARTs
            while not period - 45 <= board.now % period <= period - 40:
                pass
        out = self.dev.xfer2(data)
        if data == [Command.START]:
            while not 10 <= board.now % period <= 100:
                pass
        return out


@pytest.mark.flaky(reruns=2)  # as above: the count of exact reads depends on the host
def test_chips_started_across_a_source_sample_are_each_exact():
    """The chips' STARTs straddle a boundary of the stepped test input (chip 2 a few tCLK before
    it, chip 1 after; the skew stays under MAX_START_SKEW_NS, so it is accepted): chip 2's
    conversion k then holds the source sample before chip 1's, as a real chip started earlier
    samples earlier. Every delivered frame must still be conversion k of both chips (never
    chip 2's k - 1 or k + 1). Was caught once in a loaded suite run as a one-step mismatch."""
    from appliance.frontend.ads1299.frontend import MAX_START_SKEW_NS

    for _ in range(5):  # the host may be descheduled past the boundary: place the STARTs again
        fe, board, ramp = faithful_frontend(n_channels=16)
        period = board.period_src
        fe.chips[1].spi = StartAcrossBoundary(fe.chips[1].spi, board)
        fe.start()
        starts = [c._t_start for c in board.chips]
        if starts[1] // period == starts[0] // period - 1:
            break
        fe.close()
    lag = chip_lags(board, 16)
    blocks: list = []
    try:
        read_for(fe, 0.4, blocks)
    finally:
        fe.close()
    assert 0 < fe.start_skew_ns <= MAX_START_SKEW_NS
    assert starts[1] < starts[0] and starts[1] // period == starts[0] // period - 1, starts
    assert lag[8:].tolist() == [[-1]] * 8
    assert check_exact(blocks, ramp, lag) > 200  # of 1600 (a loaded machine loses some)
    with pytest.raises(AssertionError):  # chip 2's conversion k - 1 beside chip 1's k is caught
        check_exact(blocks, ramp, lag - 1)


class SlowStart(SpiTap):
    """Chip 2's bus held 40 µs after every START, as a host descheduled between the STARTs."""

    def __init__(self, dev, board: EmulatedBoard) -> None:
        super().__init__(dev)
        self.board = board

    def xfer2(self, data: list[int]) -> list[int]:
        from appliance.frontend.ads1299.registers import Command

        out = super().xfer2(data)  # logged
        if data == [Command.START]:
            self.board.spin_until_ns(self.board.clock_ns() + 40_000)
        return out


def test_start_skew_over_the_limit_after_every_attempt_is_reported():
    """Every START attempt is 40 µs + apart (over MAX_START_SKEW_NS with the host's own time):
    the front end says so by name and takes the whole skew off the reader's deadline, so a read
    ending after chip 2's own update is late (dropped, counted), never data."""
    from appliance.frontend.ads1299.frontend import MAX_START_SKEW_NS, START_ATTEMPTS
    from appliance.frontend.ads1299.reader import read_deadline_ns
    from appliance.frontend.ads1299.registers import Command

    fe, board, _ = faithful_frontend(n_channels=16)
    tap = SlowStart(fe.chips[1].spi, board)
    fe.chips[1].spi = tap
    try:
        fe.start()
        assert sum(m == [Command.START] for m, _ in tap.log) == START_ATTEMPTS  # all retried
        assert fe.start_skew_ns > MAX_START_SKEW_NS
        assert "START commands" in fe.health.last_error
        assert fe.health.extra["start_skew_us"] == fe.start_skew_ns / 1000
        assert fe.reader.deadline_ns == read_deadline_ns(4000) - fe.start_skew_ns
    finally:
        fe.close()


def test_data_reads_at_spi_read_speed_hz_while_registers_stay_slow():
    """16 channels at 4 kSPS with the chips' SCLK at 1 MHz: registers are written and read back
    at 1 MHz (fine), and the data reads at frontend.spi_read_speed_hz = 8 MHz (two 27-byte
    reads in 54 µs of 248) deliver exact samples; at 1 MHz they deliver nothing (the test
    above), so the reads did use the fast clock."""
    fe, board, ramp = faithful_frontend(n_channels=16, sclk_hz=1_000_000,
                                        read_speed_hz=8_000_000)
    fe.start()
    lag = chip_lags(board, 16)
    blocks: list = []
    try:
        read_for(fe, 0.5, blocks, min_blocks=20)
    finally:
        fe.close()
    check_exact(blocks, ramp, lag=lag)
    counts = fe.reader.counts()
    assert counts["frames"] > counts["late"]  # at 1 MHz: frames == 0
    assert all(c.max_speed_hz == 1_000_000 for c in board.chips)


def test_config_selects_the_faithful_emulator_read_speed_and_reader_cpu():
    """frontend.kind = "ads1299-emulated" in real time runs the chip on its own clock (so `ionm
    run`/`demo` exercise it), step-wise when faithful_emulator = false or realtime = false;
    spi_read_speed_hz and reader_cpu reach the reader, whose thread runs on that CPU only."""
    import threading

    from appliance.config import from_dict

    cpu = max(os.sched_getaffinity(0))
    fe_cfg = {"kind": "ads1299-emulated", "spi_read_speed_hz": 8_000_000, "reader_cpu": cpu,
              "channels": [f"ch{i}" for i in range(8)]}
    for extra, faithful in (({}, True), ({"faithful_emulator": False}, False),
                            ({"realtime": False}, False)):
        fe = Ads1299FrontEnd.from_config(from_dict({"frontend": {**fe_cfg, **extra}}),
                                         emulated=True)
        assert fe.board.faithful is faithful, extra
        fe.close()
    fe = Ads1299FrontEnd.from_config(from_dict({"frontend": fe_cfg}), emulated=True)
    assert fe.read_speed_hz == 8_000_000 and fe.reader_cpu == cpu
    fe.start()
    try:
        assert fe.read_block(timeout_s=1.0) is not None, fe.health.last_error
        thread = next(t for t in threading.enumerate() if t.name == "ads1299-reader")
        assert os.sched_getaffinity(thread.native_id) == {cpu}
        assert fe.reader.read_speed_hz == 8_000_000
    finally:
        fe.close()

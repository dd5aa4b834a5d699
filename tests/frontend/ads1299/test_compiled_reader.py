"""The compiled ADS1299 reader (_reader.c) against its C chip model: the chip converts on its own
clock, overwrites unread conversions, mixes bytes when a read overlaps the next update and
charges the SPI bus time. Every delivered frame is checked byte for byte against the pattern of
its conversion (so a mixed, shifted or duplicated frame fails), triggers against their schedule,
and every conversion not delivered must be in exactly one count.

Loss: the goal on a Pi is none. This machine is a shared 2-vCPU VM with a PREEMPT_NONE kernel:
a SCHED_FIFO thread woken by its DRDY edge waits until the task on its CPU leaves the kernel, so
the more the other tenants run, the more it loses (measured 0.1-3 % at 4 kSPS and 1-30 % at
16 kSPS at load averages 1-10 on 2 vCPUs). So the tests require exact frames, triggers and
accounting, and bound the loss loosely: a loop that cannot keep up (the Python loops here lose
30-85 % at 4-16 kSPS under the same load; today's Ads1299FrontEnd loop also delivers mixed frames,
see the last test) still fails. docs/ads1299.md has the measured figures.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from appliance.bench.acquisition import why_lost
from appliance.frontend.ads1299.compiled import (
    LOSS_KINDS,
    CompiledReader,
    ModelChip,
    compiled_available,
    compiled_unavailable_reason,
    model_pattern,
)
from appliance.frontend.ads1299.decode import decode_frames

needs_c = pytest.mark.skipif(not compiled_available(), reason=compiled_unavailable_reason())
TRIG_PERIOD, TRIG_WIDTH = 97, 3  # GPIO1 high for 3 conversions of every 97
MAX_LOSS = {4000: 0.10, 16000: 0.50}


def test_extension_is_built_on_this_machine() -> None:
    """Where a compiler exists (here, and CI) a missing build is a failure, not a skip."""
    assert compiled_available(), compiled_unavailable_reason()
    assert compiled_unavailable_reason() == ""


def _run(n_chips: int, rate_hz: int, seconds: float, sclk_hz: int = 8_000_000,
         drain_every_s: float = 0.016, **kw: object) -> tuple[dict, np.ndarray, np.ndarray,
                                                             np.ndarray, CompiledReader]:
    reader = CompiledReader(n_chips, 27, rate_hz, sclk_hz, backend="model",
                            trigger_period=TRIG_PERIOD, trigger_width=TRIG_WIDTH, **kw)
    block = max(1, int(rate_hz * drain_every_s))
    raws, seqs, stamps = [], [], []
    reader.start()
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            b = reader.drain(block, 0.1)
            raws.append(b.raw), seqs.append(b.seq), stamps.append(b.drdy_ns)
    finally:
        reader.stop()
    b = reader.drain(1 << 30, 0.0)  # what was queued when the thread stopped
    raws.append(b.raw), seqs.append(b.seq), stamps.append(b.drdy_ns)
    return (reader.counts(), np.concatenate(raws), np.concatenate(seqs),
            np.concatenate(stamps), reader)


def _check_exact(counts: dict, raw: np.ndarray, seq: np.ndarray, n_chips: int) -> int:
    """No duplicate, no corrupt frame, exact triggers, exact accounting. Returns lost samples."""
    assert counts["spi_errors"] == counts["wait_errors"] == 0
    assert len(seq) == counts["frames"] > 0
    assert np.all(np.diff(seq) > 0), "a conversion delivered twice or out of order"
    k = seq + counts["first_seqno"] - 1  # the model's conversion number (edge seqno = k + 1)
    expected = model_pattern(k, n_chips, 27, TRIG_PERIOD, TRIG_WIDTH)
    bad = np.flatnonzero((raw != expected).any(axis=1))
    assert bad.size == 0, f"{bad.size} frames differ from their conversion: seq {seq[bad[:5]]}"
    frames = decode_frames(raw.tobytes(), 8, 24.0, n_chips)
    assert frames.valid.all()
    np.testing.assert_array_equal(frames.trigger, (k % TRIG_PERIOD < TRIG_WIDTH).astype(np.uint16))
    assert counts["seen"] == counts["last_seq"] + 1
    missing = counts["last_seq"] + 1 - len(seq)
    dropped = counts["overwritten"] + counts["late"] + counts["ring_overflow"]
    assert missing == dropped, f"{missing} conversions missing, {dropped} counted"
    return counts["overwritten"] + counts["late"]


@needs_c
@pytest.mark.parametrize(("n_chips", "rate_hz", "sclk_hz"),
                         [(1, 4000, 4_000_000), (2, 4000, 4_000_000), (1, 16000, 16_000_000)],
                         ids=["4k-x8", "4k-x16", "16k-x8"])
def test_exact_samples_and_triggers(n_chips: int, rate_hz: int, sclk_hz: int) -> None:
    """16 kSPS needs a faster data-read clock: 27 bytes at 4 MHz take 54 of the 62.5 µs.
    At 4 kSPS no loss may be the loop's own: every lost read either woke too late to read in
    time, was interrupted mid-read, or woke > 100 µs after its edge (the machine; a read that
    woke and ran as usual ends > 100 µs before its deadline, so a loss there is a bug, e.g. a
    wrong deadline or period estimate)."""
    counts, raw, seq, stamps, reader = _run(n_chips, rate_hz, 3.0, sclk_hz, sched_trace=True)
    lost = _check_exact(counts, raw, seq, n_chips)
    assert counts["ring_overflow"] == 0
    assert counts["last_seq"] >= 0.9 * 3.0 * rate_hz
    np.testing.assert_array_equal(np.diff(stamps), np.diff(seq) * round(1e9 / rate_hz))
    assert lost <= MAX_LOSS[rate_hz] * counts["last_seq"], (counts, reader.info(),
                                                             reader.wake_us())
    if rate_hz == 4000:
        why = why_lost(reader.loss_events(), rate_hz, n_chips * 27 * 8e6 / sclk_hz,
                        reader.deadline_ns / 1e3)
        assert why.get("by_loop", 0) == 0, why


@needs_c
def test_stalled_reader_leaves_a_counted_gap() -> None:
    """The reader sleeps 40 ms at 0.5 s: the read after it is late (dropped, never data), the
    conversions meanwhile were overwritten, and the gap in `seq` is exactly what was counted."""
    rate = 4000
    counts, raw, seq, stamps, reader = _run(1, rate, 1.2, stall_at_s=0.5, stall_ms=40.0,
                                            sched_trace=True)
    _check_exact(counts, raw, seq, 1)
    # the latency trace: every lost conversion is in the loss log, the stall in the histogram
    ev, lat = reader.loss_events(), reader.latency()
    for kind, key in LOSS_KINDS.items():
        assert ev["n"][ev["kind"] == kind].sum() == counts.get(key, 0), key
    assert lat["loss_events"] == ev.size and lat["over"] >= 1 and lat["done_us_max"] >= 40_000
    assert ev["done_ns"][ev["kind"] == 2].max() >= 40e6  # the read that held its edge 40 ms
    after = ev[(ev["kind"] == 1) & (ev["n"] >= 0.04 * rate - 2)]
    assert after.size == 1 and after["wake_ns"][0] >= 39e6  # woke 40 ms after the oldest edge
    if after["run_delay_ns"][0] >= 0:  # schedstat: it slept, it was not waiting for a CPU
        assert after["run_delay_ns"][0] < 20e6
    jumps = np.diff(seq)
    big = np.flatnonzero(jumps >= 0.04 * rate - 1)
    assert big.size == 1, jumps[jumps > 1]
    i = big[0]
    assert 0.45 * rate <= seq[i] <= 0.55 * rate
    assert stamps[i + 1] - stamps[i] >= 40e6
    assert counts["late"] >= 1  # the conversion whose edge it held when it stalled
    assert counts["overwritten"] >= 0.04 * rate - 2


@needs_c
def test_coalesced_edges_are_counted_from_timestamps() -> None:
    """The kernel's IRQ thread held off for 3 edges reports them as one event (line_seqno + 1),
    stamped late: the reader counts the 3 from the timestamps, keeps later samples on the chip's
    timeline and takes the deadline from the previous edge."""
    counts, raw, seq, _, _ = _run(1, 4000, 0.8, coalesce_at_s=0.4, coalesce_n=3)
    _check_exact(counts, raw, seq, 1)  # fails if the index lost the 3 conversions
    assert counts["coalesced"] == 3
    assert counts["late_stamps"] >= 1
    assert counts["overwritten"] >= 3


@needs_c
@pytest.mark.parametrize("clock_error", [-0.03, 0.03], ids=["fast-chip", "slow-chip"])
def test_chip_clock_off_nominal(clock_error: float) -> None:
    """The chip's oscillator is not exact: the deadline follows the measured period (a chip 3 %
    fast updates 7.5 µs before the nominal deadline; reads of 216 µs at 1 MHz end there often)
    and a 40 ms stall on a slow chip is not over-counted as coalesced edges."""
    counts, raw, seq, _, _ = _run(1, 4000, 1.2, sclk_hz=1_000_000, clock_error=clock_error,
                                  stall_at_s=0.6, stall_ms=40.0)
    _check_exact(counts, raw, seq, 1)
    assert counts["coalesced"] == 0


@needs_c
def test_full_ring_is_counted_never_silent() -> None:
    reader = CompiledReader(1, 27, 4000, 8_000_000, backend="model", ring_frames=64)
    reader.start()
    time.sleep(0.25)  # ~1000 conversions, nobody drains
    first = reader.drain(1 << 30, 0.0)
    time.sleep(0.05)
    reader.stop()
    rest = reader.drain(1 << 30, 0.0)
    c = reader.counts()
    assert len(first) == 64
    assert c["ring_overflow"] >= 800
    assert c["frames"] == len(first) + len(rest)
    assert c["last_seq"] + 1 == c["frames"] + c["overwritten"] + c["late"] + c["ring_overflow"]
    assert first.seq[-1] == 63 or c["overwritten"] + c["late"] > 0
    assert rest.seq[0] - first.seq[-1] > 800  # the overflow shows as a gap in seq


@needs_c
def test_the_old_loop_fails_the_check_the_compiled_reader_passes() -> None:
    """The per-sample loop the front end had before issue 11 (sequence number taken before the
    read, no timestamp check, decoding in the loop), on the same chip model at 4 kSPS x 8:
    it delivers frames that mix two conversions, and its loss count is wrong."""
    rate = 4000
    chip = ModelChip(1, 27, rate, 4_000_000, TRIG_PERIOD, TRIG_WIDTH)
    drdy, spi = chip.drdy(), chip.spi(0)
    chip.start()
    raws, seqs, counted = [], [], 0
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        block, block_seq = bytearray(), []
        while len(block_seq) < 64:  # one 16 ms block, then decode it inside the loop
            if not drdy.wait(0.1):
                continue
            block_seq.append(drdy.sequence)
            block += bytes(spi.xfer2([0] * 27))
        decode_frames(bytes(block), 8, 24.0)
        raws.append(np.frombuffer(bytes(block), np.uint8).reshape(-1, 27))
        seqs.append(np.asarray(block_seq))
        counted += int(np.sum(np.diff(np.r_[seqs[-2][-1] if len(seqs) > 1 else block_seq[0] - 1,
                                            block_seq]) - 1))
    raw, seqno = np.concatenate(raws), np.concatenate(seqs)
    wrong = (raw != model_pattern(seqno - 1, 1, 27, TRIG_PERIOD, TRIG_WIDTH)).any(axis=1)
    lost = int(seqno[-1] - seqno[0] + 1 - len(np.unique(seqno)))
    assert np.count_nonzero(wrong) > 0 or counted != lost, (np.count_nonzero(wrong), counted, lost)


@needs_c
def test_kernel_backend_errors_name_the_device() -> None:
    """No GPIO chip or spidev here: start() fails naming what it tried to open. A line request
    shared by libgpiod (here a pipe's fd stands for it) is duplicated, then the spidev fails."""
    import os

    own = CompiledReader(1, 27, 4000, 4_000_000, backend="kernel", spi_paths=["/dev/spidev0.0"],
                         gpiochip="/dev/gpiochip0", drdy_line=26)
    with pytest.raises(OSError, match="/dev/gpiochip0"):
        own.start()
    r, w = os.pipe()
    try:
        shared = CompiledReader(1, 27, 4000, 4_000_000, backend="kernel",
                                spi_paths=["/dev/spidev0.0"], line_fd=r)
        with pytest.raises(OSError, match="/dev/spidev0.0 in SPI mode 1"):
            shared.start()
        os.fstat(r)  # still open: the owner's fd is never closed by the reader
    finally:
        os.close(r), os.close(w)
    with pytest.raises(ValueError, match="spi_paths"):
        CompiledReader(1, 27, 4000, 4_000_000, backend="kernel")


@needs_c
def test_emulated_front_end_keeps_the_python_reader(make_frontend) -> None:
    from appliance.frontend.ads1299.compiled import compiled_reader_for
    from appliance.frontend.ads1299.reader import PythonFrameReader

    fe, _ = make_frontend(rate_hz=1000)
    assert compiled_reader_for(fe) is None
    assert isinstance(fe.reader, PythonFrameReader)
    assert CompiledReader.kind == "compiled" != fe.reader.kind  # what health reports


@needs_c
def test_restart_continues_the_numbering() -> None:
    """stop/start (the front end pauses the reader to reconfigure): the chip kept converting,
    so the conversions meanwhile are a counted gap, and numbering does not start again."""
    reader = CompiledReader(1, 27, 4000, 8_000_000, backend="model", trigger_period=TRIG_PERIOD,
                            trigger_width=TRIG_WIDTH)
    reader.start()
    time.sleep(0.2)
    reader.stop()
    first = reader.drain(1 << 30, 0.0)
    time.sleep(0.1)
    reader.start()
    time.sleep(0.2)
    reader.stop()
    second = reader.drain(1 << 30, 0.0)
    counts = reader.counts()
    raw = np.concatenate([first.raw, second.raw])
    seq = np.concatenate([first.seq, second.seq])
    _check_exact(counts, raw, seq, 1)
    assert second.seq[0] - first.seq[-1] >= 0.1 * 4000 - 1
    assert counts["coalesced"] == 0


@needs_c
def test_start_skew_comes_off_the_compiled_deadline() -> None:
    """Chip 2, started first by its own START command, takes its next conversion up to the start
    skew before chip 1's edge: the front end takes the skew off the deadline, and the compiled
    reader must apply it (a 2-chip read at 4 MHz takes 108 µs: with 150 µs of skew off the
    250 µs period every read is late, dropped and counted, never data). Only while stopped."""
    from appliance.frontend.ads1299.reader import read_deadline_ns

    def frames_and_late(skew_ns: int) -> tuple[int, int]:
        reader = CompiledReader(2, 27, 4000, 4_000_000, backend="model")
        reader.deadline_ns = read_deadline_ns(4000) - skew_ns
        assert reader.deadline_ns == read_deadline_ns(4000) - skew_ns
        reader.start()
        try:
            time.sleep(0.2)
            with pytest.raises(ValueError, match="while stopped"):
                reader.deadline_ns = 0
        finally:
            reader.stop()
        counts = reader.counts()
        reader.close()
        return counts["frames"], counts["late"]

    frames, late = frames_and_late(150_000)
    assert frames == 0 and late > 400
    frames, late = frames_and_late(0)
    assert frames > 400 and late < frames / 10


@needs_c
def test_health_carries_the_compiled_readers_latency(make_frontend) -> None:
    """The front end publishes the compiled reader's longest edge -> read-done time and the
    reads over 250 µs (health.extra, the MQTT health topic and the case record): a 40 ms stall
    shows as >= 40,000 µs."""
    from appliance.service import acquisition_counts

    reader = CompiledReader(1, 27, 4000, 8_000_000, backend="model", stall_at_s=0.2,
                            stall_ms=40.0)
    fe, _ = make_frontend(rate_hz=4000)
    fe._reader = reader  # the model chip behind the real front end's drain/decode path
    fe.start()
    try:
        for _ in range(200):  # until the stall at 0.2 s (chip time) is behind us
            fe.read_block(timeout_s=0.5)
            if fe.health.extra.get("read_done_max_us", 0) >= 40_000:
                break
    finally:
        fe.close()
    out = acquisition_counts(fe.health)
    assert out["reader"] == "compiled" and out["read_done_max_us"] >= 40_000
    assert out["reads_over_250us"] >= 1 and out["late_reads"] >= 1

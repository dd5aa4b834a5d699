"""Faults on a live pty link: garbage on the line, lost radio packets, USB unplug/replug,
board switched off mid-stream; and `ionm emulate cyton` serving a client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from appliance.frontend.cyton import protocol as proto
from appliance.frontend.cyton.sources import CountsSource, GeneratorSource, TestSignalSource

REPO = Path(__file__).resolve().parents[3]


def _samples(blocks) -> tuple[np.ndarray, np.ndarray]:
    """(absolute sample index (n,), counts (n, 8)) from blocks of our driver."""
    idx = np.concatenate([b.first_sample + np.arange(b.n_samples) for b in blocks])
    data = np.concatenate([b.data_uv for b in blocks], axis=1).T
    return idx, np.round(data / proto.uv_per_count(24)).astype(np.int64)


def _counts(n: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(-(1 << 23), 1 << 23, (n, 8))


def test_garbage_on_the_line_resyncs(cyton_emulator, cyton_front_end, read_blocks):
    n = 1500
    counts = _counts(n)
    emu = cyton_emulator(CountsSource(counts))
    garbage = b"\xa0\x07garbage\xc0\xa0" + bytes(range(0xB0, 0xD0))
    emu.inject(garbage, after_packet=300)
    emu.inject(b"$$$\xc1" * 20, after_packet=900)
    fe = cyton_front_end(emu.link)
    fe.start()
    idx, got = _samples(read_blocks(fe, n - 2))
    # packet 900 is followed by garbage, not a header: dropped. Packet 300 is followed by
    # garbage that starts with 0xA0, so it is confirmed and kept (it is intact).
    want = np.setdiff1d(np.arange(n), [900])
    assert np.array_equal(idx, want)
    assert np.array_equal(got, counts[want])
    h = fe.health
    assert h.corrupt_frames == 2 and h.missed_samples == 1
    assert h.extra["corrupt_bytes"] == len(garbage) + 33 + 80


def test_lost_packets_counted_and_blocks_split_at_gaps(
    cyton_emulator, cyton_front_end, read_blocks
):
    n = 1500
    counts = _counts(n, seed=4)
    emu = cyton_emulator(CountsSource(counts))
    emu.drop_packets(3, at_packet=100)
    emu.drop_packets(256, at_packet=600)  # a whole wrap of sample numbers: invisible to them
    emu.drop_packets(1, at_packet=1000)
    fe = cyton_front_end(emu.link)
    fe.start()
    blocks = read_blocks(fe, n - 260)
    idx, got = _samples(blocks)
    sent = np.setdiff1d(np.arange(n), [100, 101, 102, 1000, *range(600, 856)])
    assert fe.health.missed_samples == 4  # 3 + 1; the 256-packet gap cannot be seen
    assert fe.health.corrupt_frames == 0 and fe.health.extra["corrupt_bytes"] == 0
    assert np.array_equal(got, counts[sent])
    # indices follow the sample numbers: gaps where packets were lost (the 256 are folded)
    want = np.setdiff1d(np.arange(n - 256), [100, 101, 102, 1000 - 256])
    assert np.array_equal(idx, want)
    for b in blocks:  # every block holds consecutive samples
        assert b.n_samples <= 4
    assert np.array_equal(np.diff([b.first_sample for b in blocks])[:24], [4] * 24)


def test_unplug_and_replug_reconnects_with_health(cyton_emulator, cyton_front_end):
    emu = cyton_emulator(GeneratorSource(TestSignalSource()), realtime=True)
    fe = cyton_front_end(emu.link, reconnect_every_s=0.1)
    fe.start()
    before = [fe.read_block(1.0) for _ in range(10)]
    assert all(b is not None for b in before) and fe.health.connected
    emu.unplug()
    assert not os.path.exists(emu.link)
    t_gone = time.monotonic()
    gone = [fe.read_block(0.1) for _ in range(5)]  # pending samples may drain first
    assert gone[-1] is None and gone[-2] is None
    assert not fe.health.connected and "port lost" in fe.health.last_error
    assert fe.health.reconnects == 0
    emu.replug()
    after = None
    for _ in range(40):
        after = fe.read_block(0.1)
        if after is not None:
            break
    outage_s = time.monotonic() - t_gone
    assert after is not None and fe.health.connected and fe.health.reconnects == 1
    assert fe.health.last_error == ""
    assert emu.commands.count("v") == 2 and emu.streaming  # handshake again, streaming again
    last = max(b.end_sample for b in before + gone if b is not None)
    # the outage shows as a gap in sample indices, estimated from the clock
    gap = after.first_sample - last
    firsts = [b and b.first_sample for b in before + gone]
    why = f"gap {gap}, outage {outage_s:.3f} s, before {firsts}, after {after.first_sample}"
    assert 0.5 * outage_s * 250 < gap < 1.5 * outage_s * 250 + 20, why
    assert fe.health.missed_samples >= gap - 20


def test_board_switched_off_mid_stream(cyton_emulator, cyton_front_end):
    emu = cyton_emulator(GeneratorSource(TestSignalSource()), realtime=True)
    fe = cyton_front_end(emu.link, silence_restart_s=0.3, reconnect_every_s=0.1)
    fe.start()
    assert fe.read_block(1.0) is not None
    emu.power(False)
    blocks = [fe.read_block(0.1) for _ in range(12)]
    assert blocks[-1] is None and not fe.health.connected
    assert "board is off" in fe.health.last_error
    emu.power(True)
    got = None
    for _ in range(30):
        got = fe.read_block(0.1)
        if got is not None:
            break
    assert got is not None and fe.health.connected and fe.health.reconnects == 1


def test_ionm_emulate_cyton_serves_a_client(tmp_path, cyton_front_end, read_blocks):
    link = tmp_path / "cyton"
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "emulate", "cyton", "--source", "test"]
        + ["--seed", "5", "--link", str(link)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("Cyton emulator on /dev/pts/")
        assert f"stable path: {link}" in proc.stdout.readline()
        rest = "".join(iter(proc.stdout.readline, "Ctrl-C to stop.\n"))
        assert "BoardIds.CYTON_BOARD" in rest
        fe = cyton_front_end(link)
        fe.start()
        blocks = read_blocks(fe, 250, timeout_s=5)
        trig = np.concatenate([b.trigger for b in blocks])
        edges = np.flatnonzero(trig & 1)
        assert len(edges) >= 3 and set(np.diff(edges)) <= {53, 54}  # 250 / 4.7 Hz
        fe.close()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=5)
        assert proc.returncode == 0 and "stopped after" in out
        assert not link.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_unplug_while_streaming_flat_out(cyton_emulator, cyton_front_end, read_blocks):
    emu = cyton_emulator(GeneratorSource(TestSignalSource()))  # as fast as the client reads
    fe = cyton_front_end(emu.link, reconnect_every_s=0.05)
    fe.start()
    assert sum(b.n_samples for b in read_blocks(fe, 500)) >= 500
    emu.unplug()
    time.sleep(0.2)  # the emulator keeps running with no pty
    while fe.read_block(0.05) is not None:
        pass
    assert not fe.health.connected
    emu.replug()
    assert sum(b.n_samples for b in read_blocks(fe, 500, timeout_s=5)) >= 500
    assert fe.health.connected and fe.health.reconnects == 1


def test_ionm_emulate_names_a_scenario_that_needs_sites(tmp_path, capsys):
    from appliance.frontend.emulate import main

    scenario = tmp_path / "drop.toml"
    scenario.write_text(
        'name = "drop"\n[[event]]\ntype = "amplitude"\nat_s = 1.0\nsite = "L median"\n'
        'component = "cortical"\nto_percent = 40.0\n'
    )
    assert main(["cyton", "--scenario", str(scenario)]) == 2
    err = capsys.readouterr().err
    assert "site: got 'L median'" in err and "come from --config" in err

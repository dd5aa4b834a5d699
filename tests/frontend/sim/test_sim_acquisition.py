"""The acquisition process with a real front end (the simulated one, scripted by scenarios):
contiguous blocks, missed samples, lead-off and saturation, a stall and its recovery, a dead
child, a front end that cannot open, a clean stop. The parent never waits past its timeout."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from appliance.conditions import Kind, Priority
from appliance.frontend.acquisition import Acquisition

pytestmark = pytest.mark.timeout(60)


def pump(acq: Acquisition, seconds: float, until=None):
    """get_block for `seconds` (or until until(blocks, seen) is true); returns blocks, every
    condition seen by id (last state), and the active ids over time."""
    blocks, seen, history = [], {}, []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        t = time.monotonic()
        b = acq.get_block(0.1)
        assert time.monotonic() - t < 0.1 + 0.15  # never blocks much past its timeout
        if b is not None:
            blocks.append(b)
        conds = acq.conditions(time.monotonic() - t0)
        for c in conds:
            assert c.kind is Kind.TECHNICAL
            seen.setdefault(c.id, []).append(c)
        history.append({c.id for c in conds if c.active})
        if until is not None and until(blocks, seen):
            break
    return blocks, seen, history


def first_block(acq: Acquisition):
    t0 = time.monotonic()
    while time.monotonic() - t0 < 20.0:
        b = acq.get_block(0.2)
        if b is not None:
            return b
    raise AssertionError(f"no block from the acquisition process: {acq.health()}")


def test_blocks_flow_contiguously_with_health_conditions_and_stop_cleanly(make_cfg):
    cfg = make_cfg(
        '[[event]]\ntype = "lead_off"\nchannel = "Erb-L"\nat_s = 0.5\nuntil_s = 1.5\n'
        '[[event]]\ntype = "dropout"\nat_s = 1.0\nsamples = 100\n'
    )
    acq = Acquisition(cfg)
    acq.start()
    try:
        b0 = first_block(acq)
        blocks, seen, _ = pump(acq, 5.0, until=lambda bl, s: bl[-1].end_sample > 2200 if bl else 0)
    finally:
        t = time.monotonic()
        acq.stop()
        stop_s = time.monotonic() - t
    blocks = [b0] + blocks
    assert b0.first_sample == 0 and blocks[-1].end_sample > 2000
    assert all(10 <= b.n_samples <= 20 for b in blocks)  # 16 ms blocks at 1 kHz
    gaps = [b.first_sample - a.end_sample for a, b in zip(blocks, blocks[1:], strict=False)]
    assert sorted(set(gaps)) == [0, 100]
    h = acq.health()
    assert h.missed_samples == 100 and h.samples == sum(b.n_samples for b in blocks)
    lead = seen["tech.lead_off:Erb-L"]
    assert lead[0].active and lead[0].priority is Priority.MEDIUM and lead[0].site == "Erb-L"
    assert seen["tech.saturated:Erb-L"][0].priority is Priority.MEDIUM
    missed = seen["tech.missed_samples"][0]
    assert missed.evidence["missed_samples"] == 100 and missed.priority is Priority.LOW
    assert "tech.stall" not in seen and "tech.frontend_lost" not in seen
    assert not any(k.endswith(("C3'-Fz", "Erb-R")) for k in seen)
    assert stop_s < 3.0 and not acq._proc.is_alive()
    assert acq.get_block(0.1) is None


def test_stall_is_reported_escalates_and_clears_once(make_cfg):
    cfg = make_cfg('[[event]]\ntype = "stall"\nat_s = 0.3\nduration_s = 2.0\n')
    with Acquisition(cfg, lost_s=1.2) as acq:
        first_block(acq)
        blocks, seen, history = pump(
            acq, 10.0, until=lambda bl, s: any(not c.active for c in s.get("tech.stall", [])))
        h_after = acq.health()
    stall = seen["tech.stall"]
    assert stall[0].active and stall[0].priority is Priority.MEDIUM
    assert [c.active for c in stall].count(False) == 1 and not stall[-1].active
    lost = seen["tech.frontend_lost"]
    assert lost[0].priority is Priority.HIGH and not lost[-1].active
    # stall reported within ~stall_s of the last block, lost only after lost_s
    i_stall = next(i for i, ids in enumerate(history) if "tech.stall" in ids)
    i_lost = next(i for i, ids in enumerate(history) if "tech.frontend_lost" in ids)
    assert i_lost > i_stall
    assert stall[0].evidence["silent_s"] < 0.5 + 0.35
    assert h_after.stalls == 1 and h_after.missed_samples > 1500  # the converter ran on
    assert "tech.missed_samples" in seen


def test_dead_child_is_reported_then_restarted_and_the_stream_continues(make_cfg):
    with Acquisition(make_cfg()) as acq:
        before = [first_block(acq)]
        killed_at = time.monotonic()
        os.kill(acq.pid, signal.SIGKILL)
        t = time.monotonic()
        while time.monotonic() - t < 3.0 and (b := acq.get_block(0.1)) is not None:
            before.append(b)  # what was already sent
        conds = {c.id: c for c in acq.conditions(1.0)}
        assert conds["tech.frontend_lost"].priority is Priority.HIGH
        assert conds["tech.frontend_lost"].active
        h = acq.health()
        assert not h.connected and h.last_error
        t = time.monotonic()
        assert acq.get_block(0.3) is None and 0.25 <= time.monotonic() - t < 0.45  # no spin
        # restarted after its backoff; the new stream continues after a gap
        after, seen, _ = pump(acq, 25.0, until=lambda bl, s: len(bl) >= 5)
        outage_s = time.monotonic() - killed_at
        h = acq.health()
    assert len(after) >= 5 and h.reconnects == 1 and h.connected  # flowing again
    gap = after[0].first_sample - before[-1].end_sample
    assert 0.5 * 1000 <= gap <= outage_s * 1000 + 50  # the outage in samples at 1 kHz
    assert all(b.first_sample == a.end_sample for a, b in zip(after, after[1:], strict=False))
    assert h.missed_samples == gap
    lost = seen["tech.frontend_lost"]
    assert lost[-1].active is False and [c.active for c in lost].count(False) == 1


def test_front_end_that_cannot_open_is_lost_with_its_reason(make_cfg):
    cfg = make_cfg('[[event]]\ntype = "amplitude"\nat_s = 1\nto_percent = 5\nsite = "L medain"\n')
    with Acquisition(cfg) as acq:
        t0 = time.monotonic()
        conds = {}
        while time.monotonic() - t0 < 20.0 and "tech.frontend_lost" not in conds:
            assert acq.get_block(0.2) is None
            conds = {c.id: c for c in acq.conditions(0.0) if c.active}
        lost = conds["tech.frontend_lost"]
        assert "event[0].site" in lost.message and "L medain" in lost.evidence["error"]
        # it keeps trying (with backoff) and keeps saying why
        t0 = time.monotonic()
        while time.monotonic() - t0 < 20.0 and acq.restarts < 1:
            assert acq.get_block(0.2) is None
        time.sleep(0.1)
        conds = {c.id: c for c in acq.conditions(1.0) if c.active}
        assert acq.restarts >= 1 and "event[0].site" in conds["tech.frontend_lost"].message
        assert acq.health().reconnects == acq.restarts and not acq.health().connected


def test_emulated_ads1299_through_the_factory_and_the_process(make_cfg):
    """Patient -> register-level ADS1299 emulator (SPI, DRDY, status word GPIO) -> factory ->
    acquisition process: contiguous blocks, stimuli latched as trigger bits at the site's rate.
    The step-wise emulator (served whenever read): the faithful one loses samples to this shared
    machine's scheduling (counted gaps, tests/frontend/ads1299/test_ads1299_faithful.py)."""
    cfg = make_cfg(kind="ads1299-emulated", faithful_emulator=False)
    with Acquisition(cfg) as acq:
        blocks = [first_block(acq)]
        more, seen, _ = pump(acq, 10.0, until=lambda bl, s: bl and bl[-1].end_sample >= 2500)
    blocks += more
    assert blocks[-1].end_sample >= 2500
    assert all(b.first_sample == a.end_sample for a, b in zip(blocks, blocks[1:], strict=False))
    trig = np.concatenate([b.trigger for b in blocks])
    n_s = len(trig) / 1000.0
    for bit, rate in ((0, 4.7), (1, 4.7), (2, 2.3)):  # sim_helpers.SITES
        edges = np.count_nonzero(np.diff((trig >> bit) & 1) == 1)
        assert abs(edges - rate * n_s) <= 2, (bit, edges, n_s)
    assert not any(k.startswith(("tech.stall", "tech.frontend_lost")) for k in seen)


def _cpu_s(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_finite_source_that_ends_is_a_stall_and_the_child_does_not_spin(make_cfg):
    with Acquisition(make_cfg("duration_s = 0.3\n"), lost_s=30.0) as acq:
        blocks = [first_block(acq)]
        more, seen, _ = pump(acq, 10.0, until=lambda bl, s: "tech.stall" in s)
        blocks += more
        assert blocks[-1].end_sample == 300 and seen["tech.stall"][0].active
        cpu0, t0 = _cpu_s(acq.pid), time.monotonic()
        time.sleep(1.0)
        cpu_share = (_cpu_s(acq.pid) - cpu0) / (time.monotonic() - t0)
        assert cpu_share < 0.2, cpu_share  # waiting, not polling flat out
        assert not acq.health().connected


def test_as_fast_as_possible_source_is_lossless_when_the_parent_lags(make_cfg):
    with Acquisition(make_cfg(realtime=False), backlog_s=0.2) as acq:
        blocks = [first_block(acq)]
        time.sleep(1.5)  # the parent is busy; the child computes far ahead of it
        more, _, _ = pump(acq, 10.0, until=lambda bl, s: bl and bl[-1].end_sample >= 20000)
    blocks += more
    assert blocks[-1].end_sample >= 20000
    assert all(b.first_sample == a.end_sample for a, b in zip(blocks, blocks[1:], strict=False))
    assert acq.missed_samples == 0


def test_corrupt_frames_from_the_emulated_chip_are_counted_and_reported(make_cfg):
    acq = Acquisition(make_cfg(kind="ads1299-emulated"),
                      frontend_factory="sim_helpers:corrupting_ads1299")
    with acq:
        first_block(acq)
        _, seen, _ = pump(acq, 10.0, until=lambda bl, s: "tech.corrupt_frames" in s
                          and sum(b.n_samples for b in bl) > 1000)
        h = acq.health()
    c = seen["tech.corrupt_frames"][0]
    assert c.active and c.priority is Priority.LOW and c.evidence["corrupt_frames"] > 0
    assert h.corrupt_frames >= c.evidence["corrupt_frames"]
    # garbled frames are never delivered: the front end counts them and leaves a gap
    assert 0 < h.missed_samples


def test_only_corrupt_frames_is_named_not_no_samples_for_none(make_cfg):
    """Data arrives but no valid frame (wrong board mode, port or wiring): the stall says so."""
    acq = Acquisition(make_cfg(kind="ads1299-emulated"), stall_s=0.5, startup_s=1.0,
                      frontend_factory="sim_helpers:garbled_ads1299")
    with acq:
        blocks, seen, _ = pump(acq, 15.0, until=lambda bl, s: any(
            "data arrives" in c.message for c in s.get("tech.stall", [])))
    assert not blocks
    msgs = [c.message for c in seen["tech.stall"]]
    assert all(c.active for c in seen["tech.stall"])
    assert not [m for m in msgs if "None" in m], msgs
    assert msgs[0].startswith("no samples since the front end started "), msgs
    # once the acquisition child reports the front end's health (every second without blocks)
    assert "data arrives but no valid frame or packet (" in msgs[-1], msgs

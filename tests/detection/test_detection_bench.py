"""The detection benchmark's own machinery (appliance/bench/detection.py): the Poisson bound on
false-alarm rates, the multi-confirmation conventional detector and its stricter variants, the
matched-variant choice, and that the parallel run gives the serial run's results."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from appliance.bench import detection as bench
from appliance.detection import cases
from appliance.detection.conventional import (
    ConventionalDetector,
    ConventionalSettings,
    n20_p25,
)
from appliance.detection.detector import DetectorSettings

T_WIN = cases.t_ms()[cases.window_slice()]
# short, artefact-rich stable case: many conventional alarms for the comparisons
NOISY = cases.Case("noisy", change_at_s=None, noise_scale=0.7, duration_s=900,
                   cautery_per_h=40.0)
DROP = cases.Case("drop", change_at_s=400.0, drop=0.6, noise_scale=0.5, duration_s=900,
                  cautery_per_h=20.0)


def _blocks(case: cases.Case, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(cases.sweeps(case, seed, chunk=997))


def _reference(blocks, s: ConventionalSettings) -> list[float]:
    """The conventional method written out plainly: full moving average at every update."""
    x = np.concatenate([b[0] for b in blocks])
    t = np.concatenate([b[1] for b in blocks])
    base, run, latched, out = None, 0, False, []
    for n in range(s.n_average, x.shape[0] + 1, s.update_every):
        p2p, lat = n20_p25(x[n - s.n_average : n].mean(axis=0), T_WIN, s)
        if base is None:
            base = (p2p, lat)
            continue
        bad = p2p < s.amplitude_fraction * base[0] or lat > s.latency_fraction * base[1]
        run = run + 1 if bad else 0
        if run >= s.confirmations and not latched:
            latched = True
            out.append(float(t[n - 1]))
        elif not bad:
            latched = False
    return out


@pytest.fixture(scope="module")
def noisy_blocks():
    return _blocks(NOISY, 1)


def test_poisson_upper_bound():
    assert bench.poisson_upper95(0, 16.0) == pytest.approx(8.0 * -np.log(0.05) / 16.0, rel=1e-9)
    assert bench.poisson_upper95(0, 16.0) == pytest.approx(1.5, abs=0.01)
    for k, hours in ((0, 48.0), (2, 16.0), (7, 50.0)):
        up = bench.poisson_upper95(k, hours)
        # at the upper bound, seeing k or fewer events has probability 5 %
        assert stats.poisson.cdf(k, up * hours / 8.0) == pytest.approx(0.05, rel=1e-6)
        assert up > k / hours * 8.0
    assert bench.poisson_upper95(3, 10.0, per_h=1.0) == pytest.approx(
        bench.poisson_upper95(3, 10.0) / 8.0)


def test_default_conventional_matches_plain_reimplementation(noisy_blocks):
    for case_blocks in (noisy_blocks, _blocks(DROP, 5)):
        s = ConventionalSettings()
        ref = _reference(case_blocks, s)
        plain = ConventionalDetector(T_WIN)
        multi = ConventionalDetector(T_WIN, confirmations=(4, 8, 16))
        got_plain: list[float] = []
        got_multi: list[float] = []
        for x, t in case_blocks:
            got_plain += plain.push(x, t)
            got_multi += multi.push_all(x, t)[s.confirmations]
        assert ref, "the case must make the conventional method alarm"
        assert got_plain == pytest.approx(ref, abs=1e-9)
        assert got_multi == got_plain
        # the stricter counts of the shared average equal their own single-count detectors
        for c in (4, 16):
            single = ConventionalDetector(T_WIN, ConventionalSettings(confirmations=c))
            mine = [tt for x, t in case_blocks for tt in single.push(x, t)]
            again = ConventionalDetector(T_WIN, confirmations=(c,))
            shared = [tt for x, t in case_blocks for tt in again.push_all(x, t)[c]]
            assert shared == mine


def test_stricter_confirmations_never_alarm_more(noisy_blocks):
    for n_avg in (300, 500):
        det = ConventionalDetector(T_WIN, ConventionalSettings(n_average=n_avg),
                                   confirmations=(2, 4, 8, 16))
        fired = {c: [] for c in det.confirmations}
        for x, t in noisy_blocks:
            for c, v in det.push_all(x, t).items():
                fired[c] += v
        counts = [len(fired[c]) for c in sorted(fired)]
        assert counts[0] > 0
        assert counts == sorted(counts, reverse=True), counts
        # every stricter alarm comes at or after a looser one
        for lo, hi in ((2, 4), (4, 8), (8, 16)):
            for t_hi in fired[hi]:
                assert any(t_lo <= t_hi for t_lo in fired[lo])


def test_artifact_rejection_removes_cautery_alarms(noisy_blocks):
    plain = ConventionalDetector(T_WIN)
    rej = ConventionalDetector(T_WIN, ConventionalSettings(reject_uv=bench.REJECT_UV))
    a = [tt for x, t in noisy_blocks for tt in plain.push(x, t)]
    b = [tt for x, t in noisy_blocks for tt in rej.push(x, t)]
    assert len(b) < len(a)


def test_matched_variant_choice():
    names = bench.variant_names()
    assert names[0] == bench.STANDARD and all("/rej" not in v for v in names)
    assert names.index("n300/c16") < names.index("n500/c2")
    counts = dict.fromkeys(names + bench.variant_names(bench.REJECT_UV), 5)
    counts["n500/c4"] = 2  # 2 in 16 h = 1.0 / 8 h: matched
    counts["n500/c8"] = 0
    row = {"conv_variants_false_count": counts, "hours_observed": 16.0}
    v, fig = bench.matched_variant(row)
    assert v == "n500/c4" and fig["per_8h"] == 1.0 and fig["count"] == 2
    assert fig["per_8h_upper95"] == round(bench.poisson_upper95(2, 16.0), 2)
    assert bench.matched_variant(row, bench.REJECT_UV) == (None, {})


def _rounded(x, digits: int = 10):
    """x with every float to `digits` significant digits: the workers run one BLAS thread and
    this process several, and a sum in another order differs in its last bits."""
    if isinstance(x, float):
        return float(f"{x:.{digits}g}")
    if isinstance(x, dict):
        return {k: _rounded(v, digits) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(_rounded(v, digits) for v in x)
    return x


def test_parallel_run_equals_serial():
    jobs = [(cases.Case("a", change_at_s=100.0, drop=0.6, duration_s=250), 1, DetectorSettings()),
            (cases.Case("b", change_at_s=None, duration_s=200), 2, DetectorSettings())]
    serial = bench.run_jobs(jobs, processes=1)
    parallel = bench.run_jobs(jobs, processes=2)
    assert _rounded(parallel) == _rounded(serial)
    r = serial[0]
    assert {"fast_high", "fast_med", "conv", "conv_variants", "sigma_a", "evidence_ok",
            "hours"} <= set(r)
    assert r["conv"] == r["conv_variants"][bench.STANDARD]
    assert set(r["conv_variants"]) == set(bench.variant_names()) | set(
        bench.variant_names(bench.REJECT_UV))

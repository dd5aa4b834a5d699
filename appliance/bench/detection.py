"""`ionm bench detection`: detection delay of the fast detector vs the sequential bound n* and
vs the conventional method, on seeded simulated SSEP cases; false alarms per 8 h on stable cases.

Delays are measured from the change onset (for ramps, from the ramp start). n* uses sigma_a of
the standard conditioning (plain projection onto the known template) on the case's stable part.

False alarms: every alarm before the onset (all of a stable or fade case, the pre-change part of
a drop case) is false. Each figure comes with its count, the hours observed and an exact one-sided
95 % Poisson upper bound on the rate.

Matched comparison: besides the standard conventional method (300-sweep average, 2
confirmations) a family of stricter variants (`VARIANTS`) runs on the same sweeps. Per noise
level the least strict variant whose false-alarm rate on that noise level's stable scenario is
<= `MATCHED_FALSE_PER_8H` is the matched one; the drop/latency rows report its delays
(`conv_matched_*`), or `conv_matched_variant: null` if no variant gets there.

The (case, seed) jobs run in a spawn pool, one process per CPU; each job is seeded on its own,
so the results do not depend on the scheduling (`run(..., processes=1)` runs them serially).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from scipy import stats

from appliance.detection import bounds, cases
from appliance.detection.conventional import ConventionalDetector, ConventionalSettings
from appliance.detection.detector import DetectorSettings, SweepDetector
from appliance.detection.parallel import spawn_map

# Conventional variants: (n_average, artifact rejection µV or None, confirmation counts). The
# ones without rejection are the standard method made stricter; with rejection (what monitors
# do against cautery) they are a second family, matched on its own (`conv_rej_matched_*`).
REJECT_UV = 100.0  # clean conditioned sweeps peak at ~40 µV (noise 0.7), cautery at ~4 mV
_CONFIRMATIONS = (2, 4, 8, 16)
VARIANTS: tuple[tuple[int, float | None, tuple[int, ...]], ...] = tuple(
    (n, r, _CONFIRMATIONS) for r in (None, REJECT_UV) for n in (300, 500))
STANDARD = "n300/c2"  # ConventionalSettings() defaults
MATCHED_FALSE_PER_8H = 1.0
# (row key prefix, rejection) of each family matched at <= MATCHED_FALSE_PER_8H
FAMILIES: tuple[tuple[str, float | None], ...] = (("conv_matched", None),
                                                   ("conv_rej_matched", REJECT_UV))


def variant_name(n_average: int, confirmations: int, reject_uv: float | None = None) -> str:
    return f"n{n_average}/c{confirmations}" + ("" if reject_uv is None else f"/rej{reject_uv:g}")


def variant_names(reject_uv: float | None = None) -> list[str]:
    """One family, least strict first: smallest n_average, then smallest confirmations."""
    return [variant_name(n, c, r) for n, r, cs in sorted(VARIANTS, key=lambda v: v[0])
            if r == reject_uv for c in sorted(cs)]


def seeds(case: cases.Case, quick: bool) -> range:
    """Stable and fade cases get many hours (false-alarm rates: 48 h, 32 h for the slower
    multichannel cases); change cases 12 seeds."""
    stable = case.change_at_s is None
    if quick:
        return range(1, 5) if stable else range(1, 3)
    if stable:
        return range(1, 25) if case.channels == 1 else range(1, 17)
    return range(1, 13)


def scenarios(quick: bool) -> list[cases.Case]:
    return _single_channel(quick) + _montage(quick)


def _montage(quick: bool) -> list[cases.Case]:
    """The same changes seen through three derivations (cases.py): the fast detector combines
    them, the conventional method and the bound's sigma_a use the standard derivation."""
    C = cases.Case
    out: list[cases.Case] = []
    for ns in (0.5,) if quick else (0.5, 0.7):
        tag = f"n{ns:g}-3ch"
        for d in (0.6,) if quick else (0.5, 0.6, 1.0):
            out.append(C(f"drop{int(d * 100)}-abrupt-{tag}", drop=d, noise_scale=ns,
                         duration_s=1500, channels=3))
        if not quick:
            out.append(C(f"drop60-ramp60s-{tag}", drop=0.6, ramp_s=60.0, noise_scale=ns,
                         duration_s=1500, channels=3))
            out.append(C(f"latency+10%-{tag}", latency_shift_ms=2.0, noise_scale=ns,
                         duration_s=1500, channels=3))
        out.append(C(f"stable-{tag}", change_at_s=None, noise_scale=ns,
                     duration_s=1800 if quick else 7200, channels=3))
    if not quick:
        out.append(C("fade30%/h-n0.5-3ch", change_at_s=None, fade_per_h=0.3, duration_s=7200,
                     noise_scale=0.5, channels=3))
    return out


def _single_channel(quick: bool) -> list[cases.Case]:
    C = cases.Case
    out: list[cases.Case] = []
    noises = (0.5,) if quick else (0.5, 0.7)
    for ns in noises:
        tag = f"n{ns:g}"
        drops = (0.6,) if quick else (0.3, 0.5, 0.6, 1.0)
        for d in drops:
            out.append(C(f"drop{int(d * 100)}-abrupt-{tag}", drop=d, noise_scale=ns,
                         duration_s=1500))
            if not quick and d in (0.5, 0.6):
                out.append(C(f"drop{int(d * 100)}-ramp60s-{tag}", drop=d, ramp_s=60.0,
                             noise_scale=ns, duration_s=1500))
        if not quick:
            out.append(C(f"latency+10%-{tag}", latency_shift_ms=2.0, noise_scale=ns,
                         duration_s=1500))
        out.append(C(f"stable-{tag}", change_at_s=None, noise_scale=ns,
                     duration_s=1800 if quick else 7200))
    if not quick:
        out.append(C("fade30%/h-n0.5", change_at_s=None, fade_per_h=0.3, duration_s=7200,
                     noise_scale=0.5))
    return out


def run_case(case: cases.Case, seed: int, settings: DetectorSettings | None = None) -> dict:
    det = SweepDetector("site", cases.FS_HZ, settings or DetectorSettings())
    t_win = cases.t_ms()[cases.window_slice()]
    convs = [ConventionalDetector(t_win, ConventionalSettings(n_average=n, reject_uv=r),
                                  confirmations=cs) for n, r, cs in VARIANTS]
    variants: dict[str, list[float]] = {variant_name(d.s.n_average, c, d.s.reject_uv): []
                                        for d in convs for c in d.confirmations}
    tmpl = cases.true_template()
    fast_high: list[float] = []
    fast_med: list[float] = []
    stable_rows: list[np.ndarray] = []
    n_stable = 0
    evidence_ok = True
    active: set[str] = set()
    for x, t in cases.sweeps(case, seed):
        x0 = x if x.ndim == 2 else x[:, 0]  # the standard derivation
        for c in det.push(x, t):
            if not c.active:
                active.discard(c.id)
                continue
            if c.id in active:  # a re-report of a raised alarm with the estimate updated
                continue
            active.add(c.id)
            evidence_ok &= all(k in c.evidence for k in (
                "amplitude_ratio_ci95", "statistic", "threshold", "short_average"))
            (fast_high if c.priority.name == "HIGH" else fast_med).append(c.t_s)
        for d in convs:
            for k, times in d.push_all(x0, t).items():
                variants[variant_name(d.s.n_average, k, d.s.reject_uv)] += times
        before = t < case.change_at_s if case.change_at_s is not None else np.ones(t.size, bool)
        if n_stable < 3000 and before.any():
            stable_rows.append(x0[before][: 3000 - n_stable])
            n_stable += int(before.sum())
    sigma_a = bounds.sigma_a_standard(np.concatenate(stable_rows), tmpl)
    return {"fast_high": fast_high, "fast_med": fast_med, "conv": variants[STANDARD],
            "conv_variants": variants, "sigma_a": sigma_a,
            "sigma_fast": det.sigma_ratio if det.ready else None, "evidence_ok": evidence_ok,
            "hours": case.duration_s / 3600.0}


def _run_job(job: tuple[cases.Case, int, DetectorSettings]) -> dict:
    return run_case(*job)


def run_jobs(jobs: Sequence[tuple[cases.Case, int, DetectorSettings]],
             processes: int | None = None) -> list[dict]:
    """`run_case` over jobs, in order; in a spawn pool unless processes == 1."""
    return spawn_map(_run_job, jobs, processes, size=lambda j: j[0].duration_s,
                     label="bench detection")


def poisson_upper95(k: int, hours: float, per_h: float = 8.0) -> float:
    """Exact one-sided 95 % upper bound on a Poisson rate per `per_h` hours, k events seen."""
    return float(0.5 * stats.chi2.ppf(0.95, 2 * k + 2) / hours * per_h)


def _false(row: dict, key: str, k: int, hours: float, per_h: float) -> None:
    """`key` (rate), `<key>_upper95`, and the count as `<stem>_count`."""
    stem = key.rsplit("_per_", 1)[0]
    row[key] = round(k / hours * per_h, 2)
    row[f"{stem}_count"] = k
    row[f"{key}_upper95"] = round(poisson_upper95(k, hours, per_h), 2)


def summarise(case: cases.Case, runs: list[dict],
              matched: dict[str, tuple[str | None, dict]] | None = None) -> dict:
    """One row. `matched`: per family prefix, (variant name or None, its false-alarm figures on
    the stable scenario of the case's noise level)."""
    rate = case.rate_hz
    arl0 = bounds.arl0_sweeps(rate)
    sigma_a = float(np.median([r["sigma_a"] for r in runs]))
    # the fast detector's own per-sweep sd (out of sample, whitened, channels combined): the
    # noise it actually faces; gain = (sigma_a / sigma_fast)^2, as in sweeps saved
    fast = [r["sigma_fast"] for r in runs if r.get("sigma_fast") is not None]
    sigma_fast = float(np.median(fast)) if fast else float("nan")
    row: dict[str, object] = {"scenario": case.name, "sigma_a": round(sigma_a, 2),
                              "sigma_fast": round(sigma_fast, 2),
                              "noise_power_gain": round((sigma_a / sigma_fast) ** 2, 2),
                              "seeds": len(runs)}
    onset = case.change_at_s

    def split(times: list[float]) -> tuple[list[float], list[float]]:
        if onset is None:
            return times, []
        return [t for t in times if t < onset], [t - onset for t in times if t >= onset]

    names = list(runs[0]["conv_variants"])
    false_high = false_med = false_conv = 0
    false_var = dict.fromkeys(names, 0)
    hours = 0.0
    fast_d, conv_d = [], []
    var_d: dict[str, list[float]] = {v: [] for v in names}
    for r in runs:
        fh, dh = split(r["fast_high"])
        fm, _ = split(r["fast_med"])
        fc, dc = split(r["conv"])
        false_high += len(fh)
        false_med += len(fm)
        false_conv += len(fc)
        hours += (onset if onset is not None else r["hours"] * 3600.0) / 3600.0
        fast_d.append(dh[0] if dh else np.nan)
        conv_d.append(dc[0] if dc else np.nan)
        for v in names:
            fv, dv = split(r["conv_variants"][v])
            false_var[v] += len(fv)
            var_d[v].append(dv[0] if dv else np.nan)
    row["hours_observed"] = round(hours, 2)
    _false(row, "false_high_per_8h", false_high, hours, 8.0)
    _false(row, "false_medium_per_h", false_med, hours, 1.0)
    _false(row, "false_conventional_per_8h", false_conv, hours, 8.0)
    row["evidence_complete"] = all(r["evidence_ok"] for r in runs)
    row["conv_variants_false_count"] = false_var
    row["conv_variants_false_per_8h"] = {v: round(k / hours * 8.0, 2)
                                         for v, k in false_var.items()}
    for pre, (v, fig) in (matched or {}).items():
        row[f"{pre}_variant"] = v
        row[f"{pre}_false_per_8h"] = fig.get("per_8h")
        row[f"{pre}_false_per_8h_upper95"] = fig.get("per_8h_upper95")
    if onset is not None:
        fd, cd = np.array(fast_d), np.array(conv_d)
        row["fast_detect_rate"] = round(float(np.mean(~np.isnan(fd))), 2)
        row["conv_detect_rate"] = round(float(np.mean(~np.isnan(cd))), 2)
        row["fast_median_s"] = _q(fd, 50)
        row["fast_p95_s"] = _q(fd, 95)
        row["conv_median_s"] = _q(cd, 50)
        row["conv_p95_s"] = _q(cd, 95)
        row["conv_variants_median_s"] = {v: _q(np.array(d), 50) for v, d in var_d.items()}
        if case.drop > 0:
            n_star_s = bounds.n_star_sweeps(sigma_a, case.drop, arl0) / rate
            row["n_star_s"] = round(n_star_s, 1)
            if isinstance(row["fast_median_s"], float):
                row["fast_over_n_star"] = round(row["fast_median_s"] / n_star_s, 2)
        row["conv_over_fast"] = _ratio(row["conv_median_s"], row["fast_median_s"])
        if row["conv_over_fast"] is None:
            del row["conv_over_fast"]
        for pre, (v, _) in (matched or {}).items():
            if v is None:  # no variant of the family reached the false-alarm target
                row.update(dict.fromkeys((f"{pre}_median_s", f"{pre}_p95_s",
                                          f"{pre}_detect_rate", f"{pre}_over_fast")))
                continue
            md = np.array(var_d[v])
            row[f"{pre}_median_s"] = _q(md, 50)
            row[f"{pre}_p95_s"] = _q(md, 95)
            row[f"{pre}_detect_rate"] = round(float(np.mean(~np.isnan(md))), 2)
            row[f"{pre}_over_fast"] = _ratio(row[f"{pre}_median_s"], row["fast_median_s"])
    return row


def _ratio(a: object, b: object) -> float | None:
    if isinstance(a, float) and isinstance(b, float) and b > 0:
        return round(a / b, 2)
    return None


def _q(v: np.ndarray, q: float) -> float | None:
    """Quantile of delays; a missed detection counts as infinitely late."""
    if np.all(np.isnan(v)):
        return None
    w = np.where(np.isnan(v), np.inf, v)
    r = float(np.percentile(w, q, method="higher"))
    return round(r, 1) if np.isfinite(r) else None


def matched_variant(stable_row: dict, reject_uv: float | None = None,
                    limit: float = MATCHED_FALSE_PER_8H) -> tuple[str | None, dict]:
    """The family's least strict variant with false alarms <= limit per 8 h on a stable row,
    and its figures; (None, {}) if none gets there."""
    counts: dict[str, int] = stable_row["conv_variants_false_count"]
    hours = float(stable_row["hours_observed"])
    for v in variant_names(reject_uv):
        k = counts[v]
        if k / hours * 8.0 <= limit:
            return v, {"count": k, "per_8h": round(k / hours * 8.0, 2),
                       "per_8h_upper95": round(poisson_upper95(k, hours), 2)}
    return None, {}


def _is_stable(case: cases.Case) -> bool:
    return case.change_at_s is None and case.fade_per_h == 0.0


def run_sweep_level(quick: bool = False, processes: int | None = None) -> dict:
    t0 = time.perf_counter()
    settings = DetectorSettings()
    scen = scenarios(quick)
    jobs = [(c, s, settings) for c in scen for s in seeds(c, quick)]
    results = run_jobs(jobs, processes)
    runs: dict[str, list[dict]] = {c.name: [] for c in scen}
    for (c, _, _), r in zip(jobs, results, strict=True):
        runs[c.name].append(r)
    # the stable scenario of each noise level (and montage) picks its matched variant
    matched: dict[tuple[float, int], dict[str, tuple[str | None, dict]]] = {}
    rows: dict[str, dict] = {}
    for c in scen:
        if _is_stable(c):
            row = summarise(c, runs[c.name])
            key = (c.noise_scale, c.channels)
            matched[key] = {pre: matched_variant(row, r) for pre, r in FAMILIES}
            rows[c.name] = summarise(c, runs[c.name], matched[key])
    for c in scen:
        if c.name not in rows:
            m = (matched.get((c.noise_scale, c.channels)) if c.change_at_s is not None
                 else None)
            rows[c.name] = summarise(c, runs[c.name], m)
    return {"detection": [rows[c.name] for c in scen],
            "detection_conv_matched": {
                f"n{ns:g}" + ("" if ch == 1 else f"-{ch}ch"): {pre: v for pre, (v, _) in m.items()}
                for (ns, ch), m in matched.items()},
            "detection_wall_s": round(time.perf_counter() - t0, 1)}


def run(quick: bool = False, processes: int | None = None) -> dict:
    """The sweep-level part above, then both case families through the real Monitor
    (appliance/bench/detection_families.py)."""
    from appliance.bench import detection_families

    return {**run_sweep_level(quick, processes), **detection_families.run(quick, processes)}


def text(result: dict) -> str:
    """`ionm bench detection` without --json: the families' table after the other figures."""
    from appliance.bench import detection_families

    rest = "\n".join(f"  {k:<40} {v}" for k, v in result.items()
                     if k not in ("detection_families",))
    return rest + "\n" + detection_families.table(result.get("detection_families", []))

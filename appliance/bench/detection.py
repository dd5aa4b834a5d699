"""`ionm bench detection`: detection delay of the fast detector vs the sequential bound n* and
vs the conventional method, on seeded simulated SSEP cases; false alarms per 8 h on stable cases.

Delays are measured from the change onset (for ramps, from the ramp start). n* uses sigma_a of
the standard conditioning (plain projection onto the known template) on the case's stable part.
"""

from __future__ import annotations

import numpy as np

from appliance.detection import bounds, cases
from appliance.detection.conventional import ConventionalDetector
from appliance.detection.detector import DetectorSettings, SweepDetector


def scenarios(quick: bool) -> list[cases.Case]:
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


def run_case(case: cases.Case, seed: int, settings: DetectorSettings) -> dict:
    det = SweepDetector("site", cases.FS_HZ, settings)
    conv = ConventionalDetector(cases.t_ms()[cases.window_slice()])
    tmpl = cases.true_template()
    fast_high: list[float] = []
    fast_med: list[float] = []
    conv_t: list[float] = []
    stable_rows: list[np.ndarray] = []
    n_stable = 0
    evidence_ok = True
    for x, t in cases.sweeps(case, seed):
        for c in det.push(x, t):
            if not c.active:
                continue
            evidence_ok &= all(k in c.evidence for k in (
                "amplitude_ratio_ci95", "statistic", "threshold", "short_average"))
            (fast_high if c.priority.name == "HIGH" else fast_med).append(c.t_s)
        conv_t += conv.push(x, t)
        before = t < case.change_at_s if case.change_at_s is not None else np.ones(t.size, bool)
        if n_stable < 3000 and before.any():
            stable_rows.append(x[before][: 3000 - n_stable])
            n_stable += int(before.sum())
    sigma_a = bounds.sigma_a_standard(np.concatenate(stable_rows), tmpl)
    return {"fast_high": fast_high, "fast_med": fast_med, "conv": conv_t, "sigma_a": sigma_a,
            "evidence_ok": evidence_ok, "hours": case.duration_s / 3600.0}


def summarise(case: cases.Case, runs: list[dict]) -> dict:
    rate = case.rate_hz
    arl0 = bounds.arl0_sweeps(rate)
    sigma_a = float(np.median([r["sigma_a"] for r in runs]))
    row: dict[str, object] = {"scenario": case.name, "sigma_a": round(sigma_a, 2),
                              "seeds": len(runs)}
    onset = case.change_at_s

    def split(times: list[float]) -> tuple[list[float], list[float]]:
        if onset is None:
            return times, []
        return [t for t in times if t < onset], [t - onset for t in times if t >= onset]

    false_high = false_med = false_conv = 0
    hours = 0.0
    fast_d, conv_d = [], []
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
    row["false_high_per_8h"] = round(false_high / hours * 8.0, 2)
    row["false_medium_per_h"] = round(false_med / hours, 2)
    row["false_conventional_per_8h"] = round(false_conv / hours * 8.0, 2)
    row["evidence_complete"] = all(r["evidence_ok"] for r in runs)
    if onset is not None:
        fd, cd = np.array(fast_d), np.array(conv_d)
        row["fast_detect_rate"] = round(float(np.mean(~np.isnan(fd))), 2)
        row["conv_detect_rate"] = round(float(np.mean(~np.isnan(cd))), 2)
        row["fast_median_s"] = _q(fd, 50)
        row["fast_p95_s"] = _q(fd, 95)
        row["conv_median_s"] = _q(cd, 50)
        row["conv_p95_s"] = _q(cd, 95)
        if case.drop > 0:
            n_star_s = bounds.n_star_sweeps(sigma_a, case.drop, arl0) / rate
            row["n_star_s"] = round(n_star_s, 1)
            if isinstance(row["fast_median_s"], float):
                row["fast_over_n_star"] = round(row["fast_median_s"] / n_star_s, 2)
        if isinstance(row["fast_median_s"], float) and isinstance(row["conv_median_s"], float):
            row["conv_over_fast"] = round(row["conv_median_s"] / row["fast_median_s"], 2)
    return row


def _q(v: np.ndarray, q: float) -> float | None:
    """Quantile of delays; a missed detection counts as infinitely late."""
    if np.all(np.isnan(v)):
        return None
    w = np.where(np.isnan(v), np.inf, v)
    r = float(np.percentile(w, q, method="higher"))
    return round(r, 1) if np.isfinite(r) else None


def run(quick: bool = False) -> dict:
    settings = DetectorSettings()
    seeds = range(1, 3) if quick else range(1, 9)
    rows = [summarise(c, [run_case(c, s, settings) for s in seeds]) for c in scenarios(quick)]
    return {"detection": rows}

"""The Monitor-level part of `ionm bench detection`: both case families side by side through the
evaluation harness (appliance/detection/evaluate.py), the conventional criteria and the fast
detector in the same real Monitor (`analysis.fast_detection = true`), with the sequential bound
n* of each case.

Family A is the project's own simulated patient (its public Patient/scenario API), family B the
independently written simulator (appliance/detection/family_b.py). The same case list runs on
both: 1500 s, the change at 900 s on "L median"; stable and fade cases run twice as long.
"""

from __future__ import annotations

import time

from appliance.detection import evaluate, family_b

FAMILIES = ("A", "B")
SEEDS = (1, 2, 3)


def specs(quick: bool) -> list[evaluate.Spec]:
    if quick:  # the fast detector arms after ~460 s: the change must come later than that
        cases = [c for c in family_b.standard_cases(True, duration_s=1080.0, change_at_s=720.0)
                 if c.change != "none"]
        return [evaluate.Spec(f, c) for f in FAMILIES for c in cases
                if f == "B" or c.name.startswith("drop60")]
    return [evaluate.Spec(f, c) for f in FAMILIES for c in family_b.standard_cases()]


def run(quick: bool = False, processes: int | None = None,
        cases: list[evaluate.Spec] | None = None, seeds: tuple[int, ...] | None = None) -> dict:
    """Every spec (default `specs(quick)`) over `seeds` (default 1 seed quick, else 3)."""
    t0 = time.perf_counter()
    sp = cases if cases is not None else specs(quick)
    seeds = seeds or (SEEDS[:1] if quick else SEEDS)
    jobs = [(s, seed) for s in sp for seed in seeds]
    results = evaluate.run_jobs(jobs, processes)
    rows = []
    for s in sp:
        runs = [r for (js, _), r in zip(jobs, results, strict=True) if js is s]
        rows.append(evaluate.summarise_runs(s, runs))
    return {"detection_families": rows,
            "detection_families_wall_s": round(time.perf_counter() - t0, 1)}


COLUMNS = (("case", "case", 22), ("family", "fam", 3), ("n_star_s", "n*", 6),
           ("conv_high_s", "conventional HIGH s", 22), ("fast_high_s", "fast HIGH s", 20),
           ("fast_medium_s", "fast medium s", 20), ("conv_high_clears", "flaps c/f", 9),
           ("conv_ratio_mean", "p2p/fit/fast/true", 19), ("conv_false_high", "false H c/f", 11),
           ("fast_armed_s", "arm s", 6))


def _channel(r: dict) -> str:
    """Family B: what its channel carries (fit's window / fast's), beside the cortical truth."""
    if r.get("conv_channel_truth") is None:
        return ""
    return f" (channel {r['conv_channel_truth']:.2f} / {r['fast_channel_truth']:.2f})"


def _fmt_delays(v) -> str:
    if v is None:
        return "-"
    return ", ".join("never" if x is None else f"{x:.0f}" for x in v)


def table(rows: list[dict]) -> str:
    """A readable table: per case and family, the delays of each seed."""
    head = " ".join(f"{h:<{w}}" for _, h, w in COLUMNS)
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = []
        for key, _, w in COLUMNS:
            if key.endswith("_s") and key not in ("n_star_s", "fast_armed_s"):
                v = _fmt_delays(r.get(key))
            elif key == "conv_high_clears":
                v = f"{r.get('conv_high_clears', '-')}/{r.get('fast_high_clears', '-')}"
            elif key == "conv_ratio_mean":
                v = "/".join("-" if r.get(k) is None else f"{r[k]:.2f}" for k in (
                    "conv_ratio_mean", "conv_fit_ratio_mean", "fast_ratio_mean",
                    "conv_truth_mean")) + _channel(r)
            elif key == "conv_false_high":
                v = f"{r['conv_false_high']}/{r['fast_false_high']} ({r['site_hours']:g} h)"
            else:
                v = "-" if r.get(key) is None else str(r[key])
            cells.append(f"{v:<{w}}")
        lines.append(" ".join(cells))
    return "\n".join(lines)



def _n_star(r: dict) -> str:
    """The median n* and, for drops, each seed's n* from the noise after the change."""
    if not r["n_star_s"]:
        return "-"
    at = [x for x in r.get("n_star_change_per_seed") or [] if x is not None]
    return f"{r['n_star_s']}" + (f" ({', '.join(f'{x:.0f}' for x in at)})" if at else "")


def markdown(rows: list[dict]) -> str:
    """The docs/detection.md table: per case and family, every seed's delays."""
    head = ("| case | fam | n* s (per seed after the change) | conventional HIGH s | "
            "fast HIGH s | fast medium s | "
            "amplitude p2p / fit / fast / true (channel fit / fast) | flaps conv / fast | "
            "false conv H / fast H / fast M (site-h) | armed conv / fast s |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        amp = " / ".join("-" if r.get(k) is None else f"{r[k]:.2f}" for k in (
            "conv_ratio_mean", "conv_fit_ratio_mean", "fast_ratio_mean",
            "conv_truth_mean")) + _channel(r)
        flaps = (f"{r['conv_high_clears']} / {r['fast_high_clears']}"
                 if "conv_high_clears" in r else "-")
        lines.append(
            f"| {r['case']} | {r['family']} | {_n_star(r)} | "
            f"{_fmt_delays(r.get('conv_high_s'))} | {_fmt_delays(r.get('fast_high_s'))} | "
            f"{_fmt_delays(r.get('fast_medium_s'))} | {amp} | {flaps} | "
            f"{r['conv_false_high']} / {r['fast_false_high']} / {r['fast_false_medium']} "
            f"({r['site_hours']:g}) | "
            f"{r.get('conv_armed_s')} / {r.get('fast_armed_s')} |")
    return "\n".join(lines)

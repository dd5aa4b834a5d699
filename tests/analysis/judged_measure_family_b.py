"""What the judged SSEP measure reads on family B (docs/detection.md, "The judged measure on
family B"); a study script, not collected by pytest.

    python tests/analysis/judged_measure_family_b.py monitor lower 240 1 2 3
        per seed: the template fit through the real Monitor (conventional criteria only, the
        automatic baseline) before the change and once its window holds only changed sweeps,
        for a drop to 40 % at CHANGE s of a CHANGE + 210 s case (CHANGE:DURATION: another
        length, e.g. 300:600)
    python tests/analysis/judged_measure_family_b.py direct lower 240 1 2 3
        the same sweeps (conditioned as the Monitor does) projected on the generator's true
        noiseless baseline response over 16-33 ms: the reading an ideal template gives
    python tests/analysis/judged_measure_family_b.py energy lower 0 1
        a stable case's sweep energy (12-37 ms) against its median (artefact sweeps)
    python tests/analysis/judged_measure_family_b.py farfield lower 0 0
        noiseless: the scale of a 40 % cortical response per window, with slow (Legendre)
        nuisances fitted beside the template, and the part of the template's energy they keep
"""

from __future__ import annotations

import json
import sys

import numpy as np

from appliance.analysis.monitor import Monitor
from appliance.detection import family_b as fb
from appliance.frontend.block import SampleBlock

SITE, CORT = "L median", fb.CORTICAL["L median"]


def monitor(noise: str, change_s: float, seed: int, duration_s: float | None = None) -> dict:
    case = fb.Case("d", "drop", 0.4, noise=noise, change_at_s=change_s,
                   duration_s=duration_s or change_s + 210.0)
    mon = Monitor(fb.config(case, fast_detection=False))
    lead = np.zeros(len(fb.CHANNELS), bool)
    fits = []
    for ch in fb.generate(case, seed):
        for o in mon.push(SampleBlock(ch.data_uv, ch.trigger, ch.saturated, lead,
                                      ch.first_sample, float(fb.FS_HZ), 0.0)):
            d = o.to_json()
            if d.get("type") == "trend" and d["channel"] == CORT and d.get("fit"):
                fits.append((d["t_s"], d["fit"]))
    pre = [f["amplitude_ratio"] for t, f in fits if t < change_s]
    post = [f for t, f in fits if t > change_s + f["n_sweeps"] / fb.RATE_HZ + 11]
    r = [f["amplitude_ratio"] for f in post]
    base = mon.baselines.get(SITE, CORT)
    return {"seed": seed, "pre": _r(np.mean(pre)) if pre else None,
            "post": _r(np.mean(r)) if r else None, "post_updates": len(r),
            "covered_0.4": _r(np.mean([lo <= 0.4 <= hi for lo, hi in (
                f["amplitude_ratio_ci95"] for f in post)])) if post else None,
            "template_sweeps": base.template_sweeps if base else None}


def _sweeps(case: fb.Case, seed: int):
    sw, ts = fb.conditioned_sweeps(fb.render(case, seed), case, SITE, CORT)
    t = np.arange(sw.shape[1]) * 1e3 / fb.FS_HZ
    return sw, ts, t


def direct(noise: str, change_s: float, seed: int, duration_s: float | None = None) -> dict:
    case = fb.Case("d", "drop", 0.4, noise=noise, change_at_s=change_s,
                   duration_s=duration_s or change_s + 210.0)
    sw, ts, t = _sweeps(case, seed)
    tmpl = fb.mean_response(fb.Case("b"), SITE, CORT)[: sw.shape[1]]
    w = (t >= 16) & (t <= 33)
    r = sw[:, w] @ tmpl[w] / (tmpl[w] @ tmpl[w])
    e = (sw ** 2).mean(axis=1)
    keep = e < 9 * np.median(e)  # the 'noisy' rejection (RMS 3x)
    pre = keep & (ts > 50) & (ts < change_s)
    post = keep & (ts > change_s + 300 / fb.RATE_HZ)
    return {"seed": seed, "pre": _r(r[pre].mean()), "post": _r(r[post].mean()),
            "post_se": _r(r[post].std() / np.sqrt(post.sum()))}


def energy(noise: str, _change_s: float, seed: int, _duration_s=None) -> dict:
    case = fb.Case("s", noise=noise, duration_s=450.0)
    sw, _, t = _sweeps(case, seed)
    tmpl = fb.mean_response(case, SITE, CORT)[: sw.shape[1]]
    w = (t >= 16) & (t <= 33)
    r = sw[:, w] @ tmpl[w] / (tmpl[w] @ tmpl[w])
    e = (sw[:, (t >= 12) & (t <= 37)] ** 2).mean(axis=1)
    q = np.quantile(e, [0.5, 0.9, 0.99, 0.999]) / np.median(e)
    keep = e <= 9 * np.median(e)
    return {"seed": seed, "energy_quantiles_50_90_99_99.9": [_r(x, 2) for x in q],
            "above_9x": int((~keep).sum()), "sweeps": len(e),
            "per_sweep_sd_all": _r(r.std(), 2), "per_sweep_sd_kept": _r(r[keep].std(), 2)}


def farfield(_noise: str, _change_s: float, _seed: int, _duration_s=None) -> dict:
    t = fb.response_t_ms()
    b = fb.mean_response(fb.Case("b"), SITE, CORT)
    x = fb.mean_response(fb.Case("d", "drop", 0.4, change_at_s=0.0), SITE, CORT, 1.0)
    out = {}
    for lo, hi in [(10, 45), (15, 35), (16, 33), (16.5, 30), (17, 28), (18, 27), (16, 26)]:
        w = (t >= lo) & (t <= hi)
        u = np.linspace(-1, 1, w.sum())
        for deg in (-1, 0, 1, 2, 3):
            q = np.linalg.qr(np.stack([np.polynomial.legendre.Legendre.basis(k)(u)
                                       for k in range(deg + 1)], 1))[0] if deg >= 0 else None
            pb, px = ((b[w], x[w]) if q is None else
                      (b[w] - q @ (q.T @ b[w]), x[w] - q @ (q.T @ x[w])))
            out[f"{lo}-{hi} ms, degree {deg}"] = {"scale": _r(pb @ px / (pb @ pb)),
                                                  "energy_kept": _r(pb @ pb / (b[w] @ b[w]))}
    return out


def _r(x, nd: int = 3):
    return round(float(x), nd)


if __name__ == "__main__":
    what, noise, (change, _, dur) = sys.argv[1], sys.argv[2], sys.argv[3].partition(":")
    fn = {"monitor": monitor, "direct": direct, "energy": energy, "farfield": farfield}[what]
    for s in sys.argv[4:]:
        print(json.dumps(fn(noise, float(change), int(s), float(dur) if dur else None)),
              flush=True)

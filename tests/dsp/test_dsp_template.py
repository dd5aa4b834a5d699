"""The template fit (appliance/dsp/template.py) on constructed sweeps: a few sweeps far out (the
edges of cautery or movement that rejection lets through) barely move the judged ratio, while
a real loss of the response still reads ~0."""

import numpy as np

from appliance.dsp.template import Projections

FS = 4000.0
T = 200  # 50 ms at 4 kSPS
t_ms = np.arange(T) * 1e3 / FS
TEMPLATE = -1.0 * np.exp(-0.5 * ((t_ms - 20) / 1.5) ** 2) + np.exp(-0.5 * ((t_ms - 26) / 2.5) ** 2)
WINDOW = slice(int(16 * FS / 1e3), int(33 * FS / 1e3))


def _fit(sweeps: np.ndarray):
    proj = Projections(TEMPLATE, WINDOW, 4, 0.0, T, 1200)
    proj.add(sweeps)
    return proj.fit(1e3 / FS, 0.1, 300, 150)


def _sweeps(rng, scale: np.ndarray) -> np.ndarray:
    return scale[:, None] * TEMPLATE[None, :] + rng.normal(0, 4.0, (len(scale), T))


def test_dsp_template_fit_is_robust_to_a_few_sweeps_far_out(rng):
    x = _sweeps(rng, np.ones(1200))
    clean = _fit(x)
    bad = x.copy()
    for i, sign in zip((1190, 1150, 1120), (-1, -1, 1), strict=True):  # in the recent third
        bad[i] += sign * 80.0 * TEMPLATE  # each ~30 sigma_a out
    hit = _fit(bad)
    # what a plain mean of the recent third's ratios reads with them
    plain = float(np.mean((bad[-clean.recent_sweeps:, WINDOW] @ TEMPLATE[WINDOW])
                          / (TEMPLATE[WINDOW] @ TEMPLATE[WINDOW])))
    assert abs(plain - clean.recent_ratio) > 0.4  # what the outliers do to a plain mean
    assert abs(hit.recent_ratio - clean.recent_ratio) < 0.1, (hit, clean)
    assert abs(hit.ratio - clean.ratio) < 0.05, (hit, clean)


def test_dsp_template_fit_still_reads_a_loss_and_a_drop(rng):
    for level in (0.0, 0.4):
        scale = np.where(np.arange(1200) < 600, 1.0, level)
        f = _fit(_sweeps(rng, scale))
        assert abs(f.recent_ratio - level) < 0.1 and abs(f.ratio - level) < 0.1, (level, f)

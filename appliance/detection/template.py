"""Per-sweep amplitude and latency estimates against a baseline template.

The amplitude of one sweep x = a s + n with known shape s and noise covariance C has the
minimum-variance unbiased linear estimate (generalised least squares)
    a_hat = s' C^-1 x / (s' C^-1 s),   var(a_hat) = 1 / (s' C^-1 s).
EEG is strongly coloured (1/f, mains), so whitening by C^-1 lowers the per-sweep amplitude sd
well below plain projection (s' x / s' s). C is estimated from baseline residuals with
Ledoit-Wolf shrinkage (Ledoit & Wolf 2004, J. Multivariate Anal. 88:365) because a window of
~140 samples is estimated from a few hundred sweeps.

Latency: a shift tau of the template changes the sweep by d = s(t - tau) - s(t). The projection
of x onto d, made orthogonal to s in the whitened space (so an amplitude change does not leak
into it), is 0 without a shift and `mu_shift` with the shift.

Several channels (derivations) of one response: a sweep (n_channels, m) is one vector of
n_channels x m samples, each channel in its own smooth basis, and C spans the channels too, so
the estimate is the optimal spatio-temporal filter: it weights each derivation by its SNR and
cancels noise that derivations share (their common reference electrode).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def ampl_per_sweep_projection(sweeps: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Plain projection a = s'x / s's for every sweep; sweeps (k, n_times) -> (k,)."""
    s = np.asarray(template, dtype=np.float64)
    return np.asarray(sweeps, dtype=np.float64) @ s / float(s @ s)


def ledoit_wolf(x: np.ndarray) -> np.ndarray:
    """Shrunk covariance of rows x (n_obs, p) towards a scaled identity (Ledoit-Wolf 2004)."""
    x = x - x.mean(axis=0)
    n, p = x.shape
    s = x.T @ x / n
    mu = np.trace(s) / p
    d2 = float(np.sum((s - mu * np.eye(p)) ** 2))
    # b2: average squared distance of single-observation outer products from s
    x2 = x**2
    b2 = float(np.sum(x2.T @ x2) / n - np.sum(s**2)) / n
    shrink = min(max(b2 / d2, 0.0), 1.0) if d2 > 0 else 1.0
    return shrink * mu * np.eye(p) + (1.0 - shrink) * s


@dataclass(frozen=True)
class TemplateModel:
    """Everything needed to estimate amplitude and latency of a new sweep.

    template  (m,) baseline average inside the analysis window, µV
    w_amp     (m,) GLS weights: a_hat = w_amp @ x
    w_lat     (m,) weights of the latency statistic (whitened d, orthogonal to s)
    chol_inv  (k, m) whitening map of a residual (smooth basis, then inverse Cholesky of C)
    reference the full model's out-of-sample amplitude of the baseline response (cross-fitted)
    sigma_a   per-sweep sd of a_hat on the baseline, same units as reference
    sigma_l   per-sweep sd of the latency statistic on the baseline
    mu_shift  mean of the latency statistic for the design shift `shift_ms`
    r_median  median whitened residual energy per sample on the baseline (noise scale)
    n_channels channels per sweep; template and weights hold them one after the other
    """

    template: np.ndarray
    w_amp: np.ndarray
    w_lat: np.ndarray
    chol_inv: np.ndarray
    reference: float
    sigma_a: float
    sigma_l: float
    mu_shift: float
    shift_ms: float
    r_median: float
    whitened: bool
    n_channels: int = 1
    # (n_baseline, 3) out-of-fold amplitude (full model's units), latency statistic and
    # whitened residual energy of each cleaned baseline sweep: the detector's calibration
    baseline_scores: np.ndarray | None = None

    def estimate(self, sweeps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(k, m) or (k, n_channels, m) sweeps -> amplitude (k,), latency statistic (k,),
        noise scale (k,).

        noise scale is the whitened residual energy relative to the baseline's median: 1.0 for
        a sweep as noisy as baseline, >> 1 during cautery or movement.
        """
        p = {"w_amp": self.w_amp, "w_lat": self.w_lat, "template": self.template,
             "chol_inv": self.chol_inv}
        a, lat, energy = _apply(p, _flat(sweeps))
        return a, lat, energy / self.r_median


def _flat(sweeps: np.ndarray) -> np.ndarray:
    """(k, m) or (k, n_channels, m) -> (k, n_channels * m) float64."""
    x = np.asarray(sweeps, dtype=np.float64)
    return x.reshape(x.shape[0], -1) if x.ndim == 3 else x


def _shift(s: np.ndarray, shift_samples: float) -> np.ndarray:
    """s(t - tau) of each row by linear interpolation (values outside the window are zero)."""
    t = np.arange(s.shape[-1], dtype=np.float64)
    return np.stack([np.interp(t - shift_samples, t, row, left=0.0, right=0.0)
                     for row in np.atleast_2d(s)])


def dct_basis(m: int, k: int) -> np.ndarray:
    """(m, k) orthonormal DCT-II basis: the k smoothest shapes over an m-sample window."""
    n = np.arange(m)
    basis = np.cos(np.pi * (n[:, None] + 0.5) * np.arange(k)[None, :] / m)
    basis[:, 0] /= np.sqrt(2.0)
    return basis * np.sqrt(2.0 / m)


def _fit(x: np.ndarray, sample_rate_hz: float, shift_ms: float, whiten: bool, k: int,
         n_ch: int = 1) -> dict:
    """GLS weights in a k-dimensional smooth basis. The template is a noisy average: in the full
    m-sample space, C^-1 amplifies the template's own noise and the weights fit that noise
    (out-of-sample amplitudes collapse towards 0). In k ~ 10 smooth dimensions the template noise
    is small and C is well estimated from a few hundred sweeps."""
    m = x.shape[1] // n_ch
    basis = np.kron(np.eye(n_ch), dct_basis(m, min(k, m)))  # block-diagonal: per channel
    y = x @ basis
    sy = y.mean(axis=0)
    resid = y - sy
    c = ledoit_wolf(resid) if whiten else np.eye(y.shape[1]) * float(np.mean(resid**2))
    if n_ch > 1:
        sy = _shrink_blocks(sy, c / len(y), n_ch)
    chol_inv = np.linalg.inv(np.linalg.cholesky(c))
    cinv = chol_inv.T @ chol_inv
    cs = cinv @ sy
    wy = cs / float(sy @ cs)
    template = basis @ sy
    shifted = basis.T @ _shift(template.reshape(n_ch, m),
                               shift_ms * 1e-3 * sample_rate_hz).ravel()
    d = shifted - sy
    # orthogonalise d against s in the C^-1 inner product so amplitude changes don't leak
    d_perp = d - (float(d @ cs) / float(sy @ cs)) * sy
    cd = cinv @ d_perp
    dd = float(d_perp @ cd)
    wl = cd / dd if dd > 0 else np.zeros_like(cd)
    return {"template": template, "w_amp": basis @ wy, "w_lat": basis @ wl,
            "chol_inv": chol_inv @ basis.T, "mu_shift": float(shifted @ wl)}


def _shrink_blocks(sy: np.ndarray, c_mean: np.ndarray, n_ch: int) -> np.ndarray:
    """Positive-part James-Stein shrinkage of each channel's template block towards zero.

    A derivation that sees little or none of the response still gets a template: the average of
    its noise. The GLS weights would then add that channel's noise for nothing (two pure-noise
    channels cost ~25 % of the variance). Shrinking each block by max(0, 1 - (k - 2) / q), q
    its squared norm whitened by the mean's own covariance (a chi-square with k dof when the
    block holds no response), removes such blocks and leaves strong ones nearly intact.
    """
    k = sy.size // n_ch
    out = sy.copy()
    for b in range(n_ch):
        blk = slice(b * k, (b + 1) * k)
        q = float(sy[blk] @ np.linalg.solve(c_mean[blk, blk], sy[blk]))
        out[blk] *= max(0.0, 1.0 - (k - 2) / q) if q > 0 else 0.0
    if not np.any(out):  # nothing anywhere: keep the raw estimate rather than a zero template
        return sy
    return out


def _apply(p: dict, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Amplitude, latency statistic and whitened residual energy per sample of sweeps x (k, n)
    under the fitted weights p (`_fit`'s keys)."""
    a = x @ p["w_amp"]
    lat = x @ p["w_lat"]
    r = (x - a[:, None] * p["template"][None, :]) @ p["chol_inv"].T
    return a, lat, np.einsum("ij,ij->i", r, r) / r.shape[1]


def clean_baseline(x: np.ndarray, factor: float = 2.5) -> np.ndarray:
    """Drop sweeps whose RMS exceeds `factor` x the median RMS (cautery, movement): one burst in
    the baseline would otherwise ruin the template and the noise model for the whole case."""
    rms = np.sqrt(np.mean(x**2, axis=1))
    keep = rms <= factor * np.median(rms)
    return x[keep]


def fit_template(
    baseline_sweeps: np.ndarray,
    sample_rate_hz: float,
    shift_ms: float,
    whiten: bool = True,
    n_basis: int = 10,
    folds: int = 10,
) -> TemplateModel:
    """Fit the template model on conditioned baseline sweeps (n_sweeps, m) or
    (n_sweeps, n_channels, m) inside the window.

    The noise figures and the reference amplitude are cross-fitted — each of `folds` models
    fitted without one interleaved fold scores that fold (10 folds: each model sees 90 % of the
    sweeps, so its template is nearly as good as the full one's) — because in-sample figures are
    optimistic (a template projected on the sweeps it was averaged from always scores 1.0),
    and an optimistic sigma means false alarms. So the detector needs no separate calibration
    block: it can arm as soon as the baseline is in.

    A template averaged from n noisy sweeps scores the true response at q / (q + k/n) of itself
    (q = s'C^-1 s per sweep, k the template's dimensions: its noise adds k/n to s_hat'C^-1 s_hat
    but nothing to s_hat'C^-1 s). The folds, fitted on n (F-1)/F sweeps, measure that factor
    r_f; the full model's is 1 / (1 + (F-1)/F (1/r_f - 1)). Out-of-fold amplitudes are rescaled
    to the full model by it (`baseline_scores`); `reference` is that factor.
    """
    raw = np.asarray(baseline_sweeps)
    n_ch = raw.shape[1] if raw.ndim == 3 else 1
    x = clean_baseline(_flat(raw))
    full = _fit(x, sample_rate_hz, shift_ms, whiten, n_basis, n_ch)
    rows = np.arange(len(x))
    scores = np.empty((len(x), 3))  # out-of-fold (amplitude, latency statistic, energy)
    for f in range(folds):
        test = rows % folds == f
        part = _fit(x[~test], sample_rate_hz, shift_ms, whiten, n_basis, n_ch)
        scores[test] = np.column_stack(_apply(part, x[test]))
    # the folds' attenuation r_f; a baseline without a response (r_f <= 0) would divide by
    # zero: floor it (the drop tests then see no change)
    r_fold = max(float(np.median(scores[:, 0])), 0.05)
    ref = 1.0 / (1.0 + (folds - 1) / folds * (1.0 / r_fold - 1.0))
    scores[:, 0] *= ref / r_fold
    return TemplateModel(
        template=full["template"],
        w_amp=full["w_amp"],
        w_lat=full["w_lat"],
        chol_inv=full["chol_inv"],
        reference=ref,
        sigma_a=_robust_sd(scores[:, 0]),
        sigma_l=_robust_sd(scores[:, 1]),
        mu_shift=full["mu_shift"],
        shift_ms=shift_ms,
        r_median=float(np.median(scores[:, 2])),
        whitened=whiten,
        n_channels=n_ch,
        baseline_scores=scores,
    )


def _robust_sd(v: np.ndarray) -> float:
    """sd from the median absolute deviation: cautery sweeps in the baseline don't inflate it."""
    v = np.asarray(v, dtype=np.float64)
    return float(1.4826 * np.median(np.abs(v - np.median(v))))

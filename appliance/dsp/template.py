"""Template fit: how much of the baseline waveform is in the current sweeps, and where.

Peak picking in a noisy average is biased: the largest wiggle in a search window is always
found, so a response at 40 % of its baseline reads 55-70 % once its own peaks sink toward the
noise (and is "not found" a little later). A least-squares fit of the baseline average (the
template b, restricted to the components' window W) picks nothing:

    ratio_i(s) = <b_W, x_i,(W+s)> / (|b_W|^2 - E_noise)

for each sweep x_i shifted by s samples (|s| <= max_shift). E_noise, the expected energy of
the template's own noise over W (baseline residual noise^2 x samples), keeps that noise from
inflating the denominator (without it a 300-sweep template at 0.15 uV noise reads ~8 % low).

The projection is linear, so the ratio of an average is the mean of its sweeps' ratios, and
their spread / sqrt(n) is its standard error whatever the noise's spectrum (pink EEG is far
from white: an error from the residual noise alone would be too small); the spread is taken
from batch means, so noise correlated from sweep to sweep is counted too. `Projections` keeps
every sweep's ratios at every shift since the baseline (a few dozen numbers per sweep), so a
fit over any number of recent sweeps is a mean over rows:

- amplitude: over the last n sweeps, n chosen so its standard error is at most `se_target`
  (n = (sigma_a / se_target)^2 from the measured per-sweep spread sigma_a, within
  [n_min, n_max]): a quiet patient is judged on a short window, a noisy one on a longer one,
  so the false-alarm rate stays put and the delay follows the noise (as any test's must);
- recent: the same over the last third of those sweeps (SE ~0.17): too noisy for a 50 %
  criterion, enough to tell that a response is gone (below 0.3, 4 SE from baseline) in a
  third of the time;
- latency: the best shift over the last m sweeps (refined by a parabola), m grown by how
  much the response has shrunk, not with the noise: m = latency_sweeps / r^2, r in [R_FLOOR,
  1], up to the amplitude window n. A response at r then stands as many SE above 0 over m as
  a full one over latency_sweeps (a halved one gets 600 sweeps). r is read over the newest
  latency_sweeps at their best shift while the response clearly stands there (z >= CLEAR_Z:
  a moving latency stays there, where the amplitude window's mix of two shifts dips; + 1 SE,
  so a full response read low by its noise keeps about latency_sweeps), else over the newer
  half of the amplitude window, else over all of it, at their best shifts while clear there,
  else at the shift that fits every sweep kept (the newer half: with the first alone, a 3 ms
  move on tests/analysis's short windows read 2.4 ms over 75 sweeps when raised). A latency
  is the argmax of ~30 shifts: at z ~ 3 it is often the largest of their noise. On family
  B's higher noise (seed 1) a fixed 150-sweep window held a 50-60 % drop at z ~ 3 and read
  21.5 ms for a 19.1 ms baseline: a false latency alarm, cleared 70-80 s later; now none
  (drop50/drop60/drop60-ramp60s-higher). Sizing m for an absolute z (CLEAR_Z sigma_a / r)^2
  also did that, but gave a full response 250-400 sweeps at the higher noise and delayed a
  real change (N20 +12 %, conventional HIGH, families A and B, seeds 1-3: median 55 -> 95 s
  at the higher noise); with 1 / r^2 the twelve are 30-100 s (median 40; higher noise 65,
  lower 35), 1fa49a7's fixed window 30-200 s (median 40; 55, 30). R_FLOOR = 0.5 stops the
  growth at 4x: further back, family B loss-higher seed 1's residue (ratio ~0.4 at +3 ms)
  reached z ~ 3.3 and raised a latency alarm. The cap is n: reaching past the amplitude's
  window reads a latency from before a change. A site also treats the latency as not found
  while the fit reads the response lost (appliance/analysis/site.py).

The amplitude is read at its own window's best shift while the response is clearly present
(z >= 5 over the latency window), else at the shift that fits every sweep kept, so an absent
or small response is not read high by a maximum over shifts of noise. The latency window is
never longer than the amplitude's (n_min >= latency_sweeps, as the site asks), so z >= 5
over it holds over the amplitude window too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_Z = 3.0  # the template is in the sweeps when its ratio is this many SE above 0
# ... and clearly so (its best shift is a latency, not the largest of ~30 noisy ones)
CLEAR_Z = 5.0
# the smallest response ratio the latency window grows for (4x latency_sweeps): below the 50 %
# amplitude criterion the amplitude is the news, and a window grown further finds a loss's
# residue at z ~ 3 (family B loss-higher seed 1: a latency alarm 280 s after the loss)
R_FLOOR = 0.5


@dataclass(frozen=True)
class Fit:
    ratio: float  # amplitude as a fraction of the template's, over the last n_sweeps
    se: float  # its standard error (sigma_a / sqrt(n))
    n_sweeps: int
    sigma_a: float  # per-sweep SD of the ratio, batch means (what sets n_sweeps)
    halves_ratio: tuple[float, float]  # odd / even sweeps at the best shift
    shift_ms: float  # latency change against the template, over the last latency_sweeps
    latency_z: float  # ratio / SE over those sweeps: the latency means something if >= 3
    latency_sweeps: int  # the caller's / ratio^2 (ratio >= R_FLOOR), up to n_sweeps
    halves_shift_ms: tuple[float, float]  # their odd / even sweeps' own best shifts
    at_limit: bool  # the best shift is the edge of the search: the latency moved further
    recent_ratio: float = math.nan  # over the last third of n_sweeps (a loss shows sooner)
    recent_sweeps: int = 0
    latency_se_ms: float = math.inf  # standard error of shift_ms (`_shift_se`)

    def ci95(self, base_se: float = 0.0) -> tuple[float, float]:
        """95 % interval of the ratio; base_se: the template's own error (its amplitude was
        measured on a finite average too), added in quadrature."""
        half = 1.96 * math.hypot(self.se, base_se)
        return self.ratio - half, self.ratio + half

    @property
    def latency_found(self) -> bool:
        return bool(self.latency_z >= MIN_Z)


def _shift_se(rows: np.ndarray, j: int) -> float:
    """Standard error, in samples, of the best shift j of rows' mean (parabola-refined): the
    error of the ratio curve's slope at j over its curvature there (the delta method). The
    slope is linear in the sweeps, so its per-sweep spread (batch means, as the ratio's)
    / sqrt(n) is its error whatever the noise's spectrum. inf at the edge of the search or
    where the curve does not peak."""
    if not 0 < j < rows.shape[1] - 1 or len(rows) < 4:
        return math.inf
    mean = rows[:, j - 1:j + 2].mean(axis=0)
    curvature = float(mean[0] - 2.0 * mean[1] + mean[2])
    if not curvature < 0:
        return math.inf
    slope = 0.5 * (rows[:, j + 1] - rows[:, j - 1])
    return sigma_per_sweep(slope) / math.sqrt(len(rows)) / -curvature


def _best_shift(r: np.ndarray) -> tuple[int, float]:
    """Index of the largest ratio and its parabola-refined offset in samples (-0.5..0.5)."""
    j = int(np.argmax(r))
    if 0 < j < len(r) - 1:
        a, b, c = r[j - 1], r[j], r[j + 1]
        den = a - 2 * b + c
        if den < 0:
            return j, float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    return j, 0.0


CLIP_SIGMA = 4.0  # each sweep's ratio is clipped this many robust SDs about the median
BATCH = 25  # sweeps per batch for the batch-means error (~5 s at 4.7 Hz)


def sigma_per_sweep(col: np.ndarray) -> float:
    """Per-sweep SD of a ratio series as its mean sees it: from the successive differences of
    the means of BATCH-sweep batches (x sqrt(BATCH)) when there are >= 8 of them. Batches
    count noise that is correlated from sweep to sweep (mains harmonics beating with the
    stimulus rate, ECG, slow EEG wander: ~1.3x the plain SD on the simulated patient);
    successive differences ignore a change of the response itself, which would otherwise
    inflate the noise, lengthen the window and hide the change. Never less than the plain SD
    of the sweeps about their batch means."""
    nb = len(col) // BATCH
    if nb < 8:
        return float(col.std(ddof=1))
    b = col[len(col) - nb * BATCH:].reshape(nb, BATCH)
    within = float(np.sqrt(np.mean(b.var(axis=1, ddof=1))))
    between = float(np.sqrt(0.5 * np.mean(np.diff(b.mean(axis=1)) ** 2) * BATCH))
    return max(within, between)


def _batch_medians(rows: np.ndarray) -> np.ndarray:
    """Each row's batch median (BATCH consecutive rows, aligned on the newest; the oldest
    rows left over make one shorter batch), per column."""
    n = len(rows)
    k = n // BATCH
    head = n - k * BATCH
    med = np.empty_like(rows)
    if head:
        med[:head] = np.median(rows[:head], axis=0)
    if k:
        med[head:] = np.repeat(np.median(rows[head:].reshape(k, BATCH, -1), axis=1), BATCH,
                               axis=0)
    return med


def _mean_se(col: np.ndarray, sigma: float) -> tuple[float, float]:
    return float(col.mean()), sigma / math.sqrt(len(col))


class Projections:
    """Every sweep's template ratio at every shift, newest last, up to `capacity` sweeps."""

    def __init__(self, template: np.ndarray, window: slice, max_shift: int,
                 noise_energy: float, n_times: int, capacity: int) -> None:
        b = np.asarray(template, dtype=np.float64)[window]
        self.i0, self.i1 = int(window.start), int(window.stop)
        self.shift = int(max(0, min(max_shift, self.i0, n_times - self.i1)))
        energy = float(b @ b)
        # the template's own noise is part of |b|^2; never let the correction take over half
        den = max(energy - max(noise_energy, 0.0), 0.5 * energy)
        self.ok = bool(len(b) >= 3 and den > 0 and np.all(np.isfinite(b)))
        self.b = b / den if self.ok else b
        self.capacity = int(capacity)
        self._rows = np.empty((0, 2 * self.shift + 1))
        self.count = 0  # sweeps ever added: sets the parity of the halves

    def add(self, sweeps: np.ndarray) -> None:
        """sweeps (k, n_times) on the template's time axis, oldest first."""
        x = np.asarray(sweeps, dtype=np.float64)
        if not self.ok or len(x) == 0:
            return
        s = self.shift
        views = np.lib.stride_tricks.sliding_window_view(
            x[:, self.i0 - s:self.i1 + s], len(self.b), axis=-1)
        self._rows = np.concatenate([self._rows, views @ self.b])[-self.capacity:]
        self.count += len(x)

    def __len__(self) -> int:
        return len(self._rows)

    def fit(self, dt_ms: float, se_target: float, n_min: int, latency_sweeps: int) -> Fit | None:
        """The amplitude over the last n sweeps, n = (sigma_a / se_target)^2 within
        [n_min, every sweep kept]; the latency over the last m sweeps,
        m = latency_sweeps / ratio^2 (ratio in [R_FLOOR, 1]) up to n (never fewer than
        latency_sweeps, nor more than are kept). None with fewer than 4 sweeps."""
        per, s = self._rows, self.shift
        if len(per) < 4:
            return None
        # the sweeps' noise has heavy tails (kurtosis 5-30 on the simulated patient: the edges
        # of cautery and movement that rejection lets through): one sweep 10 sigma out moves
        # the recent third's mean by 0.15 and inflates sigma_a. Clip each at CLIP_SIGMA
        # robust SDs about the median of its BATCH neighbours, which follows a change of the
        # response itself
        med = _batch_medians(per)
        dev = per - med
        robust_sd = 1.4826 * np.median(np.abs(dev), axis=0)
        per = med + np.clip(dev, -CLIP_SIGMA * robust_sd, CLIP_SIGMA * robust_sd)
        # sigma_a at the shift that fits every sweep kept best (steadier than any window's)
        j_all = _best_shift(per.mean(axis=0))[0]
        sigma = sigma_per_sweep(per[:, j_all])
        want = math.ceil((sigma / se_target) ** 2) if se_target > 0 else len(per)
        n = int(min(len(per), max(n_min, want, 4)))
        amp = per[-n:]
        # the latency window grows by how much the response has shrunk (not with the noise):
        # m = latency_sweeps / r^2, so a response at r stands as many SE above 0 over m as a
        # full one over latency_sweeps. r: the newest latency_sweeps at their best shift while
        # the response clearly stands there (a moving latency stays there; the amplitude
        # window's mix of two shifts dips; + 1 SE there: a full response read low by noise
        # keeps ~latency_sweeps), else the amplitude window's newer half's or its own best
        # shift while clear there, else its ratio at j_all (a maximum over shifts of noise
        # would read high)
        r_now = float(amp[:, j_all].mean())
        for k, rows in enumerate((per[-max(4, latency_sweeps):], amp[-max(4, n // 2):], amp)):
            jq = _best_shift(rows.mean(axis=0))[0]
            rq, sq = _mean_se(rows[:, jq], sigma)
            if sq > 0 and rq >= CLEAR_Z * sq:
                r_now = rq + (sq if k == 0 else 0.0)
                break
        want_l = math.ceil(latency_sweeps / min(1.0, max(r_now, R_FLOOR)) ** 2)
        m = int(min(len(per), max(4, latency_sweeps, min(want_l, n))))
        lat = per[-m:]
        jl, frac = _best_shift(lat.mean(axis=0))
        mean_l, se_l = _mean_se(lat[:, jl], sigma)
        z_l = mean_l / se_l if se_l > 0 else math.inf
        # the amplitude at the shift that fits its own window best while a response is
        # clearly there (a latency moving through the window is a mix of two shifts); with no
        # response, at the shift that fits every sweep kept: a maximum over shifts of noise
        # alone would read an absent response above 0
        j = _best_shift(amp.mean(axis=0))[0] if z_l >= CLEAR_Z else j_all
        ratio, se = _mean_se(amp[:, j], sigma)
        k = max(4, n // 3)
        # at the latency window's shift while a response is there (a latency change must not
        # read as a loss), else at the shift that fits every sweep kept
        recent = float(per[-k:, jl if z_l >= MIN_Z else j_all].mean())
        # parity of the first row kept, so odd / even halves are the same sweeps each time
        first = (self.count - n) % 2
        odd, even = (amp[first::2], amp[1 - first::2])
        lodd, leven = lat[(self.count - m) % 2::2], lat[1 - (self.count - m) % 2::2]

        def shift_ms(rows: np.ndarray) -> float:
            jj, ff = _best_shift(rows.mean(axis=0))
            return (jj - s + ff) * dt_ms

        return Fit(
            ratio=ratio, se=se, n_sweeps=n, sigma_a=sigma,
            halves_ratio=(float(odd[:, j].mean()), float(even[:, j].mean())),
            shift_ms=(jl - s + frac) * dt_ms,
            latency_z=z_l, latency_sweeps=m,
            halves_shift_ms=(shift_ms(lodd), shift_ms(leven)),
            at_limit=bool(s > 0 and (jl == 0 or jl == 2 * s)),
            recent_ratio=recent, recent_sweeps=int(min(k, len(per))),
            latency_se_ms=_shift_se(lat, jl) * dt_ms,
        )

"""The sequential-detection bound the fast detector is measured against.

For a drop of fraction `delta` of a known template in Gaussian noise, Lorden's asymptotics for the
CUSUM give the smallest mean detection delay achievable at a given in-control run length ARL0:
    n* = 2 ln(ARL0) sigma_a^2 / delta^2   sweeps
(Lorden 1971, Ann. Math. Statist. 42:1897; Moustakides 1986 for CUSUM optimality).
"""

from __future__ import annotations

import math

import numpy as np

from appliance.detection.template import _robust_sd, ampl_per_sweep_projection

HOURS_8_S = 8 * 3600.0


def arl0_sweeps(rate_hz: float, hours: float = 8.0) -> float:
    """In-control run length in sweeps: one false alarm per `hours` at the site's rate."""
    return rate_hz * hours * 3600.0


def n_star_sweeps(sigma_a: float, delta: float, arl0: float) -> float:
    return 2.0 * math.log(arl0) * sigma_a**2 / delta**2


def sigma_a_standard(stable_sweeps: np.ndarray, template: np.ndarray) -> float:
    """Per-sweep sd of the amplitude (fraction of baseline) by projecting each conditioned sweep
    onto the baseline template — plain projection, no whitening — as a fraction of the mean
    projection (the baseline amplitude). With the noiseless template (known to the simulator)
    this is the "known template" of the bound: the strictest reading.

    stable_sweeps (n_sweeps, n_times), already conditioned (30-1000 Hz + mains notch).
    """
    a = ampl_per_sweep_projection(stable_sweeps, template)
    # robust: the standard conditioning's artefact rejection would drop cautery sweeps
    return _robust_sd(a) / float(np.median(a))

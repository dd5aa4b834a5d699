"""Run seeded benchmark jobs in a spawn pool, one process per CPU, results in job order.

Each job is seeded on its own, so results do not depend on the scheduling; `processes=1` runs
them serially in this process."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from typing import Any


def spawn_map(fn: Callable[[Any], Any], jobs: Sequence[Any], processes: int | None = None,
              size: Callable[[Any], float] | None = None, label: str = "") -> list[Any]:
    """[fn(j) for j in jobs], in a spawn pool unless processes == 1. `size(job)` orders the
    work longest first (fn must be importable: a module-level function). With `label`, a
    progress line on stderr when it is a terminal."""
    from appliance.progress import Progress

    progress = Progress(label, len(jobs), unit="runs") if label else None
    n = min(processes or os.cpu_count() or 1, len(jobs))
    if n <= 1:
        out1 = []
        for j in jobs:
            out1.append(fn(j))
            if progress:
                progress.update(len(out1))
        if progress:
            progress.close()
        return out1
    order = sorted(range(len(jobs)), key=lambda i: -size(jobs[i]) if size else 0)
    # one BLAS thread per worker: the workers already fill the cores (inherited at spawn)
    saved = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    os.environ.update(dict.fromkeys(saved, "1"))
    try:
        with mp.get_context("spawn").Pool(n) as pool:
            done = []
            for r in pool.imap(fn, [jobs[i] for i in order], chunksize=1):
                done.append(r)
                if progress:
                    progress.update(len(done))
    finally:
        if progress:
            progress.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    out: list[Any] = [None] * len(jobs)
    for i, r in zip(order, done, strict=True):
        out[i] = r
    return out

"""Stimulus blanking by sample-and-hold: from each trigger, each channel holds its last value for
`n_blank` samples. Done before a filter, so the artefact never rings through it (zeroing
would put a step into a signal that carries an electrode offset)."""

from __future__ import annotations

import numpy as np


class HoldBlanker:
    """`process(x (n_ch, n), trigger (n,)) -> x` with blanked stretches held; state carries
    across calls (a blank may span blocks). Not thread-safe."""

    def __init__(self, n_blank: int, trigger_mask: int) -> None:
        self.n_blank = int(n_blank)
        self.mask = int(trigger_mask)
        self.reset()

    def reset(self) -> None:
        self._left = 0
        self._held: np.ndarray | None = None

    def process(self, x: np.ndarray, trigger: np.ndarray) -> np.ndarray:
        if self.n_blank == 0 or x.shape[1] == 0:
            return x
        hits = np.flatnonzero(trigger & self.mask)
        if not len(hits) and not self._left:
            self._held = x[:, -1].copy()
            return x
        x = x.copy()
        n = x.shape[1]
        blank = np.zeros(n + 1, dtype=bool)
        blank[: self._left] = True
        for h in hits:
            blank[h: h + self.n_blank] = True
        end = (hits[-1] + self.n_blank) if len(hits) else self._left
        self._left = max(0, end - n)
        blank = blank[:n]
        held = self._held if self._held is not None else x[:, 0].copy()
        # each blanked stretch takes the value just before it
        d = np.diff(np.concatenate([[0], blank.astype(np.int8), [0]]))
        for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
            x[:, a:b] = (held if a == 0 else x[:, a - 1])[:, None]
        self._held = x[:, -1].copy()
        return x

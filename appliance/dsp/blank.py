"""Stimulus blanking by sample-and-hold: from each trigger, each channel holds its last value for
`n_blank` samples. Done before a filter, so the artefact never rings through it (zeroing
would put a step into a signal that carries an electrode offset).

Adaptive extension (`n_extend` > 0): an artefact whose tail outlasts the fixed blank (an
amplifier recovering over 10-20 ms) would reach the filter as a spike. After the fixed blank,
each channel keeps holding while it is still displaced from the held value by more than
`residual_uv` *with the polarity it had when the blank ended* (a decaying tail keeps its sign;
EMG crosses back within half a period), for at most `n_extend` samples more."""

from __future__ import annotations

import numpy as np


class HoldBlanker:
    """`process(x (n_ch, n), trigger (n,)) -> x` with blanked stretches held; state carries
    across calls (a blank or its extension may span blocks). Not thread-safe."""

    def __init__(self, n_blank: int, trigger_mask: int, n_extend: int = 0,
                 residual_uv: float = 30.0) -> None:
        self.n_blank = int(n_blank)
        self.mask = int(trigger_mask)
        self.n_extend = int(n_extend)
        self.residual_uv = float(residual_uv)
        self.extended_samples = 0  # held by the extension (per channel, summed): the evidence
        self.reset()

    def reset(self) -> None:
        self._left = 0
        self._held: np.ndarray | None = None
        self._ext_left: np.ndarray | None = None  # per channel: extension samples still allowed
        self._ext_val: np.ndarray | None = None
        self._ext_sign: np.ndarray | None = None  # 0: decided on the first sample after the blank

    def process(self, x: np.ndarray, trigger: np.ndarray) -> np.ndarray:
        if self.n_blank == 0 or x.shape[1] == 0:
            return x
        hits = np.flatnonzero(trigger & self.mask)
        extending = self._ext_left is not None and bool(self._ext_left.any())
        if not len(hits) and not self._left and not extending:
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
        # each blanked stretch takes the value just before it, then may be extended
        d = np.diff(np.concatenate([[0], blank.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        if extending:  # an extension carried from the last block, up to the next blank
            self._extend(x, 0, int(starts[0]) if len(starts) else n)
        for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
            x[:, a:b] = (held if a == 0 else x[:, a - 1])[:, None]
            if self.n_extend and b == n and self._left:
                continue  # the blank goes on in the next block
            if self.n_extend:
                self._ext_left = np.full(x.shape[0], self.n_extend)
                self._ext_val = x[:, b - 1].copy()
                self._ext_sign = np.zeros(x.shape[0])
                self._extend(x, b, int(starts[i + 1]) if i + 1 < len(starts) else n)
        self._held = x[:, -1].copy()
        return x

    def _extend(self, x: np.ndarray, p: int, q: int) -> None:
        assert self._ext_left is not None and self._ext_val is not None
        assert self._ext_sign is not None
        m = min(q - p, int(self._ext_left.max()))
        if m <= 0:
            return
        r = x[:, p:p + m] - self._ext_val[:, None]
        sign = np.where(self._ext_sign == 0, np.sign(r[:, 0]), self._ext_sign)
        keep = (np.abs(r) > self.residual_uv) & (np.sign(r) == sign[:, None])
        keep &= np.arange(m)[None, :] < self._ext_left[:, None]
        k = np.where(keep.all(axis=1), m, np.argmin(keep, axis=1))
        for c in np.flatnonzero(k):
            x[c, p:p + k[c]] = self._ext_val[c]
        self.extended_samples += int(k.sum())
        self._ext_left = np.where(k < m, 0, self._ext_left - m)
        self._ext_sign = sign

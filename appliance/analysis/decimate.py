"""Zero-phase decimation of a continuous stream by an integer factor q, state across blocks.

Output sample j is the triangular (boxcar * boxcar, 2q - 1 taps) mean centred on input sample
q*j: the kernel is symmetric, so nothing moves in time, and its sinc^2 response puts nulls on
the alias images (>= 20 dB down at 3 kHz for q = 4 at 16 kSPS) while taking ~1 % of an N20 at
300 Hz. Evoked analysis needs no more than 4x the band's upper edge (SSEP: 4 kSPS), and every
later stage (notch, epochs, filters, averagers) then costs a q-th.

Per block: one reshape and two small dot products; no per-sample Python.
"""

from __future__ import annotations

import numpy as np


class Decimator:
    """`process(x (n_ch, n), first_sample) -> (y (n_ch, m), first_out)`: y[:, i] is output
    sample first_out + i, centred on input sample q * (first_out + i). Samples of an
    incomplete block wait for the next call; a gap in first_sample restarts the stream."""

    def __init__(self, q: int, n_channels: int) -> None:
        if q < 1:
            raise ValueError(f"decimation factor must be >= 1, got {q!r}")
        self.q = int(q)
        self.n_channels = int(n_channels)
        self._w_up = np.arange(self.q, dtype=np.float64)  # weights within block j-1
        self._w_down = np.arange(self.q, 0, -1, dtype=np.float64)  # weights within block j
        self.reset()

    def reset(self) -> None:
        self._carry = np.empty((self.n_channels, 0))
        self._next: int | None = None  # absolute input index expected next
        self._up_prev: np.ndarray | None = None  # block j-1's share of output j

    def process(self, x: np.ndarray, first_sample: int) -> tuple[np.ndarray, int]:
        q = self.q
        first_sample = int(first_sample)
        if self._next != first_sample:  # start or gap: begin at the next block boundary
            self.reset()
            skip = (-first_sample) % q
            x = x[:, skip:]
            first_sample += skip
            self._next = first_sample
        buf = np.concatenate([self._carry, x], axis=1) if self._carry.shape[1] else x
        start = self._next - self._carry.shape[1]
        m = buf.shape[1] // q
        self._next = start + buf.shape[1]
        self._carry = buf[:, m * q:].copy()
        j0 = start // q  # block index of buf's first whole block
        if m == 0:
            return np.empty((self.n_channels, 0)), j0
        if q == 1:
            return buf[:, :m], j0
        blocks = buf[:, : m * q].reshape(self.n_channels, m, q)
        up = blocks @ self._w_up
        down = blocks @ self._w_down
        if self._up_prev is None:  # the first block has no block before it
            y, first_out = up[:, :-1] + down[:, 1:], j0 + 1
        else:
            y = np.concatenate([self._up_prev[:, None], up[:, :-1]], axis=1) + down
            first_out = j0
        self._up_prev = up[:, -1].copy()
        return y / float(q * q), first_out

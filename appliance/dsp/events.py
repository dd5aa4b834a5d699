"""Stimulus events: rising edges of trigger bits, as absolute sample indices."""

from __future__ import annotations

import numpy as np


class EdgeDetector:
    """Rising edges of `trigger & mask`, with the last level carried across blocks.

    A block whose first sample is high after a block that ended high has no edge there: the
    pulse simply continues. Before the first block the line is taken as low, so a stream that
    starts high reports an edge on its first sample.
    """

    def __init__(self, mask: int) -> None:
        if not 0 < int(mask) <= 0xFFFF:
            raise ValueError(f"trigger mask must select bits of a uint16 (1..0xFFFF), got {mask!r}")
        self.mask = int(mask)
        self._last_high = False

    def push(self, trigger: np.ndarray, first_sample: int) -> np.ndarray:
        """trigger (n,) unsigned ints for samples first_sample.. -> int64 (n_edges,) indices."""
        trigger = np.asarray(trigger)
        if trigger.ndim != 1:
            raise ValueError(f"trigger must be 1-D (n_samples,), got shape {trigger.shape}")
        if trigger.size == 0:
            return np.empty(0, dtype=np.int64)
        if trigger.dtype != np.uint16:
            if trigger.dtype.kind not in "ui":
                raise ValueError(f"trigger must hold integer bits, got dtype {trigger.dtype}")
            trigger = trigger.astype(np.uint16)
        high = (trigger & np.uint16(self.mask)) != 0
        if not high.any():  # the usual block: no stimulus
            self._last_high = False
            return np.empty(0, dtype=np.int64)
        edges = np.flatnonzero(high[1:] > high[:-1]) + 1
        if high[0] and not self._last_high:
            edges = np.concatenate([[0], edges])
        self._last_high = bool(high[-1])
        return edges.astype(np.int64) + np.int64(first_sample)

    def reset(self) -> None:
        """Forget the carried level (e.g. after a gap in the stream)."""
        self._last_high = False

"""Sweeps cut around stimulus events from a stream of blocks, and baseline correction."""

from __future__ import annotations

import numpy as np


def times_ms(pre_samples: int, post_samples: int, fs_hz: float) -> np.ndarray:
    """Time of each sweep sample relative to the stimulus: (pre+post,) float64 ms.

    The stimulus sample is at index `pre_samples` (t = 0).
    """
    return (np.arange(-pre_samples, post_samples, dtype=np.float64)) * (1e3 / fs_hz)


def baseline_correct(sweeps: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Subtract the mean of samples [start, stop) along the last axis (the pre-stimulus part).

    sweeps (..., n_times) -> same shape float64 (a new array).
    """
    x = np.asarray(sweeps, dtype=np.float64)
    if not 0 <= start < stop <= x.shape[-1]:
        raise ValueError(f"baseline [{start}, {stop}) must lie within n_times={x.shape[-1]}")
    return x - x[..., start:stop].mean(axis=-1, keepdims=True)


class Epocher:
    """Cut sweeps [event - pre - pad, event + post + pad) from consecutive blocks.

    `push(data (n_channels, n), first_sample, event_samples (k,)) -> (sweeps, events)` with
    sweeps (m, n_channels, pre + post + 2*pad) and events (m,) int64: every sweep whose last
    sample has arrived, in event order. A sweep that runs past the block waits for the next
    one. Sweeps that would need samples before the stream started, or lost in a gap
    (first_sample jumps), cannot be cut: they are counted in `dropped`.

    `dtype` lets the same class cut the saturation mask (dtype=bool).
    """

    def __init__(self, pre_samples: int, post_samples: int, n_channels: int,
                 pad_samples: int = 0, dtype=np.float64) -> None:
        if pre_samples < 0 or post_samples < 1 or pad_samples < 0:
            raise ValueError(
                "need pre_samples >= 0, post_samples >= 1, pad_samples >= 0; got "
                f"{pre_samples!r}, {post_samples!r}, {pad_samples!r}"
            )
        self.pre = int(pre_samples)
        self.post = int(post_samples)
        self.pad = int(pad_samples)
        self.n_channels = int(n_channels)
        self.n_times = self.pre + self.post + 2 * self.pad
        self.dtype = np.dtype(dtype)
        self.dropped = 0
        self._tail = np.empty((self.n_channels, 0), dtype=self.dtype)
        self._tail_start: int | None = None  # absolute index of _tail[:, 0]
        self._pending = np.empty(0, dtype=np.int64)

    def push(self, data: np.ndarray, first_sample: int,
             event_samples=()) -> tuple[np.ndarray, np.ndarray]:
        data = np.asarray(data, dtype=self.dtype)
        if data.ndim != 2 or data.shape[0] != self.n_channels:
            raise ValueError(
                f"expected data (n_channels={self.n_channels}, n_samples), got {data.shape}"
            )
        first_sample = int(first_sample)
        if self._tail_start is None or self._tail_start + self._tail.shape[1] != first_sample:
            self._tail = np.empty((self.n_channels, 0), dtype=self.dtype)  # start or gap
            self._tail_start = first_sample
        buf = np.concatenate([self._tail, data], axis=1) if self._tail.shape[1] else data
        buf_start = self._tail_start
        buf_end = buf_start + buf.shape[1]

        events = np.concatenate([self._pending, np.asarray(event_samples, dtype=np.int64)])
        starts = events - (self.pre + self.pad)
        ends = starts + self.n_times
        lost = starts < buf_start
        ready = ~lost & (ends <= buf_end)
        self.dropped += int(lost.sum())
        self._pending = events[~lost & ~ready]

        offsets = starts[ready] - buf_start
        idx = offsets[:, None] + np.arange(self.n_times)
        sweeps = np.ascontiguousarray(buf[:, idx].transpose(1, 0, 2))

        keep = min(buf.shape[1], self.n_times)
        self._tail = buf[:, buf.shape[1] - keep:].copy()
        self._tail_start = buf_end - keep
        return sweeps, events[ready]

    def reset(self) -> None:
        self._tail = np.empty((self.n_channels, 0), dtype=self.dtype)
        self._tail_start = None
        self._pending = np.empty(0, dtype=np.int64)
